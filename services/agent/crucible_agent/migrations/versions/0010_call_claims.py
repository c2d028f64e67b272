"""A keyed model call in flight is claimed, so that another replica asked the same key waits for
its answer instead of paying for it again (see ``CallLog``).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "agent"


def upgrade() -> None:
    op.create_table(
        "llm_call_claims",
        sa.Column("idempotency_key", sa.String(200), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
        # Not written ahead: a claim lives for seconds, and a commit that wrote only claims does
        # not wait for the log's flush, which every keyed call would otherwise wait on before it
        # is sent. A database crash (or failover) empties the table: the calls then in flight
        # lose their claims, no more.
        prefixes=["UNLOGGED"],
    )


def downgrade() -> None:
    op.drop_table("llm_call_claims", schema=SCHEMA)
