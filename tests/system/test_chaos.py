"""The fault suite as system tests (``make chaos`` prints the same rows as a table).

Each fault lands on the same work — two pipeline runs, a sprint and a snapshot suite — on a stack
of its own: every service and the gateway SIGKILLed mid-work and started again, Postgres restarted
under the services, and the emulator failing 20 % of calls, answering 429, malformed, truncated,
or slower than the agent's timeout. Nothing may be lost and no stored answer paid for twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.chaos.harness import FAULTS, ChaosStack, Fault, chaos_stack, run_fault, table

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
async def chaos() -> AsyncIterator[ChaosStack]:
    async with chaos_stack() as stack:
        yield stack


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name.replace(" ", "-") for f in FAULTS])
async def test_nothing_is_lost_and_no_stored_answer_is_paid_twice(chaos: ChaosStack, fault: Fault) -> None:
    row = await run_fault(chaos, fault)

    report = table([row])
    assert row.started == row.completed + row.failed + row.lost, report
    assert row.lost == 0, report
    assert row.paid_twice == 0, report
    # Only answers in flight when the agent service itself died may be bought again.
    assert row.in_flight_repeated == 0 or fault.kills_agent, report
    # Crashes and restarts fail nothing: the work goes on from what it stored.
    if fault.inject is not None:
        assert row.completed == row.started, report
