"""A run's calls are found by request: a recorded replay of the run is answered from them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "agent"


def upgrade() -> None:
    op.create_index(
        "ix_llm_calls_run_request",
        "llm_calls",
        ["run_id", "request_hash"],
        schema=SCHEMA,
        postgresql_where=sa.text("run_id <> ''"),
    )


def downgrade() -> None:
    op.drop_index("ix_llm_calls_run_request", "llm_calls", schema=SCHEMA)
