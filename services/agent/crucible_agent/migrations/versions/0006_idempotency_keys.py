"""Model calls carry their caller's idempotency key: a key whose call succeeded is answered from it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "agent"


def upgrade() -> None:
    op.add_column(
        "llm_calls", sa.Column("idempotency_key", sa.String(200), nullable=False, server_default=""), schema=SCHEMA
    )
    op.create_index(
        "ix_llm_calls_idempotency_key",
        "llm_calls",
        ["idempotency_key"],
        schema=SCHEMA,
        postgresql_where=sa.text("idempotency_key <> ''"),
    )


def downgrade() -> None:
    op.drop_index("ix_llm_calls_idempotency_key", "llm_calls", schema=SCHEMA)
    op.drop_column("llm_calls", "idempotency_key", schema=SCHEMA)
