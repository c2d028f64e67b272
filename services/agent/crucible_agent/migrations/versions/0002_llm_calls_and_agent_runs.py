"""Model calls with their cost, recordings for replay, agent runs with candidates, decisions, checkpoints.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent_runs",
        sa.Column("id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("history", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("subagents", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("judge", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("workspace_ref", sa.String(length=500), nullable=False),
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("project_id", sa.String(length=100), nullable=False),
        sa.Column("run_id", sa.String(length=100), nullable=False),
        sa.Column("sprint_id", sa.String(length=100), nullable=False),
        sa.Column("snapshot_test_id", sa.String(length=100), nullable=False),
        sa.Column("purpose", sa.String(length=100), nullable=False),
        sa.Column("agent_run_id", sa.String(length=100), nullable=False),
        sa.Column("recording", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("fork_of", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=False),
        sa.Column("lease_owner", sa.String(length=100), nullable=False),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('running', 'completed', 'failed')", name="ck_agent_runs_status"),
        sa.PrimaryKeyConstraint("id"),
        schema="agent",
    )
    op.create_index("ix_agent_runs_created_at_id", "agent_runs", ["created_at", "id"], unique=False, schema="agent")
    op.create_index(
        "ix_agent_runs_running_lease",
        "agent_runs",
        ["lease_expires_at"],
        unique=False,
        schema="agent",
        postgresql_where="status = 'running'",
    )
    op.create_table(
        "llm_calls",
        sa.Column("id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("response_model", sa.String(length=200), nullable=False),
        sa.Column("project_id", sa.String(length=100), nullable=False),
        sa.Column("run_id", sa.String(length=100), nullable=False),
        sa.Column("sprint_id", sa.String(length=100), nullable=False),
        sa.Column("snapshot_test_id", sa.String(length=100), nullable=False),
        sa.Column("purpose", sa.String(length=100), nullable=False),
        sa.Column("agent_run_id", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("usd", sa.Numeric(precision=18, scale=8), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("request", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('succeeded', 'failed', 'invalid_output', 'replayed')", name="ck_llm_calls_status"
        ),
        sa.PrimaryKeyConstraint("id"),
        schema="agent",
    )
    op.create_index(
        "ix_llm_calls_agent_run_id",
        "llm_calls",
        ["agent_run_id"],
        unique=False,
        schema="agent",
        postgresql_where="agent_run_id <> ''",
    )
    op.create_index("ix_llm_calls_created_at_id", "llm_calls", ["created_at", "id"], unique=False, schema="agent")
    op.create_index(
        "ix_llm_calls_project_id",
        "llm_calls",
        ["project_id"],
        unique=False,
        schema="agent",
        postgresql_where="project_id <> ''",
    )
    op.create_index(
        "ix_llm_calls_run_id", "llm_calls", ["run_id"], unique=False, schema="agent", postgresql_where="run_id <> ''"
    )
    op.create_index(
        "ix_llm_calls_snapshot_test_id",
        "llm_calls",
        ["snapshot_test_id"],
        unique=False,
        schema="agent",
        postgresql_where="snapshot_test_id <> ''",
    )
    op.create_index(
        "ix_llm_calls_sprint_id",
        "llm_calls",
        ["sprint_id"],
        unique=False,
        schema="agent",
        postgresql_where="sprint_id <> ''",
    )
    op.create_table(
        "recordings",
        sa.Column("recording_key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("recording_key", "request_hash"),
        schema="agent",
    )
    op.create_table(
        "agent_candidates",
        sa.Column("id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("agent_run_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("metrics", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("llm_call_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agent_run_id"], ["agent.agent_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_run_id", "name", name="uq_agent_candidates_run_name"),
        schema="agent",
    )
    op.create_table(
        "agent_checkpoints",
        sa.Column("id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("agent_run_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=120), nullable=False),
        sa.Column("state", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agent_run_id"], ["agent.agent_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_run_id", "label", name="uq_agent_checkpoints_run_label"),
        sa.UniqueConstraint("agent_run_id", "sequence", name="uq_agent_checkpoints_run_sequence"),
        schema="agent",
    )
    op.create_table(
        "agent_decisions",
        sa.Column("agent_run_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("candidate_id", sa.String(length=36), nullable=False),
        sa.Column("candidate_name", sa.String(length=100), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("rationale", sa.Text(), nullable=False),
        sa.Column("fallback", sa.Boolean(), nullable=False),
        sa.Column("fallback_reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agent_run_id"], ["agent.agent_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("agent_run_id"),
        schema="agent",
    )
    op.create_table(
        "agent_subagent_errors",
        sa.Column("id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("agent_run_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=100), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agent_run_id"], ["agent.agent_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_run_id", "name", name="uq_agent_subagent_errors_run_name"),
        schema="agent",
    )


def downgrade() -> None:
    op.drop_table("agent_subagent_errors", schema="agent")
    op.drop_table("agent_decisions", schema="agent")
    op.drop_table("agent_checkpoints", schema="agent")
    op.drop_table("agent_candidates", schema="agent")
    op.drop_table("recordings", schema="agent")
    op.drop_index("ix_llm_calls_sprint_id", table_name="llm_calls", schema="agent", postgresql_where="sprint_id <> ''")
    op.drop_index(
        "ix_llm_calls_snapshot_test_id",
        table_name="llm_calls",
        schema="agent",
        postgresql_where="snapshot_test_id <> ''",
    )
    op.drop_index("ix_llm_calls_run_id", table_name="llm_calls", schema="agent", postgresql_where="run_id <> ''")
    op.drop_index(
        "ix_llm_calls_project_id", table_name="llm_calls", schema="agent", postgresql_where="project_id <> ''"
    )
    op.drop_index("ix_llm_calls_created_at_id", table_name="llm_calls", schema="agent")
    op.drop_index(
        "ix_llm_calls_agent_run_id", table_name="llm_calls", schema="agent", postgresql_where="agent_run_id <> ''"
    )
    op.drop_table("llm_calls", schema="agent")
    op.drop_index("ix_agent_runs_running_lease", table_name="agent_runs", schema="agent")
    op.drop_index("ix_agent_runs_created_at_id", table_name="agent_runs", schema="agent")
    op.drop_table("agent_runs", schema="agent")
