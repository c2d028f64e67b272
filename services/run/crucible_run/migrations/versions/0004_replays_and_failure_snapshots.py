"""Recorded replays (the run a run replays, the suite it replays for) and failure snapshots still to make.

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

SCHEMA = "run"


def upgrade() -> None:
    op.add_column(
        "runs", sa.Column("replay_of_run_id", sa.String(36), nullable=False, server_default=""), schema=SCHEMA
    )
    op.add_column(
        "runs", sa.Column("snapshot_test_id", sa.String(100), nullable=False, server_default=""), schema=SCHEMA
    )
    op.add_column(
        "runs", sa.Column("snapshot_pending", sa.Boolean, nullable=False, server_default=sa.false()), schema=SCHEMA
    )
    # A run whose failure snapshot is still to make is leased work too: the claim query's index
    # follows its condition.
    _live_lease_index("status = 'RUNNING' OR summary_pending OR snapshot_pending")


def downgrade() -> None:
    _live_lease_index("status = 'RUNNING' OR summary_pending")
    op.drop_column("runs", "snapshot_pending", schema=SCHEMA)
    op.drop_column("runs", "snapshot_test_id", schema=SCHEMA)
    op.drop_column("runs", "replay_of_run_id", schema=SCHEMA)


def _live_lease_index(live: str) -> None:
    op.drop_index("ix_runs_live_lease", "runs", schema=SCHEMA)
    op.create_index("ix_runs_live_lease", "runs", ["lease_expires_at"], schema=SCHEMA, postgresql_where=sa.text(live))
