"""Cancelling a sprint stops the spending: over real Postgres, the real SDKs and the offline emulator.

Whenever the cancel lands (right after the start, while planning, while coding, on this replica or
on another one sharing the database), once it has returned not one more model request is sent:
counted where the SDK sends it and at the emulator. The sprint, its running phase attempt and that
attempt's agent run are all ``cancelled``, every attempt's agent run exists, and the lease loops,
given every lease lapsed, take nothing of it over.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from crucible_agent import bootstrap
from crucible_agent.adapters import tables as t
from crucible_agent.adapters.providers.base import LlmProvider
from crucible_agent.bootstrap import AgentCore
from crucible_agent.config import AgentSettings
from crucible_agent.domain.errors import ProviderError
from crucible_agent.domain.model import AgentRunStatus, LlmRequest, ProviderResponse, TextSink
from crucible_agent.domain.sprint_errors import SprintFinished
from crucible_agent.domain.sprints import (
    Phase,
    PhaseAttemptStatus,
    PlanningStatus,
    SpecSnapshot,
    Sprint,
    SprintEvent,
    SprintStatus,
)
from crucible_agent.service_layer import commands as c
from crucible_agent.service_layer.sprints import handlers
from crucible_agent.service_layer.sprints.phase_runner import PhaseRunner
from crucible_agent.service_layer.sprints.prompts import VERIFIER_SYSTEM
from crucible_common.database import create_engine, migrate
from crucible_common.leases import Workers, reclaim
from tests.integration.agent_fixtures import TASK, Emulator, agent_settings, serve_emulator

pytestmark = pytest.mark.integration

SPEC = SpecSnapshot(str(uuid.uuid4()), "Hello", TASK, PlanningStatus.ANSWERED, (("Python version?", "3.11"),))


def kind_of(request: LlmRequest) -> str:
    """Which step of the sprint a model request is."""
    if request.schema_name == "sprint_plan":
        return "plan"
    if request.schema_name == "judge_decision":
        return "judge"
    return "verify" if request.messages[0].content == VERIFIER_SYSTEM else "code"


@dataclass
class Traffic:
    """Every model request the providers of one replica sent; the first answer of kind ``hold`` is held back."""

    hold: str = ""
    sent: list[str] = field(default_factory=list)
    held: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)


class Tapped(LlmProvider):
    """A real provider (its SDK, to the emulator) whose requests are counted as they are sent."""

    def __init__(self, inner: LlmProvider, traffic: Traffic) -> None:
        self.name = inner.name
        self._inner = inner
        self._traffic = traffic

    async def complete(self, request: LlmRequest) -> ProviderResponse:
        kind = kind_of(request)
        self._traffic.sent.append(kind)
        try:
            response = await self._inner.complete(request)
        except ProviderError:
            await self._held_back(kind)
            raise
        await self._held_back(kind)
        return response

    async def stream(self, request: LlmRequest, on_text: TextSink) -> ProviderResponse:
        response = await self.complete(request)
        await on_text(response.text)
        return response

    async def close(self) -> None:
        await self._inner.close()

    async def _held_back(self, kind: str) -> None:
        # The provider has answered; its answer stays "on the wire" until the test lets it through.
        if kind == self._traffic.hold and not self._traffic.held.is_set():
            self._traffic.held.set()
            await self._traffic.release.wait()


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=12)
    await migrate(engine, schema="agent", script_location=bootstrap.MIGRATIONS)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
async def emulator() -> AsyncIterator[Emulator]:
    async with serve_emulator() as running:
        yield running


@pytest.fixture
def settings(emulator: Emulator, tmp_path: Path) -> AgentSettings:
    return agent_settings(emulator, artifacts_dir=tmp_path / "artifacts")


@contextlib.asynccontextmanager
async def replica(engine: AsyncEngine, settings: AgentSettings, traffic: Traffic) -> AsyncIterator[AgentCore]:
    """One agent service process (its own lease owner) on the shared database, its requests counted."""
    providers = {name: Tapped(p, traffic) for name, p in bootstrap.build_providers(settings).items()}
    core = bootstrap.build_core(settings, engine, dict(providers))
    try:
        yield core
    finally:
        traffic.release.set()
        await core.scheduler.close()
        await core.pool.close()


async def start(core: AgentCore) -> str:
    sprint = await handlers.create_sprint(c.CreateSprint("cancel me", "", SPEC), core.uow)
    trigger = c.StartSprint(sprint.id, f"click-{uuid.uuid4()}", "test")
    await handlers.start_sprint(trigger, core.uow, core.scheduler, core.sprints.owner)
    return sprint.id


async def cancel(core: AgentCore, sprint_id: str) -> Sprint:
    cmd = c.CancelSprint(sprint_id, "changed my mind")
    return await handlers.cancel_sprint(cmd, core.uow, core.scheduler, core.runner)


async def requests_so_far(traffic: Traffic, emulator: Emulator) -> tuple[int, int]:
    return len(traffic.sent), await emulator.requests_served()


async def assert_cancelled_whole(core: AgentCore, sprint_id: str) -> Sprint:
    """The sprint, its attempts and their agent runs: nothing left running, no attempt without its run."""
    sprint = await handlers.get_sprint(sprint_id, core.uow)
    assert sprint.status is SprintStatus.CANCELLED
    assert sprint.failure_reason == "cancelled: changed my mind"
    for attempt in sprint.phases:
        assert attempt.status is not PhaseAttemptStatus.RUNNING, attempt
        run = (await core.runner.result(attempt.agent_run_id)).run
        assert run.status is not AgentRunStatus.RUNNING, run
        if attempt.status is PhaseAttemptStatus.CANCELLED:
            assert run.status is AgentRunStatus.CANCELLED
            assert run.failure_reason == "cancelled: changed my mind"
    return sprint


async def assert_nothing_taken_over(engine: AsyncEngine, core: AgentCore, sprint_id: str) -> None:
    """As if the lease loops came round long after every lease of the sprint had lapsed."""
    async with engine.begin() as conn:
        past = func.now() - text("interval '1 hour'")
        await conn.execute(update(t.sprints).where(t.sprints.c.id == sprint_id).values(lease_expires_at=past))
        await conn.execute(
            update(t.agent_runs).where(t.agent_runs.c.sprint_id == sprint_id).values(lease_expires_at=past)
        )
    assert await core.runner.resume_stale() == 0
    assert await reclaim(core.sprints.leases, core.scheduler.launch) == 0


@pytest.mark.parametrize("turns", [0, 1, 10, 40])
async def test_a_cancel_right_after_the_start_leaves_no_attempt_without_its_run(
    engine: AsyncEngine, emulator: Emulator, settings: AgentSettings, turns: int
) -> None:
    await emulator.configure()
    traffic = Traffic()
    async with replica(engine, settings, traffic) as core:
        sprint_id = await start(core)
        # Let the sprint's task take a few steps (none, its first statements, …) before the cancel.
        for _ in range(turns):
            await asyncio.sleep(0)

        cancelled = await cancel(core, sprint_id)
        at_cancel = await requests_so_far(traffic, emulator)

        assert cancelled.status is SprintStatus.CANCELLED
        await assert_cancelled_whole(core, sprint_id)
        await assert_nothing_taken_over(engine, core, sprint_id)
        assert await requests_so_far(traffic, emulator) == at_cancel


@pytest.mark.parametrize(
    ("hold", "phase", "next_step"), [("plan", Phase.DISCOVERY, "judge"), ("code", Phase.CODING, "verify")]
)
async def test_a_cancel_stops_the_phase_in_flight_and_its_agent_run(
    engine: AsyncEngine, emulator: Emulator, settings: AgentSettings, hold: str, phase: Phase, next_step: str
) -> None:
    await emulator.configure()
    traffic = Traffic(hold=hold)
    async with replica(engine, settings, traffic) as core:
        sprint_id = await start(core)
        await traffic.held.wait()

        await cancel(core, sprint_id)
        at_cancel = await requests_so_far(traffic, emulator)
        # The answer in flight arrives after the cancel: nothing is left to take it.
        traffic.release.set()

        sprint = await assert_cancelled_whole(core, sprint_id)
        attempt = sprint.phases[-1]
        assert (attempt.phase, attempt.status) == (phase, PhaseAttemptStatus.CANCELLED)
        assert sprint.current_phase is phase
        events = [e.type.value for e in await _events(core, sprint_id)]
        assert events[-2:] == ["phase.cancelled", "sprint.cancelled"]
        await assert_nothing_taken_over(engine, core, sprint_id)
        assert await requests_so_far(traffic, emulator) == at_cancel
        # What would have followed the answer held in flight was never asked for.
        assert next_step not in traffic.sent


@pytest.mark.parametrize(
    ("hold", "answer"),
    [
        # The answer in flight is refused when stored; the calls it paid for are kept.
        ("code", "ok"),
        # The request in flight is answered 429: its retry is refused by the fence, unsent.
        ("code", "rate_limited"),
        # A planner's answer is refused; the planning run's judge is never asked.
        ("plan", "ok"),
    ],
)
async def test_a_cancel_on_another_replica_stops_this_ones_work_at_its_next_step(
    engine: AsyncEngine, emulator: Emulator, settings: AgentSettings, hold: str, answer: str
) -> None:
    faults = [{"kind": "rate_limit", "match": {"task": "coding_agent"}, "count": 1}] if answer == "rate_limited" else []
    await emulator.configure(faults=faults)
    working, other = Traffic(hold=hold), Traffic()
    async with replica(engine, settings, working) as a, replica(engine, settings, other) as b:
        # Replica A's heartbeat does not come round during the test: the fences alone must stop it.
        a.scheduler = Workers(
            a.sprints.leases, lambda lease: PhaseRunner(a.sprints, lease).run(), heartbeat_seconds=3600
        )
        sprint_id = await start(a)
        await working.held.wait()

        cancelled = await cancel(b, sprint_id)
        at_cancel = await requests_so_far(working, emulator)
        working.release.set()
        # Replica A's task ends on its own, at its next fenced step.
        await a.scheduler.wait(sprint_id)

        assert cancelled.status is SprintStatus.CANCELLED
        assert other.sent == []
        assert await requests_so_far(working, emulator) == at_cancel
        sprint = await assert_cancelled_whole(a, sprint_id)
        assert sprint.phases[-1].status is PhaseAttemptStatus.CANCELLED
        if (hold, answer) == ("code", "ok"):
            coding = sprint.phases[-1]
            # The turn answered after the cancel was not stored in the transcript …
            assert coding.output.messages == ()
            # … but the call was paid for, so it is in the call log.
            calls = select(t.llm_calls.c.status).where(t.llm_calls.c.agent_run_id == coding.agent_run_id)
            async with engine.connect() as conn:
                assert (await conn.scalars(calls)).all() == ["succeeded"]
        await assert_nothing_taken_over(engine, a, sprint_id)
        await assert_nothing_taken_over(engine, b, sprint_id)
        assert await requests_so_far(working, emulator) == at_cancel


async def test_a_finished_sprint_is_not_cancelled_again(
    engine: AsyncEngine, emulator: Emulator, settings: AgentSettings
) -> None:
    await emulator.configure()
    async with replica(engine, settings, Traffic()) as core:
        sprint_id = await start(core)
        await cancel(core, sprint_id)

        with pytest.raises(SprintFinished):
            await cancel(core, sprint_id)


async def _events(core: AgentCore, sprint_id: str) -> list[SprintEvent]:
    async with core.uow(read_only=True) as uow:
        return await uow.sprints.events(sprint_id, 0, 1000)
