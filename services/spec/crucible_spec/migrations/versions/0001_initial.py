"""Projects, chat, ProblemSpec, WorldModel and the append-only provenance log.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "spec"


def _times() -> list[sa.Column[Any]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def _project_fk(primary_key: bool = False) -> sa.Column[Any]:
    return sa.Column(
        "project_id",
        sa.Uuid(as_uuid=False),
        sa.ForeignKey(f"{SCHEMA}.projects.id", ondelete="CASCADE"),
        nullable=False,
        primary_key=primary_key,
    )


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Uuid(as_uuid=False), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        *_times(),
        schema=SCHEMA,
    )
    op.create_index("ix_projects_created_at_id", "projects", ["created_at", "id"], schema=SCHEMA)

    op.create_table(
        "chat_sessions",
        sa.Column("id", sa.Uuid(as_uuid=False), primary_key=True),
        _project_fk(),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("message_count", sa.BigInteger, nullable=False),
        *_times(),
        sa.CheckConstraint("mode IN ('setup', 'analysis')", name="ck_chat_sessions_mode"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_chat_sessions_project_created", "chat_sessions", ["project_id", "created_at", "id"], schema=SCHEMA
    )

    op.create_table(
        "chat_messages",
        sa.Column("id", sa.Uuid(as_uuid=False), primary_key=True),
        sa.Column(
            "chat_session_id",
            sa.Uuid(as_uuid=False),
            sa.ForeignKey(f"{SCHEMA}.chat_sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("metadata", postgresql.JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('user', 'agent', 'system')", name="ck_chat_messages_role"),
        sa.UniqueConstraint("chat_session_id", "sequence", name="uq_chat_messages_session_sequence"),
        schema=SCHEMA,
    )

    op.create_table(
        "problem_specs",
        _project_fk(primary_key=True),
        sa.Column("constraints", postgresql.JSONB, nullable=False),
        sa.Column("goals", postgresql.JSONB, nullable=False),
        sa.Column("resolution", sa.String(16), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        *_times(),
        sa.CheckConstraint("resolution IN ('coarse', 'medium', 'fine')", name="ck_problem_specs_resolution"),
        sa.CheckConstraint("mode IN ('full_search', 'eval_only', 'seeded')", name="ck_problem_specs_mode"),
        schema=SCHEMA,
    )

    op.create_table(
        "world_models",
        _project_fk(primary_key=True),
        sa.Column("model_data", postgresql.JSONB, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        *_times(),
        schema=SCHEMA,
    )

    op.create_table(
        "provenance_entries",
        sa.Column("id", sa.Uuid(as_uuid=False), primary_key=True),
        _project_fk(),
        sa.Column("subject", sa.String(16), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.String(200), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("changed_fields", postgresql.JSONB, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("changes", postgresql.JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("subject IN ('problem_spec', 'world_model')", name="ck_provenance_subject"),
        sa.UniqueConstraint("project_id", "subject", "version", name="uq_provenance_project_subject_version"),
        schema=SCHEMA,
    )
    # The provenance log is append-only: the database itself refuses to rewrite history.
    op.execute(
        f"""
        CREATE FUNCTION {SCHEMA}.refuse_provenance_update() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'provenance entries are append-only' USING ERRCODE = 'integrity_constraint_violation';
        END;
        $$
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER provenance_entries_append_only
        BEFORE UPDATE ON {SCHEMA}.provenance_entries
        FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.refuse_provenance_update()
        """
    )


def downgrade() -> None:
    op.execute(f"DROP TRIGGER provenance_entries_append_only ON {SCHEMA}.provenance_entries")
    op.execute(f"DROP FUNCTION {SCHEMA}.refuse_provenance_update()")
    for table in ("provenance_entries", "world_models", "problem_specs", "chat_messages", "chat_sessions", "projects"):
        op.drop_table(table, schema=SCHEMA)
