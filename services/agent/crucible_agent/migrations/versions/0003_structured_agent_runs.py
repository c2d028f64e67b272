"""Agent runs whose subagents answer with structured output (a JSON schema per run).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("agent_runs", sa.Column("json_schema", postgresql.JSONB(), nullable=True), schema="agent")
    op.add_column(
        "agent_runs", sa.Column("schema_name", sa.String(100), nullable=False, server_default=""), schema="agent"
    )
    op.add_column("agent_candidates", sa.Column("structured", postgresql.JSONB(), nullable=True), schema="agent")


def downgrade() -> None:
    op.drop_column("agent_candidates", "structured", schema="agent")
    op.drop_column("agent_runs", "schema_name", schema="agent")
    op.drop_column("agent_runs", "json_schema", schema="agent")
