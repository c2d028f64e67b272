"""A model call its caller abandoned mid-answer is stored, ``cancelled``: the provider may have
billed it, so it is counted (its cost unknown) rather than lost.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "agent"
STATUSES = ("succeeded", "failed", "invalid_output", "replayed")


def _check(statuses: tuple[str, ...]) -> None:
    op.drop_constraint("ck_llm_calls_status", "llm_calls", schema=SCHEMA, type_="check")
    allowed = ", ".join(f"'{s}'" for s in statuses)
    op.create_check_constraint("ck_llm_calls_status", "llm_calls", f"status IN ({allowed})", schema=SCHEMA)


def upgrade() -> None:
    _check((*STATUSES, "cancelled"))


def downgrade() -> None:
    # Before this version an abandoned call left no row.
    op.execute(f"DELETE FROM {SCHEMA}.llm_calls WHERE status = 'cancelled'")
    _check(STATUSES)
