"""A run's call log as its recording, on real Postgres: the lookup a replay makes, and its index."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from crucible_agent import bootstrap
from crucible_agent.adapters.repository import SqlAgentRepository
from crucible_agent.domain.model import Correlation, LlmCall, LlmCallStatus
from crucible_common.database import create_engine, migrate

pytestmark = pytest.mark.integration

AT = datetime(2026, 1, 1, tzinfo=UTC)
HASH = "a" * 64


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=2)
    await migrate(engine, schema="agent", script_location=bootstrap.MIGRATIONS)
    yield engine
    await engine.dispose()


def call(
    run_id: str, status: LlmCallStatus, *, second: int, attempt: int = 1, error: str = "", key: str = ""
) -> LlmCall:
    return LlmCall(
        id=str(uuid.uuid4()),
        provider="openai",
        model="gpt-4o-mini",
        response_model="gpt-4o-mini",
        correlation=Correlation(project_id="p", run_id=run_id, purpose="evaluation"),
        status=status,
        input_tokens=10,
        output_tokens=5,
        usd=0.0 if status is LlmCallStatus.REPLAYED else 0.001,
        latency_ms=3,
        request_hash=HASH,
        attempt=attempt,
        error=error,
        response=None
        if status is LlmCallStatus.FAILED
        else {"text": "{}", "tool_calls": [], "finish_reason": "stop", "response_model": "m"},
        request=None,
        created_at=AT + timedelta(seconds=second),
        idempotency_key=key,
    )


async def test_a_runs_calls_are_found_by_request_in_order_and_no_other_runs(engine: AsyncEngine) -> None:
    run, other = str(uuid.uuid4()), str(uuid.uuid4())
    stored = [
        call(run, LlmCallStatus.INVALID_OUTPUT, second=2, attempt=2, error="not JSON"),
        call(run, LlmCallStatus.FAILED, second=1, error="PROVIDER_UNAVAILABLE: openai: 503"),
        call(run, LlmCallStatus.SUCCEEDED, second=3, attempt=3),
        call(other, LlmCallStatus.SUCCEEDED, second=0),
        replace(call(run, LlmCallStatus.SUCCEEDED, second=4), request_hash="b" * 64),
    ]
    async with engine.begin() as conn:
        repo = SqlAgentRepository(conn)
        await repo.add_llm_calls(stored)
        found = await repo.run_calls(run, HASH)
        nothing = await repo.run_calls("", HASH)

    assert [c.id for c in found] == [stored[1].id, stored[0].id, stored[2].id]
    assert [c.answered for c in found] == [False, False, True]
    assert nothing == []


async def test_the_lookup_uses_its_index_even_in_a_generic_plan(engine: AsyncEngine) -> None:
    """The repository's own statement, prepared as a driver prepares it and planned without its values."""
    statements: list[str] = []

    def keep(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", keep)
    try:
        async with engine.connect() as conn:
            await SqlAgentRepository(conn).run_calls("r", HASH)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", keep)
    (lookup,) = statements
    async with engine.begin() as conn:
        # The tables are tiny: only with sequential scans ruled out does the plan show what can be used.
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        await conn.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
        await conn.execute(text(f"PREPARE run_calls AS {lookup}"))
        plan = "\n".join(row[0] for row in await conn.execute(text(f"EXPLAIN EXECUTE run_calls('r', '{HASH}')")))

    assert "Index Scan using ix_llm_calls_run_request" in plan, plan


async def test_an_idempotency_key_is_answered_by_a_replayed_answer_but_not_a_replayed_failure(
    engine: AsyncEngine,
) -> None:
    answered, failed = f"k-{uuid.uuid4()}", f"k-{uuid.uuid4()}"
    async with engine.begin() as conn:
        repo = SqlAgentRepository(conn)
        await repo.add_llm_calls(
            [
                call("r", LlmCallStatus.REPLAYED, second=1, key=answered),
                call("r", LlmCallStatus.REPLAYED, second=1, key=failed, error="PROVIDER_UNAVAILABLE: openai: 503"),
            ]
        )
        found = await repo.claim_unanswered([answered, failed], ["t-1", "t-2"], ["r", "r"], 15.0)

    assert list(found.answered) == [answered]
    assert found.won == {"t-1", "t-2"}


async def test_a_runs_calls_in_flight_are_its_claims_neither_answered_nor_lapsed(engine: AsyncEngine) -> None:
    run_id = f"r-{uuid.uuid4()}"
    running, answered, lapsed, elsewhere = (f"k-{uuid.uuid4()}" for _ in range(4))
    async with engine.begin() as conn:
        repo = SqlAgentRepository(conn)
        await repo.claim_unanswered([running, answered], ["t-1", "t-2"], [run_id, run_id], 15.0)
        # A claim whose process died (it lapsed), and another run's call.
        await repo.claim_unanswered([lapsed], ["t-3"], [run_id], -1.0)
        await repo.claim_unanswered([elsewhere], ["t-4"], [f"r-{uuid.uuid4()}"], 15.0)
        # An answered call's claim is left to lapse: not in flight any more.
        await repo.add_llm_calls([call(run_id, LlmCallStatus.SUCCEEDED, second=1, key=answered)])
        in_flight = await repo.calls_in_flight(run_id)
        await repo.release_claims([running], ["t-1"])
        after_release = await repo.calls_in_flight(run_id)

    assert (in_flight, after_release) == (1, 0)
