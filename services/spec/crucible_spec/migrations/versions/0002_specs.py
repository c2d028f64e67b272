"""Specs with their planning interview (questions, answers, how the questions were chosen).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "spec"


def upgrade() -> None:
    op.create_table(
        "specs",
        sa.Column("id", sa.Uuid(as_uuid=False), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("task", sa.Text, nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("artifacts", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('draft', 'validated')", name="ck_specs_status"),
        schema=SCHEMA,
    )
    # Keyset pagination, newest first: (created_at, id) descending is this index read backwards.
    op.create_index("ix_specs_created_at_id", "specs", ["created_at", "id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_specs_created_at_id", table_name="specs", schema=SCHEMA)
    op.drop_table("specs", schema=SCHEMA)
