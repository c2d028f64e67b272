"""A sprint's events reach a watcher on another replica through LISTEN/NOTIFY, not polling: with the
watch's safety-net read an hour away, only notifications can carry it from start to end."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from crucible_agent import bootstrap
from crucible_agent.bootstrap import AgentCore
from crucible_agent.config import AgentSettings
from crucible_agent.domain.sprints import PlanningStatus, SpecSnapshot, SprintEvent, SprintEventType
from crucible_agent.service_layer import commands as c
from crucible_agent.service_layer.sprints import handlers
from crucible_common.database import create_engine, migrate
from tests.integration.agent_fixtures import TASK, Emulator, agent_settings, serve_emulator

pytestmark = pytest.mark.integration

SPEC = SpecSnapshot(str(uuid.uuid4()), "Hello", TASK, PlanningStatus.ANSWERED, (("Python version?", "3.11"),))


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=8)
    await migrate(engine, schema="agent", script_location=bootstrap.MIGRATIONS)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
async def emulator() -> AsyncIterator[Emulator]:
    async with serve_emulator() as running:
        yield running


@contextlib.asynccontextmanager
async def replica(engine: AsyncEngine, settings: AgentSettings) -> AsyncIterator[AgentCore]:
    core = bootstrap.build_core(settings, engine, bootstrap.build_providers(settings))
    try:
        yield core
    finally:
        await core.scheduler.close()
        await core.updates.close()
        await core.pool.close()


async def test_a_watcher_on_another_replica_follows_a_sprint_by_notification(
    engine: AsyncEngine, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handlers, "WATCH_FALLBACK_SECONDS", 3600.0)
    settings = agent_settings(emulator, artifacts_dir=tmp_path / "artifacts")
    async with replica(engine, settings) as worker, replica(engine, settings) as watcher:
        sprint = await handlers.create_sprint(c.CreateSprint("watched", "", SPEC), worker.uow)
        watch = handlers.watch_sprint(c.WatchSprint(sprint.id, 0), watcher.uow, watcher.sprints.updates)
        first = await anext(watch)
        await handlers.start_sprint(
            c.StartSprint(sprint.id, f"click-{uuid.uuid4()}", "test"),
            worker.uow,
            worker.scheduler,
            worker.sprints.owner,
        )
        async with asyncio.timeout(180):
            events = [first, *[event async for event in watch]]

    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert events[0].type is SprintEventType.SPRINT_CREATED
    assert SprintEventType.SPRINT_STARTED in {e.type for e in events}
    assert events[-1].type is SprintEventType.SPRINT_COMPLETED


async def _collect(events: AsyncIterator[SprintEvent]) -> list[SprintEvent]:
    return [event async for event in events]
