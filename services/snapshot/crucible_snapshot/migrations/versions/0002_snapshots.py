"""Snapshots (immutable: a trigger refuses any UPDATE), test reports, their results, and replays.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "snapshot"

# The database itself keeps snapshots immutable, whatever path a write takes (a bug, a console):
# data, invariants and metrics never change, so neither does anything else; a new snapshot is made.
REFUSE_UPDATE = (
    f"""
CREATE FUNCTION "{SCHEMA}".refuse_snapshot_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'snapshot % is immutable: create a new snapshot (from this one as its parent) instead',
        OLD.id
        USING ERRCODE = 'restrict_violation', HINT = 'snapshots cannot be modified once created';
END
$$
""",
    f"""
CREATE TRIGGER snapshots_immutable BEFORE UPDATE ON "{SCHEMA}".snapshots
    FOR EACH ROW EXECUTE FUNCTION "{SCHEMA}".refuse_snapshot_update()
""",
)


def _time(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _report_fk(nullable: bool = False) -> sa.Column[str]:
    return sa.Column(
        "report_id",
        sa.Uuid(as_uuid=False),
        sa.ForeignKey(f"{SCHEMA}.test_reports.id", ondelete="CASCADE"),
        nullable=nullable,
    )


def upgrade() -> None:
    op.create_table(
        "snapshots",
        sa.Column("id", sa.Uuid(as_uuid=False), primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("tags", ARRAY(sa.Text), nullable=False),
        # NULL for an imported snapshot.
        sa.Column("project_id", sa.Uuid(as_uuid=False), nullable=True),
        sa.Column("run_id", sa.Uuid(as_uuid=False), nullable=True),
        sa.Column("parent_id", sa.Uuid(as_uuid=False), nullable=True),
        sa.Column("snapshot_data", JSONB, nullable=False),
        sa.Column("reference_metrics", JSONB, nullable=True),
        sa.Column("invariants", JSONB, nullable=False),
        sa.Column("version", sa.String(16), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        schema=SCHEMA,
    )
    op.create_index("ix_snapshots_tags", "snapshots", ["tags"], schema=SCHEMA, postgresql_using="gin")
    op.create_index("ix_snapshots_created", "snapshots", ["created_at", "id"], schema=SCHEMA)
    op.create_index("ix_snapshots_project_created", "snapshots", ["project_id", "created_at", "id"], schema=SCHEMA)
    for statement in REFUSE_UPDATE:
        op.execute(statement)
    op.create_table(
        "test_reports",
        sa.Column("id", sa.Uuid(as_uuid=False), primary_key=True),
        sa.Column("trigger_id", sa.String(200), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("options", JSONB, nullable=False),
        sa.Column("snapshot_ids", JSONB, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("total_cost_usd", sa.Float, nullable=False),
        sa.Column("lease_owner", sa.String(100), nullable=False),
        sa.Column("lease_token", sa.BigInteger, nullable=False, server_default="0"),
        _time("lease_expires_at", nullable=True),
        _time("created_at"),
        _time("ended_at", nullable=True),
        sa.CheckConstraint("status IN ('running', 'completed', 'failed')", name="ck_test_reports_status"),
        schema=SCHEMA,
    )
    op.create_index("ix_test_reports_created", "test_reports", ["created_at", "id"], schema=SCHEMA)
    op.create_index(
        "ix_test_reports_live_lease",
        "test_reports",
        ["lease_expires_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_table(
        "test_results",
        _report_fk(),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("sequence", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
        sa.Column("snapshot_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", JSONB, nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("report_id", "position", name="pk_test_results"),
        schema=SCHEMA,
    )
    op.create_index("ix_test_results_report_sequence", "test_results", ["report_id", "sequence"], schema=SCHEMA)
    op.create_table(
        "replays",
        sa.Column("trigger_id", sa.String(200), primary_key=True),
        sa.Column("snapshot_id", sa.Uuid(as_uuid=False), nullable=False),
        _report_fk(nullable=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("repetition", sa.Integer, nullable=False),
        sa.Column("project_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("run_id", sa.Uuid(as_uuid=False), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reserved_usd", sa.Float, nullable=False),
        sa.Column("metrics", JSONB, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        _time("created_at"),
        sa.CheckConstraint("state IN ('prepared', 'running', 'ended', 'skipped')", name="ck_replays_state"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_replays_report",
        "replays",
        ["report_id"],
        schema=SCHEMA,
        postgresql_where=sa.text("report_id IS NOT NULL"),
    )


def downgrade() -> None:
    for table in ("replays", "test_results", "test_reports"):
        op.drop_table(table, schema=SCHEMA)
    op.execute(f'DROP TRIGGER snapshots_immutable ON "{SCHEMA}".snapshots')
    op.execute(f'DROP FUNCTION "{SCHEMA}".refuse_snapshot_update()')
    op.drop_table("snapshots", schema=SCHEMA)
