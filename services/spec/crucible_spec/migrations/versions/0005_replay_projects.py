"""A project made to replay a snapshot names it, so that lists can leave such projects out.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "spec"


def upgrade() -> None:
    # The replay projects there are already stay listed: nothing in them said what they were.
    op.add_column("projects", sa.Column("replay_of_snapshot_id", sa.Uuid(as_uuid=False), nullable=True), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("projects", "replay_of_snapshot_id", schema=SCHEMA)
