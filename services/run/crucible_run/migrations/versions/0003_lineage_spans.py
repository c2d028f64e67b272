"""The spans at the two ends of a run's lineage: the one that created it, the one that posted its summary.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "run"


def upgrade() -> None:
    # Nullable: runs stored before this revision have no such spans, and their lineage says so.
    op.add_column("runs", sa.Column("create_span", JSONB, nullable=True), schema=SCHEMA)
    op.add_column("runs", sa.Column("summary_span", JSONB, nullable=True), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("runs", "summary_span", schema=SCHEMA)
    op.drop_column("runs", "create_span", schema=SCHEMA)
