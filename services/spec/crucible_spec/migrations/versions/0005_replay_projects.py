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


# What the snapshot service wrote as a replay project's description until now: the snapshot's id
# is in it. A description a user has since edited no longer says so, and the project stays listed.
REPLAY_DESCRIPTION = (
    r"^Restored from snapshot .* \(([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\) to replay it\.$"
)


def upgrade() -> None:
    op.add_column("projects", sa.Column("replay_of_snapshot_id", sa.Uuid(as_uuid=False), nullable=True), schema=SCHEMA)
    op.execute(
        sa.text(
            f"UPDATE {SCHEMA}.projects SET replay_of_snapshot_id = substring(description FROM :pattern)::uuid "
            "WHERE description ~ :pattern"
        ).bindparams(pattern=REPLAY_DESCRIPTION)
    )


def downgrade() -> None:
    op.drop_column("projects", "replay_of_snapshot_id", schema=SCHEMA)
