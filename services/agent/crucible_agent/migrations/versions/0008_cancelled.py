"""A cancelled sprint, and the agent run of the phase it stopped, are ``cancelled``, not ``failed``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "agent"

STATUSES = {
    "agent_runs": ("running", "completed", "failed"),
    "sprints": ("planned", "active", "completed", "failed"),
}


def _check(table: str, statuses: tuple[str, ...]) -> None:
    op.drop_constraint(f"ck_{table}_status", table, schema=SCHEMA, type_="check")
    allowed = ", ".join(f"'{s}'" for s in statuses)
    op.create_check_constraint(f"ck_{table}_status", table, f"status IN ({allowed})", schema=SCHEMA)


def upgrade() -> None:
    for table, statuses in STATUSES.items():
        _check(table, (*statuses, "cancelled"))


def downgrade() -> None:
    # Sprints cancelled before this version were stored as failed, with a "cancelled: …" reason.
    op.execute(f"UPDATE {SCHEMA}.sprints SET status = 'failed' WHERE status = 'cancelled'")
    op.execute(f"UPDATE {SCHEMA}.agent_runs SET status = 'failed' WHERE status = 'cancelled'")
    op.execute(f"UPDATE {SCHEMA}.sprint_phases SET status = 'failed' WHERE status = 'cancelled'")
    for table, statuses in STATUSES.items():
        _check(table, statuses)
