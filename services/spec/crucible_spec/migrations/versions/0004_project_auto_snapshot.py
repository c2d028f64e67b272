"""A project's setting: snapshot each of its runs that ends FAILED.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "spec"


def upgrade() -> None:
    # Off for the projects there are: a snapshot per failure is a choice, not a default.
    op.add_column(
        "projects",
        sa.Column("auto_snapshot_failed_runs", sa.Boolean, nullable=False, server_default=sa.false()),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("projects", "auto_snapshot_failed_runs", schema=SCHEMA)
