"""The ``agent`` schema (migrations in ``migrations/``)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    and_,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from crucible_common.leases import LeasedTable

SCHEMA = "agent"

metadata = MetaData(schema=SCHEMA)

CORRELATION_COLUMNS = ("project_id", "run_id", "sprint_id", "snapshot_test_id", "purpose", "agent_run_id")


def _correlation() -> list[Column[str]]:
    return [Column(name, String(100), nullable=False) for name in CORRELATION_COLUMNS]


llm_calls = Table(
    "llm_calls",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("provider", String(32), nullable=False),
    Column("model", String(200), nullable=False),
    Column("response_model", String(200), nullable=False),
    *_correlation(),
    Column("status", String(16), nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    # NULL when the model is unpriced: unknown, not free.
    Column("usd", Numeric(18, 8), nullable=True),
    Column("latency_ms", Integer, nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("error", Text, nullable=False),
    Column("response", JSONB, nullable=True),
    Column("request", JSONB, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("idempotency_key", String(200), nullable=False, server_default=""),
    CheckConstraint(
        "status IN ('succeeded', 'failed', 'invalid_output', 'replayed', 'cancelled')", name="ck_llm_calls_status"
    ),
    Index("ix_llm_calls_idempotency_key", "idempotency_key", postgresql_where=text("idempotency_key <> ''")),
    Index("ix_llm_calls_created_at_id", "created_at", "id"),
    # A recorded replay looks up the replayed run's calls by request (see Recording.run_id).
    Index("ix_llm_calls_run_request", "run_id", "request_hash", postgresql_where=text("run_id <> ''")),
    *(
        Index(f"ix_llm_calls_{name}", name, postgresql_where=f"{name} <> ''")
        for name in CORRELATION_COLUMNS
        if name != "purpose"
    ),
)

# The keyed calls in flight, one row a key: the process that holds a key's claim is the one paying
# a provider for it; another asked the same key waits for its answer (service_layer.call_log). The
# claim lapses at ``expires_at`` unless its process renews it, so a dead process does not hold a
# key for ever. UNLOGGED: see migration 0010.
llm_call_claims = Table(
    "llm_call_claims",
    metadata,
    Column("idempotency_key", String(200), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    # The run its call is for ('' for a call outside a run): see calls_in_flight.
    Column("run_id", String(100), nullable=False, server_default=""),
    prefixes=["UNLOGGED"],
)

recordings = Table(
    "recordings",
    metadata,
    Column("recording_key", String(200), primary_key=True),
    Column("request_hash", String(64), primary_key=True),
    Column("provider", String(32), nullable=False),
    Column("model", String(200), nullable=False),
    Column("response", JSONB, nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

agent_runs = Table(
    "agent_runs",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("history", JSONB, nullable=False),
    Column("subagents", JSONB, nullable=False),
    Column("judge", JSONB, nullable=True),
    Column("workspace_ref", String(500), nullable=False),
    Column("metadata", JSONB, nullable=False),
    *_correlation(),
    Column("recording", JSONB, nullable=False),
    Column("fork_of", JSONB, nullable=True),
    Column("failure_reason", Text, nullable=False),
    # Who is executing a running run, until when: a run whose lease lapsed (its process died)
    # is claimed and continued by another process, or by the same one after a restart.
    Column("json_schema", JSONB, nullable=True),
    Column("schema_name", String(100), nullable=False, server_default=""),
    # "agent_runner": subagents + judge, resumable by the AgentRunner; "sprint": a sprint phase's
    # tool loop, resumed by the sprint's PhaseRunner instead.
    Column("driver", String(16), nullable=False, server_default="agent_runner"),
    Column("lease_owner", String(100), nullable=False),
    # The fencing token: raised by every claim (see crucible_common.leases).
    Column("lease_token", BigInteger, nullable=False, server_default="0"),
    Column("lease_expires_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("status IN ('running', 'completed', 'failed', 'cancelled')", name="ck_agent_runs_status"),
    Index("ix_agent_runs_created_at_id", "created_at", "id"),
    Index("ix_agent_runs_running_lease", "lease_expires_at", postgresql_where=text("status = 'running'")),
)


def _run_fk() -> Column[str]:
    return Column("agent_run_id", Uuid(as_uuid=False), ForeignKey("agent_runs.id", ondelete="CASCADE"), nullable=False)


agent_candidates = Table(
    "agent_candidates",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    _run_fk(),
    Column("name", String(100), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("model", String(200), nullable=False),
    Column("output", Text, nullable=False),
    Column("structured", JSONB, nullable=True),
    Column("metrics", JSONB, nullable=False),
    Column("llm_call_id", String(36), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("agent_run_id", "name", name="uq_agent_candidates_run_name"),
)

agent_subagent_errors = Table(
    "agent_subagent_errors",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    _run_fk(),
    Column("name", String(100), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("model", String(200), nullable=False),
    Column("reason", String(100), nullable=False),
    Column("message", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("agent_run_id", "name", name="uq_agent_subagent_errors_run_name"),
)

agent_decisions = Table(
    "agent_decisions",
    metadata,
    Column("agent_run_id", Uuid(as_uuid=False), ForeignKey("agent_runs.id", ondelete="CASCADE"), primary_key=True),
    Column("candidate_id", String(36), nullable=False),
    Column("candidate_name", String(100), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("model", String(200), nullable=False),
    Column("rationale", Text, nullable=False),
    Column("fallback", Boolean, nullable=False),
    Column("fallback_reason", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

agent_checkpoints = Table(
    "agent_checkpoints",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    _run_fk(),
    Column("sequence", Integer, nullable=False),
    Column("label", String(120), nullable=False),
    Column("state", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("agent_run_id", "sequence", name="uq_agent_checkpoints_run_sequence"),
    UniqueConstraint("agent_run_id", "label", name="uq_agent_checkpoints_run_label"),
)


sprints = Table(
    "sprints",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("spec_id", String(100), nullable=False),
    Column("spec", JSONB, nullable=False),
    Column("name", String(200), nullable=False),
    Column("goal", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("current_phase", String(16), nullable=True),
    Column("trigger", JSONB, nullable=True),
    Column("workspace_ref", String(100), nullable=False),
    Column("failure_reason", Text, nullable=False),
    Column("lease_owner", String(100), nullable=False),
    Column("lease_token", BigInteger, nullable=False, server_default="0"),
    Column("lease_expires_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("status IN ('planned', 'active', 'completed', 'failed', 'cancelled')", name="ck_sprints_status"),
    Index("ix_sprints_created_at_id", "created_at", "id"),
    Index("ix_sprints_spec_id", "spec_id"),
    Index("ix_sprints_active_lease", "lease_expires_at", postgresql_where=text("status = 'active'")),
)

sprint_phases = Table(
    "sprint_phases",
    metadata,
    Column("sprint_id", Uuid(as_uuid=False), ForeignKey("sprints.id", ondelete="CASCADE"), primary_key=True),
    Column("phase", String(16), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("status", String(16), nullable=False),
    Column("agent_run_id", String(36), nullable=False),
    Column("summary", Text, nullable=False),
    Column("output", JSONB, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
)

sprint_events = Table(
    "sprint_events",
    metadata,
    Column("sequence", BigInteger, primary_key=True, autoincrement=True),
    Column("sprint_id", Uuid(as_uuid=False), ForeignKey("sprints.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(40), nullable=False),
    Column("data", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_sprint_events_sprint_sequence", "sprint_id", "sequence"),
)


# Leased work (crucible_common.leases): agent runs the AgentRunner drives, and active sprints. A
# sprint phase's own agent runs are driven, and fenced, by their sprint.
LEASED_AGENT_RUNS = LeasedTable(
    "agent_run", agent_runs, and_(agent_runs.c.status == "running", agent_runs.c.driver == "agent_runner")
)
LEASED_SPRINTS = LeasedTable("sprint", sprints, sprints.c.status == "active")
