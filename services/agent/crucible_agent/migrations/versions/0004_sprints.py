"""Sprints with their phase attempts and event log; agent runs know which driver resumes them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "agent"


def upgrade() -> None:
    op.add_column(
        "agent_runs",
        sa.Column("driver", sa.String(16), nullable=False, server_default="agent_runner"),
        schema=SCHEMA,
    )
    op.create_table(
        "sprints",
        sa.Column("id", sa.Uuid(as_uuid=False), primary_key=True),
        sa.Column("spec_id", sa.String(100), nullable=False),
        sa.Column("spec", postgresql.JSONB(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("goal", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("current_phase", sa.String(16), nullable=True),
        sa.Column("trigger", postgresql.JSONB(), nullable=True),
        sa.Column("workspace_ref", sa.String(100), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=False),
        sa.Column("lease_owner", sa.String(100), nullable=False),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('planned', 'active', 'completed', 'failed')", name="ck_sprints_status"),
        schema=SCHEMA,
    )
    op.create_index("ix_sprints_created_at_id", "sprints", ["created_at", "id"], schema=SCHEMA)
    op.create_index("ix_sprints_spec_id", "sprints", ["spec_id"], schema=SCHEMA)
    op.create_index(
        "ix_sprints_active_lease",
        "sprints",
        ["lease_expires_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_table(
        "sprint_phases",
        sa.Column(
            "sprint_id",
            sa.Uuid(as_uuid=False),
            sa.ForeignKey(f"{SCHEMA}.sprints.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("phase", sa.String(16), primary_key=True),
        sa.Column("attempt", sa.Integer(), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("agent_run_id", sa.String(36), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("output", postgresql.JSONB(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )
    op.create_table(
        "sprint_events",
        sa.Column("sequence", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column(
            "sprint_id",
            sa.Uuid(as_uuid=False),
            sa.ForeignKey(f"{SCHEMA}.sprints.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("data", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_sprint_events_sprint_sequence", "sprint_events", ["sprint_id", "sequence"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("sprint_events", schema=SCHEMA)
    op.drop_table("sprint_phases", schema=SCHEMA)
    op.drop_table("sprints", schema=SCHEMA)
    op.drop_column("agent_runs", "driver", schema=SCHEMA)
