"""The ``spec`` schema, as SQLAlchemy Core tables (migrations are in ``migrations/``)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB

SCHEMA = "spec"

metadata = MetaData(schema=SCHEMA)

projects = Table(
    "projects",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Read by the run service when one of the project's runs ends FAILED.
    Column("auto_snapshot_failed_runs", Boolean, nullable=False, server_default=false()),
    # The snapshot service's: a project made to replay a snapshot (no foreign key across contexts).
    Column("replay_of_snapshot_id", Uuid(as_uuid=False), nullable=True),
    Index("ix_projects_created_at_id", "created_at", "id"),
)

chat_sessions = Table(
    "chat_sessions",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("project_id", Uuid(as_uuid=False), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("title", String(200), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("message_count", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("mode IN ('setup', 'analysis')", name="ck_chat_sessions_mode"),
    Index("ix_chat_sessions_project_created", "project_id", "created_at", "id"),
)

chat_messages = Table(
    "chat_messages",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("chat_session_id", Uuid(as_uuid=False), ForeignKey("chat_sessions.id", ondelete="CASCADE"), nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("metadata", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("role IN ('user', 'agent', 'system')", name="ck_chat_messages_role"),
    UniqueConstraint("chat_session_id", "sequence", name="uq_chat_messages_session_sequence"),
)

problem_specs = Table(
    "problem_specs",
    metadata,
    Column("project_id", Uuid(as_uuid=False), ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("constraints", JSONB, nullable=False),
    Column("goals", JSONB, nullable=False),
    Column("resolution", String(16), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("resolution IN ('coarse', 'medium', 'fine')", name="ck_problem_specs_resolution"),
    CheckConstraint("mode IN ('full_search', 'eval_only', 'seeded')", name="ck_problem_specs_mode"),
)

world_models = Table(
    "world_models",
    metadata,
    Column("project_id", Uuid(as_uuid=False), ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("model_data", JSONB, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Append-only: a trigger (migration 0001) refuses UPDATE; rows go only with their project.
provenance_entries = Table(
    "provenance_entries",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("project_id", Uuid(as_uuid=False), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("subject", String(16), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("actor_kind", String(16), nullable=False),
    Column("actor_id", String(200), nullable=False),
    Column("action", String(16), nullable=False),
    Column("changed_fields", JSONB, nullable=False),
    Column("reason", Text, nullable=False),
    Column("changes", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # No foreign key: the message may be deleted with its session while the history stays.
    Column("chat_message_id", Uuid(as_uuid=False), nullable=True),
    CheckConstraint("subject IN ('problem_spec', 'world_model')", name="ck_provenance_subject"),
    UniqueConstraint("project_id", "subject", "version", name="uq_provenance_project_subject_version"),
)

specs = Table(
    "specs",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("task", Text, nullable=False),
    Column("title", String(200), nullable=False),
    # {"planning": {"status", "questions", "answers", "metadata"}}
    Column("artifacts", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("status IN ('draft', 'validated')", name="ck_specs_status"),
    Index("ix_specs_created_at_id", "created_at", "id"),
)
