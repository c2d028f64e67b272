"""Provenance entries name the chat message that asked for an Architect's change.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "spec"


def upgrade() -> None:
    # Adding a nullable column is not an UPDATE: the append-only trigger is not involved.
    op.add_column(
        "provenance_entries", sa.Column("chat_message_id", sa.Uuid(as_uuid=False), nullable=True), schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_column("provenance_entries", "chat_message_id", schema=SCHEMA)
