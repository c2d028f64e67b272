"""Test suites on fakes: scheduling, the cost limit with reservations in flight, stop on failure,
repetitions, max_snapshots, idempotence, errors, and a suite continued by another process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import replace

import pytest

from crucible_common.errors import NotFound, Unavailable, ValidationFailed
from crucible_common.leases import Lease
from crucible_snapshot.domain import model
from crucible_snapshot.domain.model import (
    Invariant,
    ReplayMode,
    ReplayState,
    ReportStatus,
    ResultStatus,
    RunMetrics,
    Snapshot,
    SnapshotTestResult,
)
from crucible_snapshot.domain.snapshot_data import RunConfig, RunParameters, SeedCandidate, SnapshotData
from crucible_snapshot.service_layer import commands as c
from crucible_snapshot.service_layer import handlers as h
from crucible_snapshot.service_layer import suites
from crucible_snapshot.service_layer.handlers import Started
from crucible_snapshot.service_layer.suites import SuiteRunner
from tests.unit.snapshot.fakes import DATA, FakeRun, World, good_metrics, snapshot

PASSING = (Invariant("run_status", "COMPLETED"), Invariant("min_candidates", 3))


def snapshots(world: World, count: int, **changes: object) -> list[Snapshot]:
    return world.add(*(snapshot(f"s{i}", invariants=PASSING, **changes) for i in range(count)))


async def start(world: World, made: list[Snapshot], **options: object) -> tuple[model.TestReport, Lease]:
    cmd = c.RunSnapshotTests(
        f"trigger-{uuid.uuid4()}",
        tuple(s.id for s in made),
        options=model.TestOptions(**options),  # type: ignore[arg-type]
    )
    report = await suites.run_snapshot_tests(cmd, world.deps)
    return report, world.scheduler.launched[-1]


async def run_suite(world: World, made: list[Snapshot], **options: object) -> model.TestReport:
    report, lease = await start(world, made, **options)
    async with asyncio.timeout(10):
        await SuiteRunner(world.deps, lease).run()
    return await h.get_report(report.id, world.deps)


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110 - the fakes have no event for each condition
            await asyncio.sleep(0.01)


def statuses(report: model.TestReport) -> list[ResultStatus]:
    return [r.status for r in report.results]


async def test_a_suite_replays_each_snapshot_and_reports_in_the_seeds_shape() -> None:
    world = World.make()
    made = snapshots(world, 3)

    report = await run_suite(world, made)

    assert report.status is ReportStatus.COMPLETED
    assert (report.summary.total, report.summary.passed, report.summary.failed) == (3, 3, 0)
    assert [r.snapshot_name for r in report.results] == ["s0", "s1", "s2"]
    first = report.results[0]
    assert [(i.type, i.status, i.expected, i.actual) for i in first.invariants] == [
        ("run_status", ResultStatus.PASSED, "COMPLETED", "COMPLETED"),
        ("min_candidates", ResultStatus.PASSED, 3, 3),
    ]
    assert first.metrics_delta["candidate_count"].baseline == 3
    assert first.cost_usd == pytest.approx(0.10)
    assert report.total_cost_usd == pytest.approx(0.30)
    # Every replay ran as a snapshot test, under the suite's correlation id.
    assert {r.new.snapshot_test_id for r in world.runs.runs} == {report.id}
    assert all(r.new.trigger_id.startswith(f"snapshot-test:{report.id}:") for r in world.runs.runs)
    assert report.ended_at is not None


async def test_a_suite_replays_the_seeds_a_snapshot_kept_by_id_only_whole_from_its_run() -> None:
    world = World.make()
    named = SeedCandidate("Arch", "stone", "corbel", ("dry",), "c-1")
    config = RunConfig("eval_only", RunParameters(num_scenarios=2, seed_candidate_ids=("c-1",)))
    made = snapshots(world, 1, data=replace(DATA, run_config=config))
    world.runs.reference(made[0].project_id, good_metrics(made[0].run_id), config, seeds=(named,))

    await run_suite(world, made)

    (replayed,) = (r.new.config.parameters for r in world.runs.runs)
    assert (replayed.seed_candidate_ids, replayed.seed_candidates) == ((), (named,))


async def test_the_stream_starts_then_gives_each_result_then_the_report() -> None:
    world = World.make()
    made = snapshots(world, 2)
    report, lease = await start(world, made)
    seen: list[object] = []

    async def watch() -> None:
        async for event in h.watch_report(report.id, world.deps):
            seen.append(event)

    watcher = asyncio.create_task(watch())
    await SuiteRunner(world.deps, lease).run()
    async with asyncio.timeout(5):
        await watcher

    assert isinstance(seen[0], Started)
    assert seen[0].snapshot_ids == report.snapshot_ids
    assert seen[0].repetitions == 1
    told = [e for e in seen[1:] if not isinstance(e, model.ReplayMove)]
    assert [type(e) for e in told] == [SnapshotTestResult, SnapshotTestResult, model.TestReport]
    # Each replay's moves are told while its snapshot is in progress: its run once created, and
    # none after the snapshot's result.
    for result in told[:2]:
        assert isinstance(result, SnapshotTestResult)
        moves = [e for e in seen if isinstance(e, model.ReplayMove) and e.snapshot_id == result.snapshot_id]
        assert all(seen.index(m) < seen.index(result) for m in moves)
        assert {m.run_id for m in moves if m.state is not model.ReplayState.PREPARED} <= set(result.replay_run_ids)
    last = seen[-1]
    assert isinstance(last, model.TestReport)
    assert last.status is ReportStatus.COMPLETED


async def test_a_result_committed_after_a_later_numbered_one_is_still_told() -> None:
    # Two snapshots' results stored at once: the one numbered first commits last. A watcher that
    # had read the other must still tell it (it reads by position, not after a number).
    world = World.make()
    made = snapshots(world, 2)
    report, _ = await start(world, made)
    seen: list[object] = []
    first, second = (SnapshotTestResult(s.id, s.name, ResultStatus.PASSED) for s in made)
    second_told = asyncio.Event()

    async def watch() -> None:
        async for event in h.watch_report(report.id, world.deps):
            seen.append(event)
            if event == second:
                second_told.set()

    watcher = asyncio.create_task(watch())
    world.tables.results[report.id][1] = (2, second)
    world.tables.changed.set()
    async with asyncio.timeout(5):
        await second_told.wait()
    world.tables.results[report.id][0] = (1, first)
    world.tables.changed.set()
    async with world.deps.uow() as uow:
        await uow.repo.finish_report(report.id, ReportStatus.COMPLETED, error="", total_cost_usd=0.0, at=suites.now())
    async with asyncio.timeout(5):
        await watcher

    assert [e for e in seen if isinstance(e, SnapshotTestResult)] == [second, first]


async def test_the_same_trigger_is_the_same_suite() -> None:
    world = World.make()
    made = snapshots(world, 1)
    cmd = c.RunSnapshotTests("click-1", (made[0].id,))

    first = await suites.run_snapshot_tests(cmd, world.deps)
    again = await suites.run_snapshot_tests(cmd, world.deps)

    assert again.id == first.id
    assert len(world.scheduler.launched) == 1


async def test_bad_suites_are_refused_before_anything_starts() -> None:
    world = World.make()
    made = snapshots(world, 1)

    with pytest.raises(ValidationFailed) as both:
        await suites.run_snapshot_tests(c.RunSnapshotTests("t", (made[0].id,), all=True), world.deps)
    bad = model.TestOptions(max_snapshots=-1, repetitions=99, min_pass_rate=2.0, concurrency=500, cost_limit_usd=-1)
    with pytest.raises(ValidationFailed) as options:
        await suites.run_snapshot_tests(c.RunSnapshotTests("t", all=True, options=bad), world.deps)
    with pytest.raises(NotFound):
        await suites.run_snapshot_tests(c.RunSnapshotTests("t", (str(uuid.uuid4()),)), world.deps)

    assert [v.field for v in both.value.violations] == ["snapshot_ids"]
    assert [v.field for v in options.value.violations] == [
        "options.max_snapshots",
        "options.cost_limit_usd",
        "options.concurrency",
        "options.repetitions",
        "options.min_pass_rate",
    ]
    assert world.scheduler.launched == []


async def test_all_takes_every_snapshot_oldest_first() -> None:
    world = World.make()
    made = snapshots(world, 3)

    report = await suites.run_snapshot_tests(c.RunSnapshotTests("t", all=True), world.deps)

    assert report.snapshot_ids == tuple(s.id for s in made)
    assert (report.options.concurrency, report.options.repetitions) == (4, 1)


# ---------------------------------------------------------------- the cost limit


async def test_a_cost_limit_that_fits_two_of_five_runs_two_and_skips_three() -> None:
    world = World.make(estimate=0.10, cost=0.10, latency=0.01)
    made = snapshots(world, 5)

    report = await run_suite(world, made, cost_limit_usd=0.25)

    assert statuses(report) == [ResultStatus.PASSED] * 2 + [ResultStatus.SKIPPED] * 3
    assert all(r.reason.startswith("cost limit: would cross $0.25") for r in report.results[2:])
    assert report.total_cost_usd == pytest.approx(0.20)
    assert len(world.runs.runs) == 2
    # Projects made for replays that never started are not left behind.
    assert len(world.spec.deleted) == 3


async def test_a_replay_that_does_not_fit_waits_for_the_ones_in_flight_to_release_their_reservation() -> None:
    # Estimated at 0.10, they cost 0.05: once the first two end, two more fit.
    world = World.make(estimate=0.10, cost=0.05, latency=0.02)
    made = snapshots(world, 5)

    report = await run_suite(world, made, cost_limit_usd=0.25, concurrency=4)

    assert statuses(report) == [ResultStatus.PASSED] * 4 + [ResultStatus.SKIPPED]
    assert report.total_cost_usd == pytest.approx(0.20)
    # Never more held or spent than the limit: at most two in flight at 0.10 each.
    assert world.runs.most_in_flight == 2


async def test_each_replay_runs_with_its_reservation_as_budget_and_one_stopped_by_it_is_skipped() -> None:
    # Estimated at 0.10 (reserved 0.125 with the margin) but costs 0.30: its run stops at 0.125.
    world = World.make(estimate=0.10, cost=0.30, cost_margin=1.25)
    made = snapshots(world, 2)

    report = await run_suite(world, made, cost_limit_usd=1.0)

    assert [r.new.config.parameters.budget_usd for r in world.runs.runs] == [0.125, 0.125]
    assert statuses(report) == [ResultStatus.SKIPPED, ResultStatus.SKIPPED]
    assert report.results[0].reason == "1 replay stopped at its share of the cost limit"
    assert report.total_cost_usd == pytest.approx(0.25)


def own_budget(usd: float) -> SnapshotData:
    return replace(
        DATA, run_config=replace(DATA.run_config, parameters=replace(DATA.run_config.parameters, budget_usd=usd))
    )


async def test_a_replay_stopped_by_its_snapshots_own_budget_is_judged_not_skipped() -> None:
    # Its snapshot's run had a budget of 0.05, below the 0.10 the cost limit reserves for it: a
    # replay stopping there does what the snapshot says, for its invariants to judge.
    world = World.make(estimate=0.10, cost=0.30)
    made = world.add(snapshot("s0", invariants=PASSING, data=own_budget(0.05)))

    report = await run_suite(world, made, cost_limit_usd=1.0)

    assert [r.new.config.parameters.budget_usd for r in world.runs.runs] == [0.05]
    assert statuses(report) == [ResultStatus.FAILED]
    assert "cost limit" not in report.results[0].reason


async def test_a_replay_stopped_by_its_snapshots_own_token_budget_is_judged_not_skipped() -> None:
    world = World.make()
    made = snapshots(world, 1)
    world.runs.outcome = lambda run: good_metrics(
        status="FAILED", failure_reason="stopped before crossing the budget: budget_tokens 5000 would be crossed"
    )

    report = await run_suite(world, made, cost_limit_usd=1.0)

    assert statuses(report) == [ResultStatus.FAILED]


async def test_a_suite_continued_after_a_replay_stopped_at_its_own_budget_still_judges_it() -> None:
    world = World.make()
    made = world.add(snapshot("s0", invariants=PASSING, data=own_budget(0.05)))
    report, lease = await start(world, made, cost_limit_usd=1.0)
    # What the process before stored: the replay's run stopped at the budget it held, its own.
    stopped = good_metrics(status="FAILED", usd=0.05, failure_reason="stopped before crossing the budget: budget_usd")
    trigger_id = model.suite_trigger_id(report.id, 0, 0)
    await world.deps.uow().repo.add_replays(
        [
            model.Replay(
                trigger_id,
                made[0].id,
                world.spec.project(),
                suites.now(),
                report_id=report.id,
                state=ReplayState.ENDED,
                run_id=stopped.run_id,
                reserved_usd=0.05,
                metrics=stopped,
            )
        ]
    )

    async with asyncio.timeout(5):
        await SuiteRunner(world.deps, replace(lease, owner="other", token=2)).run()

    assert statuses(await h.get_report(report.id, world.deps)) == [ResultStatus.FAILED]


async def test_an_unpriced_replay_is_not_started_under_a_limit_unless_its_reference_is_priced() -> None:
    world = World.make(estimate=None)
    priced, unpriced = world.add(
        snapshot("priced", invariants=PASSING),
        snapshot("unpriced", invariants=PASSING, reference_metrics=good_metrics(unpriced_calls=3)),
    )

    report = await run_suite(world, [priced, unpriced], cost_limit_usd=5.0)

    assert statuses(report) == [ResultStatus.PASSED, ResultStatus.SKIPPED]
    assert "cannot be estimated" in report.results[1].reason
    # Held at what its reference cost, but not capped: the run service refuses a USD budget to a
    # run whose models have no price.
    assert [r.new.config.parameters.budget_usd for r in world.runs.runs] == [None]


async def test_without_a_limit_or_in_recorded_mode_nothing_is_reserved_nor_capped() -> None:
    world = World.make(estimate=None)
    made = snapshots(world, 2)

    await run_suite(world, made)
    await run_suite(world, made, cost_limit_usd=0.0, replay_mode=ReplayMode.RECORDED)

    assert [r.new.config.parameters.budget_usd for r in world.runs.runs] == [None] * 4
    assert [r.new.replay_of_run_id for r in world.runs.runs[2:]] == [s.run_id for s in made]


# ---------------------------------------------------------------- what stops a suite


def failing_for(world: World, bad: Snapshot) -> None:
    def outcome(run: FakeRun) -> RunMetrics | None:
        if run.new.trigger_metadata["snapshot_id"] == bad.id:
            return good_metrics(status="FAILED", candidates=0, failure_reason="design failed")
        return None

    world.runs.outcome = outcome


async def test_stop_on_first_failure_skips_the_snapshots_not_started() -> None:
    world = World.make(concurrency=1)
    made = snapshots(world, 4)
    failing_for(world, made[1])

    report = await run_suite(world, made, stop_on_first_failure=True)

    assert statuses(report) == [ResultStatus.PASSED, ResultStatus.FAILED, ResultStatus.SKIPPED, ResultStatus.SKIPPED]
    failed = report.results[1]
    assert [(i.type, i.status, i.actual) for i in failed.invariants] == [
        ("run_status", ResultStatus.FAILED, "FAILED"),
        ("min_candidates", ResultStatus.FAILED, 0),
    ]
    assert failed.invariants[0].message == "design failed"
    assert report.results[2].reason == "stop_on_first_failure: snapshot s1 failed"
    assert len(world.runs.runs) == 2
    assert report.status is ReportStatus.COMPLETED
    # The snapshot made ready ahead of its turn while s1 ran leaves no project behind.
    assert world.spec.deleted
    assert world.spec.projects <= {s.project_id for s in made} | {r.new.project_id for r in world.runs.runs}


async def test_without_stop_on_first_failure_a_failure_does_not_stop_the_others() -> None:
    world = World.make(concurrency=1)
    made = snapshots(world, 3)
    failing_for(world, made[0])

    report = await run_suite(world, made)

    assert statuses(report) == [ResultStatus.FAILED, ResultStatus.PASSED, ResultStatus.PASSED]
    assert report.summary.failed == 1


async def test_max_snapshots_replays_the_first_ones_and_skips_the_rest_saying_so() -> None:
    world = World.make()
    made = snapshots(world, 4)

    report = await run_suite(world, made, max_snapshots=2)

    assert statuses(report) == [ResultStatus.PASSED] * 2 + [ResultStatus.SKIPPED] * 2
    assert report.results[3].reason == "max_snapshots: only the first 2 snapshots are replayed"
    assert report.summary.total == 4
    assert report.summary.skipped == 2


async def test_a_replay_the_run_service_refuses_is_an_error_not_a_regression() -> None:
    world = World.make()
    made = snapshots(world, 2)
    world.runs.refuse = "the run cannot start: missing_world_model"

    report = await run_suite(world, made)

    assert statuses(report) == [ResultStatus.ERROR, ResultStatus.ERROR]
    assert "missing_world_model" in report.results[0].reason
    assert report.status is ReportStatus.COMPLETED
    assert report.summary.errors == 2


async def test_a_suite_whose_harness_fails_is_failed_with_its_results_so_far() -> None:
    world = World.make(concurrency=1)
    made = snapshots(world, 2)
    report, lease = await start(world, made)
    world.tables.broken_positions.add(1)

    await SuiteRunner(world.deps, lease).run()

    ended = await h.get_report(report.id, world.deps)
    assert ended.status is ReportStatus.FAILED
    assert ended.error == "the harness failed: ConnectionResetError: the database went away"
    assert statuses(ended) == [ResultStatus.PASSED]


async def test_a_suite_whose_harness_fails_stops_the_replays_still_running() -> None:
    world = World.make(latency=None)
    made = snapshots(world, 2)
    report, lease = await start(world, made, concurrency=2)
    world.tables.broken_positions.add(0)
    suite = asyncio.create_task(SuiteRunner(world.deps, lease).run())
    await until(lambda: len(world.runs.runs) == 2)
    first, second = world.runs.runs

    world.runs.finish(first.info.id)
    async with asyncio.timeout(5):
        await suite

    ended = await h.get_report(report.id, world.deps)
    assert ended.status is ReportStatus.FAILED
    # The report has ended: the replay still running is stopped, not left to spend unfollowed.
    assert world.runs.cancelled == [second.info.id]
    assert second.info.status == "CANCELLED"


# ---------------------------------------------------------------- repetitions


async def test_repetitions_give_pass_rates_and_intervals() -> None:
    world = World.make()
    made = snapshots(world, 1)
    counts = iter([3, 4, 2, 3])
    world.runs.outcome = lambda run: good_metrics(candidates=next(counts))

    report = await run_suite(world, made, repetitions=4, min_pass_rate=0.75)

    (result,) = report.results
    assert (result.status, result.repetitions, len(result.replay_run_ids)) == (ResultStatus.PASSED, 4, 4)
    min_candidates = result.invariants[1]
    assert min_candidates.pass_rate == 0.75
    assert min_candidates.actual == [3, 4, 2, 3]
    delta = result.metrics_delta["candidate_count"]
    assert delta.replay == 3.0
    assert delta.stdev is not None
    assert delta.ci_low is not None
    assert not delta.flagged
    # One project for the snapshot's repetitions, each its own run and trigger.
    assert len({r.new.project_id for r in world.runs.runs}) == 1
    assert len({r.new.trigger_id for r in world.runs.runs}) == 4
    assert result.cost_usd == pytest.approx(0.40)


async def test_repetitions_below_the_pass_rate_fail() -> None:
    world = World.make()
    made = snapshots(world, 1)
    counts = iter([3, 2, 2])
    world.runs.outcome = lambda run: good_metrics(candidates=next(counts))

    report = await run_suite(world, made, repetitions=3)

    assert statuses(report) == [ResultStatus.FAILED]
    assert report.results[0].invariants[1].message.startswith("held in 1 of 3 repetitions (needs 100%)")


async def test_replays_run_concurrently_up_to_the_limit() -> None:
    world = World.make(latency=0.05)
    made = snapshots(world, 6)

    await run_suite(world, made, concurrency=3)

    assert world.runs.most_in_flight == 3


# ---------------------------------------------------------------- a suite continued by another process


async def test_a_suite_continued_after_its_worker_stopped_pays_for_nothing_twice() -> None:
    world = World.make(latency=None)
    made = snapshots(world, 4)
    report, lease = await start(world, made, concurrency=2)
    first = asyncio.create_task(SuiteRunner(world.deps, lease).run())
    await until(lambda: len(world.runs.runs) == 2)
    world.runs.finish(world.runs.runs[0].info.id)
    await until(lambda: bool(world.tables.results[report.id]))
    # The process dies: its task stops mid-suite; the run service keeps the runs it started.
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    states = [r.state for r in await world.deps.uow().repo.replays_of(report.id)]
    # The fourth was made ready ahead of its turn (its project restored), not started.
    assert states == [ReplayState.ENDED, ReplayState.RUNNING, ReplayState.RUNNING, ReplayState.PREPARED]

    world.runs.latency = 0.01
    second = asyncio.create_task(SuiteRunner(world.deps, replace(lease, owner="other", token=2)).run())
    await asyncio.sleep(0.05)
    # The replays it re-attached to end in the run service, which ran them on.
    for run in world.runs.runs[1:3]:
        world.runs.finish(run.info.id)
    async with asyncio.timeout(5):
        await second

    ended = await h.get_report(report.id, world.deps)
    assert ended.status is ReportStatus.COMPLETED
    assert statuses(ended) == [ResultStatus.PASSED] * 4
    assert len(world.runs.runs) == 4
    assert set(world.runs.paid.values()) == {1}
    assert ended.total_cost_usd == pytest.approx(0.40)
    assert len({r.new.project_id for r in world.runs.runs}) == 4


async def test_a_suite_stopped_between_creating_a_run_and_starting_it_starts_that_run_when_continued() -> None:
    world = World.make(latency=0.01)
    made = snapshots(world, 1)
    world.runs.execute_gate = asyncio.Event()
    report, lease = await start(world, made, concurrency=1, cost_limit_usd=1.0)
    first = asyncio.create_task(SuiteRunner(world.deps, lease).run())
    await until(lambda: len(world.runs.runs) == 1)
    await asyncio.sleep(0.01)
    # The process dies while its ExecuteRun is on the way: the run exists, created, not started.
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    [stored] = await world.deps.uow().repo.replays_of(report.id)
    assert (stored.state, stored.run_id) == (ReplayState.RUNNING, world.runs.runs[0].info.id)
    assert stored.reserved_usd > 0

    world.runs.execute_gate = None
    async with asyncio.timeout(5):
        await SuiteRunner(world.deps, replace(lease, owner="other", token=2)).run()

    ended = await h.get_report(report.id, world.deps)
    assert statuses(ended) == [ResultStatus.PASSED]
    # The same run, started once: not a second one, not admitted (nor paid) again.
    assert len(world.runs.runs) == 1
    assert set(world.runs.paid.values()) == {1}


async def test_a_suite_continued_after_its_stop_discards_the_project_made_ahead_and_skips_its_replays() -> None:
    world = World.make()
    made = snapshots(world, 2)
    report, lease = await start(world, made, stop_on_first_failure=True)
    # What the first process left: the first snapshot failed (the suite stops), and the second's
    # replay, made ready ahead of its turn in a project of its own, never started.
    repo = world.deps.uow().repo
    failed = SnapshotTestResult(made[0].id, made[0].name, ResultStatus.FAILED, reason="design failed")
    await repo.add_result(report.id, 0, failed, suites.now())
    project_id = world.spec.project()
    trigger_id = model.suite_trigger_id(report.id, 1, 0)
    await repo.add_replays(
        [model.Replay(trigger_id, made[1].id, project_id, suites.now(), report_id=report.id, position=1)]
    )

    async with asyncio.timeout(5):
        await SuiteRunner(world.deps, replace(lease, owner="other", token=2)).run()

    ended = await h.get_report(report.id, world.deps)
    assert statuses(ended) == [ResultStatus.FAILED, ResultStatus.SKIPPED]
    assert ended.results[1].reason == "stop_on_first_failure: snapshot s0 failed"
    assert world.runs.runs == []
    assert project_id in world.spec.deleted
    assert project_id not in world.spec.projects
    assert [(r.state, r.reason) for r in await repo.replays_of(report.id)] == [
        (ReplayState.SKIPPED, "stop_on_first_failure: snapshot s0 failed")
    ]


async def test_a_run_service_away_too_long_fails_no_replay_and_the_suite_goes_on_once_it_is_back() -> None:
    world = World.make(latency=0.01)
    made = snapshots(world, 2)
    world.runs.away_waits = 1
    report, lease = await start(world, made, concurrency=2, cost_limit_usd=1.0)

    # Not the replay's failure: the suite stops here, its replays stored as they are...
    with pytest.raises(Unavailable):
        await SuiteRunner(world.deps, lease).run()
    stored = await world.deps.uow().repo.replays_of(report.id)
    assert ReplayState.RUNNING in {r.state for r in stored}
    assert [r.reason for r in stored] == ["", ""]  # no "replay failed"
    assert (await h.get_report(report.id, world.deps)).status is ReportStatus.RUNNING

    # ...and goes on from them (as leases.Workers does after a pause), paying for nothing twice.
    async with asyncio.timeout(5):
        await SuiteRunner(world.deps, lease).run()
    ended = await h.get_report(report.id, world.deps)
    assert statuses(ended) == [ResultStatus.PASSED] * 2
    assert len(world.runs.runs) == 2
    assert set(world.runs.paid.values()) == {1}
