"""Runs with their candidates, scenarios, evaluations, rankings and event log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "run"


def _id() -> sa.Column[str]:
    return sa.Column("id", sa.Uuid(as_uuid=False), primary_key=True)


def _run_fk() -> sa.Column[str]:
    return sa.Column(
        "run_id", sa.Uuid(as_uuid=False), sa.ForeignKey(f"{SCHEMA}.runs.id", ondelete="CASCADE"), nullable=False
    )


def _time(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "runs",
        _id(),
        sa.Column("project_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("parameters", JSONB, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("phases", JSONB, nullable=False),
        sa.Column("phases_done", JSONB, nullable=False),
        sa.Column("trigger_id", sa.String(200), nullable=False, unique=True),
        sa.Column("trigger_source", sa.String(32), nullable=False),
        sa.Column("trigger_metadata", JSONB, nullable=False),
        _time("triggered_at"),
        sa.Column("chat_session_id", sa.String(36), nullable=False),
        sa.Column("recommended_message_id", sa.String(36), nullable=False),
        sa.Column("recommended_config_snapshot", JSONB, nullable=True),
        sa.Column("problem", JSONB, nullable=True),
        sa.Column("counts", JSONB, nullable=False),
        sa.Column("usage", JSONB, nullable=False),
        sa.Column("failure_reason", sa.Text, nullable=False),
        sa.Column("error_summary", sa.Text, nullable=False),
        sa.Column("run_summary_message_id", sa.String(36), nullable=False),
        sa.Column("summary_pending", sa.Boolean, nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("trace_context", JSONB, nullable=False),
        sa.Column("lease_owner", sa.String(100), nullable=False),
        sa.Column("lease_token", sa.BigInteger, nullable=False, server_default="0"),
        _time("lease_expires_at", nullable=True),
        _time("created_at"),
        _time("started_at", nullable=True),
        _time("ended_at", nullable=True),
        sa.CheckConstraint(
            "status IN ('CREATED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')", name="ck_runs_status"
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_runs_project_created", "runs", ["project_id", "created_at", "id"], schema=SCHEMA)
    op.create_index(
        "ix_runs_live_lease",
        "runs",
        ["lease_expires_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'RUNNING' OR summary_pending"),
    )
    op.create_table(
        "candidates",
        _id(),
        _run_fk(),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("approach", sa.Text, nullable=False),
        sa.Column("assumptions", JSONB, nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("source_candidate_id", sa.String(36), nullable=False),
        _time("created_at"),
        sa.UniqueConstraint("run_id", "position", name="uq_candidates_run_position"),
        schema=SCHEMA,
    )
    op.create_table(
        "scenarios",
        _id(),
        _run_fk(),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("conditions", JSONB, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        _time("created_at"),
        sa.UniqueConstraint("run_id", "position", name="uq_scenarios_run_position"),
        schema=SCHEMA,
    )
    op.create_table(
        "evaluations",
        _id(),
        _run_fk(),
        sa.Column(
            "candidate_id",
            sa.Uuid(as_uuid=False),
            sa.ForeignKey(f"{SCHEMA}.candidates.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "scenario_id",
            sa.Uuid(as_uuid=False),
            sa.ForeignKey(f"{SCHEMA}.scenarios.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("p", JSONB, nullable=True),
        sa.Column("r", JSONB, nullable=True),
        sa.Column("constraint_satisfaction", JSONB, nullable=False),
        sa.Column("explanation", sa.Text, nullable=False),
        sa.Column("failure_reason", sa.Text, nullable=False),
        sa.Column("raw_answer", sa.Text, nullable=False),
        sa.Column("llm_call_id", sa.String(36), nullable=False),
        _time("created_at"),
        sa.CheckConstraint("status IN ('succeeded', 'failed')", name="ck_evaluations_status"),
        sa.UniqueConstraint("run_id", "candidate_id", "scenario_id", name="uq_evaluations_pair"),
        schema=SCHEMA,
    )
    op.create_index("ix_evaluations_run_created", "evaluations", ["run_id", "created_at", "id"], schema=SCHEMA)
    op.create_table(
        "rankings",
        _run_fk(),
        sa.Column(
            "candidate_id",
            sa.Uuid(as_uuid=False),
            sa.ForeignKey(f"{SCHEMA}.candidates.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("i", sa.Float, nullable=True),
        sa.Column("p", sa.Float, nullable=True),
        sa.Column("r", sa.Float, nullable=True),
        sa.Column("violated_constraints", JSONB, nullable=False),
        sa.Column("evaluations", sa.Integer, nullable=False),
        sa.Column("failed_evaluations", sa.Integer, nullable=False),
        sa.UniqueConstraint("run_id", "candidate_id", name="uq_rankings_run_candidate"),
        schema=SCHEMA,
    )
    op.create_index("ix_rankings_run_rank", "rankings", ["run_id", "rank"], schema=SCHEMA)
    op.create_table(
        "run_events",
        sa.Column("sequence", sa.BigInteger, primary_key=True, autoincrement=True),
        _run_fk(),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("data", JSONB, nullable=False),
        _time("created_at"),
        schema=SCHEMA,
    )
    op.create_index("ix_run_events_run_sequence", "run_events", ["run_id", "sequence"], schema=SCHEMA)


def downgrade() -> None:
    for table in ("run_events", "rankings", "evaluations", "scenarios", "candidates", "runs"):
        op.drop_table(table, schema=SCHEMA)
