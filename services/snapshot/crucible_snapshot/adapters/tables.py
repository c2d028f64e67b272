"""The ``snapshot`` schema, as SQLAlchemy Core tables (migrations are in ``migrations/``)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from crucible_common.leases import LeasedTable
from crucible_snapshot.service_layer.unit_of_work import TEST_REPORT

SCHEMA = "snapshot"

metadata = MetaData(schema=SCHEMA)

# Immutable: a trigger (see the migration) refuses every UPDATE; a changed snapshot is a new one.
snapshots = Table(
    "snapshots",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("description", Text, nullable=False),
    Column("tags", ARRAY(Text), nullable=False),
    # References into the spec and run contexts, checked over gRPC: no cross-schema key.
    # NULL for an imported snapshot (made from another installation's export).
    Column("project_id", Uuid(as_uuid=False), nullable=True),
    Column("run_id", Uuid(as_uuid=False), nullable=True),
    # The snapshot this one was made from; it may be deleted since, so no foreign key.
    Column("parent_id", Uuid(as_uuid=False), nullable=True),
    Column("snapshot_data", JSONB, nullable=False),
    Column("reference_metrics", JSONB, nullable=True),
    Column("invariants", JSONB, nullable=False),
    # The schema version of snapshot_data as stored (read, it is migrated to the current one).
    Column("version", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_snapshots_tags", "tags", postgresql_using="gin"),
    Index("ix_snapshots_created", "created_at", "id"),
    Index("ix_snapshots_project_created", "project_id", "created_at", "id"),
)

test_reports = Table(
    "test_reports",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    # The explicit action that started the suite: one suite per trigger id.
    Column("trigger_id", String(200), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("options", JSONB, nullable=False),
    Column("snapshot_ids", JSONB, nullable=False),
    Column("error", Text, nullable=False),
    Column("total_cost_usd", Float, nullable=False),
    Column("lease_owner", String(100), nullable=False),
    Column("lease_token", BigInteger, nullable=False, server_default="0"),
    Column("lease_expires_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("status IN ('running', 'completed', 'failed')", name="ck_test_reports_status"),
    Index("ix_test_reports_created", "created_at", "id"),
    Index("ix_test_reports_live_lease", "lease_expires_at", postgresql_where=text("status = 'running'")),
)


def _report_fk(nullable: bool = False) -> Column[str]:
    return Column(
        "report_id", Uuid(as_uuid=False), ForeignKey("test_reports.id", ondelete="CASCADE"), nullable=nullable
    )


# One row per snapshot of a suite, stored once final; ``sequence`` orders them as they finished.
test_results = Table(
    "test_results",
    metadata,
    _report_fk(),
    Column("position", Integer, nullable=False),
    Column("sequence", BigInteger, Identity(), nullable=False, unique=True),
    Column("snapshot_id", Uuid(as_uuid=False), nullable=False),
    Column("status", String(16), nullable=False),
    Column("result", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("report_id", "position", name="pk_test_results"),
    Index("ix_test_results_report_sequence", "report_id", "sequence"),
)

# Every replay run, by its trigger id: what a resumed suite or a retried replay continues from.
replays = Table(
    "replays",
    metadata,
    Column("trigger_id", String(200), primary_key=True),
    Column("snapshot_id", Uuid(as_uuid=False), nullable=False),
    _report_fk(nullable=True),
    Column("position", Integer, nullable=False),
    Column("repetition", Integer, nullable=False),
    Column("project_id", Uuid(as_uuid=False), nullable=False),
    Column("run_id", Uuid(as_uuid=False), nullable=True),
    Column("state", String(16), nullable=False),
    Column("reserved_usd", Float, nullable=False),
    Column("metrics", JSONB, nullable=True),
    Column("reason", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("state IN ('prepared', 'running', 'ended', 'skipped')", name="ck_replays_state"),
    Index("ix_replays_report", "report_id", postgresql_where=text("report_id IS NOT NULL")),
)

# Leased work: a suite still running.
LEASED_REPORTS = LeasedTable(TEST_REPORT, test_reports, test_reports.c.status == "running")
