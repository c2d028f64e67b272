"""The ``run`` schema, as SQLAlchemy Core tables (migrations are in ``migrations/``)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    or_,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from crucible_common.leases import LeasedTable

SCHEMA = "run"

metadata = MetaData(schema=SCHEMA)

runs = Table(
    "runs",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    # A reference into the spec context, checked over gRPC: no cross-schema key.
    Column("project_id", Uuid(as_uuid=False), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("parameters", JSONB, nullable=False),
    Column("status", String(16), nullable=False),
    Column("phases", JSONB, nullable=False),
    Column("phases_done", JSONB, nullable=False),
    # The explicit action that created the run: one run per trigger id.
    Column("trigger_id", String(200), nullable=False, unique=True),
    Column("trigger_source", String(32), nullable=False),
    Column("trigger_metadata", JSONB, nullable=False),
    Column("triggered_at", DateTime(timezone=True), nullable=False),
    Column("chat_session_id", String(36), nullable=False),
    Column("recommended_message_id", String(36), nullable=False),
    Column("recommended_config_snapshot", JSONB, nullable=True),
    # The ProblemSpec and WorldModel as the run read them when it started.
    Column("problem", JSONB, nullable=True),
    Column("counts", JSONB, nullable=False),
    Column("usage", JSONB, nullable=False),
    Column("failure_reason", Text, nullable=False),
    Column("error_summary", Text, nullable=False),
    Column("run_summary_message_id", String(36), nullable=False),
    # Ended, but its summary is not in the chat yet: still leased work until it is.
    Column("summary_pending", Boolean, nullable=False),
    # Ended FAILED, and its project's auto_snapshot_failed_runs not yet acted on: leased work too.
    Column("snapshot_pending", Boolean, nullable=False, server_default=false()),
    # Recorded replay: the run whose calls answer this one's ("" for a live run).
    Column("replay_of_run_id", String(36), nullable=False, server_default=""),
    # The snapshot test suite the run replays for; its model calls carry it.
    Column("snapshot_test_id", String(100), nullable=False, server_default=""),
    # The execution trace, and the context of its root span (every executor works under it).
    Column("trace_id", String(32), nullable=False),
    Column("trace_context", JSONB, nullable=False),
    # {"trace_id", "span_id"} of the span that created the run and of the one that posted its summary.
    Column("create_span", JSONB, nullable=True),
    Column("summary_span", JSONB, nullable=True),
    Column("lease_owner", String(100), nullable=False),
    Column("lease_token", BigInteger, nullable=False, server_default="0"),
    Column("lease_expires_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("status IN ('CREATED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')", name="ck_runs_status"),
    Index("ix_runs_project_created", "project_id", "created_at", "id"),
    Index(
        "ix_runs_live_lease",
        "lease_expires_at",
        postgresql_where=text("status = 'RUNNING' OR summary_pending OR snapshot_pending"),
    ),
)


def _run_fk() -> Column[str]:
    return Column("run_id", Uuid(as_uuid=False), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False)


candidates = Table(
    "candidates",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    _run_fk(),
    Column("position", Integer, nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("approach", Text, nullable=False),
    Column("assumptions", JSONB, nullable=False),
    Column("origin", String(16), nullable=False),
    Column("source_candidate_id", String(36), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("run_id", "position", name="uq_candidates_run_position"),
)

scenarios = Table(
    "scenarios",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    _run_fk(),
    Column("position", Integer, nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("conditions", JSONB, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("run_id", "position", name="uq_scenarios_run_position"),
)

evaluations = Table(
    "evaluations",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    _run_fk(),
    Column("candidate_id", Uuid(as_uuid=False), ForeignKey("candidates.id", ondelete="CASCADE"), nullable=False),
    Column("scenario_id", Uuid(as_uuid=False), ForeignKey("scenarios.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("p", JSONB, nullable=True),
    Column("r", JSONB, nullable=True),
    Column("constraint_satisfaction", JSONB, nullable=False),
    Column("explanation", Text, nullable=False),
    Column("failure_reason", Text, nullable=False),
    Column("raw_answer", Text, nullable=False),
    Column("llm_call_id", String(36), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("status IN ('succeeded', 'failed')", name="ck_evaluations_status"),
    # One evaluation per pair: a continued run cannot evaluate a pair twice.
    UniqueConstraint("run_id", "candidate_id", "scenario_id", name="uq_evaluations_pair"),
    Index("ix_evaluations_run_created", "run_id", "created_at", "id"),
)

rankings = Table(
    "rankings",
    metadata,
    _run_fk(),
    Column("candidate_id", Uuid(as_uuid=False), ForeignKey("candidates.id", ondelete="CASCADE"), nullable=False),
    Column("rank", Integer, nullable=False),
    Column("label", String(16), nullable=False),
    Column("i", Float, nullable=True),
    Column("p", Float, nullable=True),
    Column("r", Float, nullable=True),
    Column("violated_constraints", JSONB, nullable=False),
    Column("evaluations", Integer, nullable=False),
    Column("failed_evaluations", Integer, nullable=False),
    UniqueConstraint("run_id", "candidate_id", name="uq_rankings_run_candidate"),
    Index("ix_rankings_run_rank", "run_id", "rank"),
)

run_events = Table(
    "run_events",
    metadata,
    Column("sequence", BigInteger, primary_key=True, autoincrement=True),
    _run_fk(),
    Column("type", String(40), nullable=False),
    Column("data", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_run_events_run_sequence", "run_id", "sequence"),
)

# Leased work: a run being executed, or ended with its summary still to post or its failure
# snapshot still to make.
LEASED_RUNS = LeasedTable(
    "run",
    runs,
    or_(runs.c.status == "RUNNING", runs.c.summary_pending.is_(True), runs.c.snapshot_pending.is_(True)),
)
