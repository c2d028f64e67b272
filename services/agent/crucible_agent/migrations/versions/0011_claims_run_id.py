"""A claim says which run its call is for, so that a run continued after its runner died can wait
for the calls that runner left in flight before it reads what the run has spent (see
``AbstractAgentRepository.calls_in_flight``).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "agent"


def upgrade() -> None:
    # No index: the table holds only the claims of the last lease's length, a few hundred rows.
    op.add_column(
        "llm_call_claims",
        sa.Column("run_id", sa.String(100), nullable=False, server_default=""),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("llm_call_claims", "run_id", schema=SCHEMA)
