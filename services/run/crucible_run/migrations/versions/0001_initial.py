"""The run schema's first revision: the schema and its version table, no tables yet.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The schema itself is created by crucible_common.database.migrate before Alembic runs.
    pass


def downgrade() -> None:
    pass
