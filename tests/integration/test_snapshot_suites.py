"""Test suites on real Postgres, leased like the service leases them: the stream (started, results,
the report) through LISTEN/NOTIFY; idempotence by trigger; and a suite whose worker stopped mid-way
continued by another process without paying twice."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from crucible_common.leases import Lease, LeaseLost, reclaim
from crucible_snapshot.domain import model
from crucible_snapshot.domain.model import Invariant, ReplayState, ReportStatus, ResultStatus, SnapshotTestResult
from crucible_snapshot.service_layer import commands as c
from crucible_snapshot.service_layer import handlers as h
from crucible_snapshot.service_layer import suites
from crucible_snapshot.service_layer.handlers import Started
from crucible_snapshot.service_layer.unit_of_work import TEST_REPORT
from tests.integration.snapshot_harness import Neighbours, SnapshotHarness, snapshot_engine
from tests.unit.snapshot.fakes import snapshot

pytestmark = pytest.mark.integration

T = TypeVar("T")

PASSING = (Invariant("run_status", "COMPLETED"), Invariant("custom", "evaluations == candidates * scenarios"))


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with snapshot_engine(database_url) as engine:
        yield engine


async def until(condition: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - the fakes have no event for each condition
            await asyncio.sleep(0.02)


async def until_async(read: Callable[[], Awaitable[T]], expected: T, timeout: float = 10) -> None:
    """Until ``read()`` answers ``expected`` (a state stored in the database, a lease claimed)."""
    async with asyncio.timeout(timeout):
        while await read() != expected:  # noqa: ASYNC110 - what is polled is in the database
            await asyncio.sleep(0.05)


def suite(made: list[model.Snapshot], **options: object) -> c.RunSnapshotTests:
    return c.RunSnapshotTests(
        f"suite-{uuid.uuid4()}",
        tuple(s.id for s in made),
        options=model.TestOptions(**options),  # type: ignore[arg-type]
    )


async def test_a_suite_streams_its_start_each_result_and_the_report(engine: AsyncEngine) -> None:
    harness = SnapshotHarness.make(engine, Neighbours.make(latency=0.05))
    made = await harness.add(*(snapshot(f"stream {uuid.uuid4()}", invariants=PASSING) for _ in range(3)))
    try:
        report = await suites.run_snapshot_tests(suite(made, concurrency=2), harness.deps)
        again = await suites.run_snapshot_tests(c.RunSnapshotTests(report.trigger_id, (made[0].id,)), harness.deps)
        async with asyncio.timeout(10):
            events = [e async for e in h.watch_report(report.id, harness.deps)]
        # Read later, the same from storage.
        replayed = [e async for e in h.watch_report(report.id, harness.deps)]
    finally:
        await harness.close()

    assert again.id == report.id
    assert isinstance(events[0], Started)
    assert events[0].snapshot_ids == tuple(s.id for s in made)
    assert [type(e) for e in events[1:] if not isinstance(e, model.ReplayMove)] == [SnapshotTestResult] * 3 + [
        model.TestReport
    ]
    # Each replay's moves while its snapshot is in progress (a run of 50 ms per call is seen running),
    # with its run, and none after its snapshot's result.
    results = {e.snapshot_id: e for e in events if isinstance(e, SnapshotTestResult)}
    moves = [e for e in events if isinstance(e, model.ReplayMove)]
    assert {m.snapshot_id for m in moves if m.state is model.ReplayState.RUNNING} == set(results)
    for move in moves:
        result = results[move.snapshot_id]
        assert events.index(move) < events.index(result)
        assert move.run_id in ("", *result.replay_run_ids)
        assert move.snapshot_name == next(s.name for s in made if s.id == move.snapshot_id)
    ended = events[-1]
    assert isinstance(ended, model.TestReport)
    assert ended.status is ReportStatus.COMPLETED
    assert [r.status for r in ended.results] == [ResultStatus.PASSED] * 3
    assert ended.summary.passed == 3
    assert ended.total_cost_usd == pytest.approx(0.30)
    # Read later: the same results and report (the snapshots are over: no replay is in progress).
    assert replayed == [e for e in events if not isinstance(e, model.ReplayMove)]
    listed, _ = await h.list_reports(c.ListTestReports(), harness.deps.uow)
    assert listed[0].id == report.id


async def test_a_suite_continued_by_another_process_pays_for_nothing_twice(engine: AsyncEngine) -> None:
    neighbours = Neighbours.make(latency=None)
    first = SnapshotHarness.make(engine, neighbours, "p1", lease_seconds=1.0)
    second = SnapshotHarness.make(engine, neighbours, "p2", lease_seconds=1.0)
    runs = neighbours.runs
    made = await first.add(*(snapshot(f"resume {uuid.uuid4()}", invariants=PASSING) for _ in range(4)))
    try:
        report = await suites.run_snapshot_tests(suite(made, concurrency=2), first.deps)
        await until(lambda: len(runs.runs) == 2)
        runs.finish(runs.runs[0].info.id)
        # The fourth is made ready ahead of its turn (its project restored), not started.
        expected = [ReplayState.ENDED, ReplayState.RUNNING, ReplayState.RUNNING, ReplayState.PREPARED]
        await until_async(lambda: _states(first, report.id), expected)
        # A heartbeat: the lease now lapses a second after the last one (not the 15 s a start takes).
        await asyncio.sleep(0.3)
        # The first process dies mid-suite: its work stops; the run service runs on what it started.
        await first.scheduler.close()
        async with first.deps.uow(read_only=True) as uow:
            assert list(await uow.repo.results_by_position(report.id)) == [0]

        # Its lease lapses; the second process claims the suite and continues it from what is stored.
        runs.latency = 0.05
        await until_async(lambda: reclaim(second.leases, second.scheduler.launch), 1)
        for run in runs.runs[1:3]:
            runs.finish(run.info.id)
        async with asyncio.timeout(10):
            events = [e async for e in h.watch_report(report.id, second.deps)]
        # The first process, were it still alive, could not store one more step.
        with pytest.raises(LeaseLost):
            async with first.deps.uow(lease=Lease(TEST_REPORT, report.id, "p1", 1)) as uow:
                await uow.commit()
    finally:
        await first.close()
        await second.close()

    ended = events[-1]
    assert isinstance(ended, model.TestReport)
    assert ended.status is ReportStatus.COMPLETED
    assert [r.status for r in ended.results] == [ResultStatus.PASSED] * 4
    assert len(runs.runs) == 4
    assert set(runs.paid.values()) == {1}
    assert ended.total_cost_usd == pytest.approx(0.40)


async def _states(harness: SnapshotHarness, report_id: str) -> list[ReplayState]:
    async with harness.deps.uow(read_only=True) as uow:
        return [r.state for r in await uow.repo.replays_of(report_id)]
