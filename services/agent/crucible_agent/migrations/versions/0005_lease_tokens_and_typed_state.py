"""Fencing tokens on leased work; candidate metrics and sprint event data in one shape each.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "agent"

# A candidate's metrics: the tool loop stored "calls" and no response model, the AgentRunner
# "attempts" and the response model; both become CandidateMetrics.
METRICS = """
jsonb_build_object(
    'duration_ms', coalesce(({m}->>'duration_ms')::bigint, 0),
    'input_tokens', coalesce(({m}->>'input_tokens')::bigint, 0),
    'output_tokens', coalesce(({m}->>'output_tokens')::bigint, 0),
    'usd', {m}->'usd',
    'attempts', coalesce(({m}->>'attempts')::int, ({m}->>'calls')::int, 1),
    'response_model', coalesce({m}->>'response_model', {model})
)
"""


def upgrade() -> None:
    for table in ("agent_runs", "sprints"):
        op.add_column(table, sa.Column("lease_token", sa.BigInteger, nullable=False, server_default="0"), schema=SCHEMA)
    op.execute(
        f"UPDATE {SCHEMA}.agent_candidates SET metrics = "
        + METRICS.format(m="metrics", model="model")
        + " WHERE NOT (metrics ? 'attempts' AND metrics ? 'response_model')"
    )
    # Discovery's candidate events had no attempt number (it has one attempt), and old metrics.
    op.execute(
        f"UPDATE {SCHEMA}.sprint_events SET data = data || jsonb_build_object('attempt', 1) "
        "WHERE type IN ('candidate.completed', 'candidate.failed') AND NOT data ? 'attempt'"
    )
    op.execute(
        f"UPDATE {SCHEMA}.sprint_events SET data = jsonb_set(data, '{{metrics}}', "
        + METRICS.format(m="(data->'metrics')", model="''")
        + ") WHERE type = 'candidate.completed' "
        "AND NOT (data->'metrics' ? 'attempts' AND data->'metrics' ? 'response_model')"
    )


def downgrade() -> None:
    for table in ("agent_runs", "sprints"):
        op.drop_column(table, "lease_token", schema=SCHEMA)
