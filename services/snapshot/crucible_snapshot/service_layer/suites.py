"""Test suites: replays of many snapshots, concurrently, under a cost limit, checked and reported.

``run_snapshot_tests`` stores the suite (a RUNNING report, once per trigger id) and hands it to this
process's ``Workers`` under a lease; ``SuiteRunner`` executes it from what is stored, so a suite
whose process died is continued by another one: results already stored are kept, a replay whose run
was created is re-attached to that run (its trigger id is deterministic, so the run service answers
the same run), and no replay is started twice, so nothing is paid twice.

Scheduling, in the order the snapshots were chosen: past ``max_snapshots`` a snapshot is skipped;
after a failure with ``stop_on_first_failure`` the snapshots not started are skipped; otherwise each
repetition of a snapshot waits for a free slot (``concurrency``), then for the cost limit to admit
it (``domain.cost``): one that does not fit waits while other replays are in flight, since their
reservations are released when they end, and is skipped once nothing is left in flight to wait for.
A snapshot's result is stored as soon as its replays have ended; the report ends when all have one.

Admission is in order, but what comes before it is not: up to ``concurrency`` snapshots ahead have
their project made, restored and priced while earlier ones wait or run (the setup is a handful of
calls to the spec and run services, which would otherwise queue one snapshot behind the other).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from crucible_common.database import database_unavailable
from crucible_common.errors import CrucibleError, FieldViolation, Unavailable, ValidationFailed
from crucible_common.ids import parse_id
from crucible_common.leases import Lease, LeaseLost
from crucible_snapshot.domain import cost
from crucible_snapshot.domain.cost import CostLedger
from crucible_snapshot.domain.errors import SnapshotNotFound, TriggerReused
from crucible_snapshot.domain.model import (
    Replay,
    ReplayChange,
    ReplayMode,
    ReplayState,
    ReportStatus,
    Snapshot,
    SnapshotTestResult,
    TestOptions,
    TestReport,
    suite_trigger_id,
)
from crucible_snapshot.domain.replay import ReplayPlan, replay_plan
from crucible_snapshot.domain.suite import (
    BUDGET_STOP,
    ReplayEnd,
    errored,
    resolved,
    skipped,
    snapshot_result,
    stops_the_suite,
    validate_options,
)
from crucible_snapshot.service_layer import commands as c
from crucible_snapshot.service_layer.handlers import SnapshotDeps, with_seeds_for_a_new_project
from crucible_snapshot.service_layer.replays import create, follow, new_project, restore, start, trigger_of
from crucible_snapshot.service_layer.unit_of_work import TEST_REPORT

logger = logging.getLogger(__name__)

# The run service takes a budget_usd of at most this.
MAX_RUN_BUDGET_USD = 1_000.0


def now() -> datetime:
    return datetime.now(UTC)


async def run_snapshot_tests(cmd: c.RunSnapshotTests, deps: SnapshotDeps) -> TestReport:
    """The suite of this trigger: stored and started now, or the one it already started."""
    trigger_id = trigger_of(cmd.ui_trigger_id)
    async with deps.uow(read_only=True) as uow:
        existing = await uow.repo.report_by_trigger(trigger_id)
    if existing is not None:
        return existing
    problems = validate_options(cmd.options)
    if cmd.all and cmd.snapshot_ids:
        problems.append(FieldViolation("snapshot_ids", "must be empty when all is set"))
    if not cmd.all and not cmd.snapshot_ids:
        problems.append(FieldViolation("snapshot_ids", "name the snapshots, or set all"))
    if problems:
        raise ValidationFailed(problems, "test suite")
    snapshot_ids = await _chosen(cmd, deps)
    report = TestReport(
        id=str(uuid.uuid4()),
        trigger_id=trigger_id,
        status=ReportStatus.RUNNING,
        options=resolved(cmd.options, deps.concurrency),
        snapshot_ids=snapshot_ids,
        created_at=now(),
    )
    async with deps.uow() as uow:
        if not await uow.repo.add_report(report):
            # The same request twice at once: the other one's suite is the suite.
            await uow.rollback()
            winner = await uow.repo.report_by_trigger(trigger_id)
            assert winner is not None
            return winner
        lease = await uow.take_lease(TEST_REPORT, report.id, deps.owner)
        await uow.commit()
    deps.scheduler.launch(lease)
    return report


async def _chosen(cmd: c.RunSnapshotTests, deps: SnapshotDeps) -> tuple[str, ...]:
    """The snapshots of the suite, in order: those named (each must exist), or all, oldest first."""
    async with deps.uow(read_only=True) as uow:
        if cmd.all:
            return tuple(await uow.repo.snapshot_ids())
        ids = tuple(dict.fromkeys(parse_id(s, f"snapshot_ids[{i}]") for i, s in enumerate(cmd.snapshot_ids)))
        known = set(await uow.repo.snapshot_ids())
    missing = [s for s in ids if s not in known]
    if missing:
        raise SnapshotNotFound(missing[0])
    return ids


@dataclass(frozen=True)
class Reservation:
    """What a replay holds of the cost limit, and the budget its run gets (None: no cap)."""

    usd: float
    budget_usd: float | None
    estimate_usd: float = 0.0
    # Why it cannot be admitted at all (its cost cannot be estimated), if so.
    unknown: str = ""


@dataclass
class _SnapshotState:
    """One snapshot's replays while they are being started: made ready once, then one by one."""

    snapshot: Snapshot
    plan: ReplayPlan
    replays: dict[int, Replay]
    # Its replays' project, once made (a resumed suite finds it stored).
    project_id: str
    restored: bool = False
    reservation: Reservation | None = None
    # Made ready ahead of its turn, what stopped that; raised when its turn comes, as if made then.
    early_error: CrucibleError | None = None


class SuiteRunner:
    """Runs one suite to its end from what is stored, while its caller holds the report's lease."""

    def __init__(self, deps: SnapshotDeps, lease: Lease) -> None:
        self._deps = deps
        self._lease = lease
        self._report_id = lease.id
        self._ledger = CostLedger(None)
        # Set whenever a replay ends: an admission waiting for room looks again.
        self._settled = asyncio.Event()
        self._runs: dict[str, str] = {}
        # The runs of the replays started and not yet ended (trigger id → run id).
        self._following: dict[str, str] = {}
        self._options = TestOptions()
        self._stop = ""
        # Each snapshot's conclusion, with the replays it waits for.
        self._concluding: list[tuple[asyncio.Task[None], list[asyncio.Future[ReplayEnd]]]] = []

    async def run(self) -> None:
        async with self._deps.uow(read_only=True) as uow:
            report = await uow.repo.get_report(self._report_id)
        if report is None or report.status is not ReportStatus.RUNNING:
            return
        status, error = ReportStatus.COMPLETED, ""
        try:
            await self._drive(report)
        # The harness itself failed (its database, a bug): the report says so; its results are kept.
        except Exception as failure:
            cause = _first(failure)
            if isinstance(cause, LeaseLost | Unavailable) or database_unavailable(cause):
                # Another process has the suite, or the database or a service is away: it goes on
                # from what is stored (leases.Workers), not as a failed report.
                raise cause from None
            logger.exception("test suite %s failed", report.id)
            status, error = ReportStatus.FAILED, f"the harness failed: {type(cause).__name__}: {cause}"[:2_000]
            # The report ends here, so nothing would follow the replays still running: they are
            # stopped rather than left to spend on results no one records.
            await self._cancel_following()
        await self._finish(status, error)

    # ------------------------------------------------------------ scheduling

    async def _drive(self, report: TestReport) -> None:
        options = self._options = report.options
        self._ledger = CostLedger(options.cost_limit_usd)
        async with self._deps.uow(read_only=True) as uow:
            done = await uow.repo.results_by_position(report.id)
            stored = await uow.repo.replays_of(report.id)
        for position in sorted(done):
            self._note_stop(done[position])
        by_position: dict[int, dict[int, Replay]] = {}
        for replay in stored:
            by_position.setdefault(replay.position, {})[replay.repetition] = replay
        slots = asyncio.Semaphore(options.concurrency)
        ahead: dict[int, asyncio.Task[_SnapshotState | CrucibleError]] = {}
        async with asyncio.TaskGroup() as group:
            for position, snapshot_id in enumerate(report.snapshot_ids):
                for later in range(position + 1, min(position + 1 + options.concurrency, len(report.snapshot_ids))):
                    if later not in ahead and later not in done and later not in by_position and self._ahead(later):
                        ahead[later] = group.create_task(self._early(report, later, report.snapshot_ids[later]))
                if position not in done:
                    early = ahead.pop(position, None)
                    prepared = await early if early is not None else None
                    await self._schedule(
                        report, position, snapshot_id, by_position.get(position, {}), slots, group, prepared
                    )

    async def _schedule(
        self,
        report: TestReport,
        position: int,
        snapshot_id: str,
        replays: dict[int, Replay],
        slots: asyncio.Semaphore,
        group: asyncio.TaskGroup,
        prepared: _SnapshotState | CrucibleError | None = None,
    ) -> None:
        """Start (or re-attach) the replays of one snapshot; its result is stored once they have ended."""
        options = report.options
        started = any(r.run_id for r in replays.values())
        if options.max_snapshots and position >= options.max_snapshots and not started:
            reason = f"max_snapshots: only the first {options.max_snapshots} snapshots are replayed"
            await self._store(position, skipped(snapshot_id, await self._name(snapshot_id), reason))
            return
        # A project made ahead of its turn is either used, or removed when the suite stops (below).
        if self._stop and not started and not (isinstance(prepared, _SnapshotState) and prepared.project_id):
            # A suite continued after it stopped may find the snapshot's replays made ready ahead
            # of their turn by the process before: they are skipped, and their project (always one
            # made for the suite, see _warm) is not left behind.
            await self._skip_rest(replays, 0, self._stop)
            made_ahead = next((r.project_id for r in replays.values() if r.project_id), "")
            if made_ahead:
                await self._discard(made_ahead)
            await self._store(position, skipped(snapshot_id, await self._name(snapshot_id), self._stop))
            return
        if isinstance(prepared, Unavailable):
            raise prepared  # a service away while it was made ready ahead: waited out, not an error
        if isinstance(prepared, CrucibleError):
            await self._store(position, errored(snapshot_id, await self._name(snapshot_id), prepared.message))
            return
        if prepared is not None:
            state = prepared
        else:
            try:
                state = self._state(await self._replayable(snapshot_id), replays)
            except Unavailable:
                raise
            except CrucibleError as exc:
                await self._store(position, errored(snapshot_id, await self._name(snapshot_id), exc.message))
                return
        snapshot, plan = state.snapshot, state.plan
        ends: list[asyncio.Future[ReplayEnd]] = []
        not_started = ""
        for k in range(options.repetitions):
            replay = state.replays.get(k)
            if replay is not None and replay.state is ReplayState.ENDED:
                ends.append(_done(_end_of(replay, plan)))
                continue
            if replay is not None and replay.state is ReplayState.SKIPPED:
                not_started = replay.reason
                continue
            await self._acquire(slots)
            if replay is not None and replay.state is ReplayState.RUNNING:
                # Started before this process took the suite over: in flight again, with its reservation.
                self._ledger.hold(replay.trigger_id, replay.reserved_usd)
                self._runs[replay.trigger_id] = replay.run_id
                ends.append(group.create_task(self._attach(replay, plan, slots)))
                continue
            try:
                refused = self._stop or await self._ready(report, position, state, k)
            except Unavailable:
                slots.release()
                raise
            except CrucibleError as exc:
                slots.release()
                ends.append(_done(ReplayEnd(error=f"could not start a replay: {exc.message}")))
                break
            if refused:
                slots.release()
                not_started = refused
                await self._skip_rest(state.replays, k, refused)
                break
            assert state.reservation is not None
            replay = state.replays[k]
            ends.append(group.create_task(self._replay(report, replay, snapshot, plan, state.reservation, slots)))
        temporary = state.project_id if state.project_id != snapshot.project_id else ""
        concluding = group.create_task(self._conclude(report, position, snapshot, ends, not_started, temporary))
        self._concluding.append((concluding, ends))

    def _state(self, snapshot: Snapshot, replays: dict[int, Replay]) -> _SnapshotState:
        plan = replay_plan(snapshot, self._options.replay(), into_source_project=False)
        return _SnapshotState(snapshot, plan, replays, next((r.project_id for r in replays.values()), ""))

    def _ahead(self, position: int) -> bool:
        """Whether a snapshot not yet started may be made ready ahead of its turn (it will be replayed)."""
        options = self._options
        return not self._stop and not (options.max_snapshots and position >= options.max_snapshots)

    async def _early(self, report: TestReport, position: int, snapshot_id: str) -> _SnapshotState | CrucibleError:
        """A snapshot read, and its replays' setup started, ahead of its turn; what stops it is returned,
        not raised, so it reaches the snapshot's result in order (and cannot fail the task group)."""
        try:
            state = self._state(await self._replayable(snapshot_id), {})
        except CrucibleError as exc:
            return exc
        try:
            await self._warm(report, position, state)
        except CrucibleError as exc:
            state.early_error = exc
        return state

    async def _ready(self, report: TestReport, position: int, state: _SnapshotState, k: int) -> str:
        """Make repetition ``k`` ready to start: its project, restored, its reservation admitted.

        Empty when admitted; else why it is not started (the cost limit, the suite stopping).
        """
        if state.early_error is not None:
            failed, state.early_error = state.early_error, None
            raise failed
        await self._warm(report, position, state)
        assert state.reservation is not None
        return await self._admit(state.replays[k].trigger_id, state.reservation)

    async def _warm(self, report: TestReport, position: int, state: _SnapshotState) -> None:
        """The snapshot's replays made ready to start: their project, restored, their reservation priced."""
        if not state.project_id:
            state.project_id = await new_project(state.snapshot, self._deps.spec, suite=True)
            state.replays = await self._prepare(report, position, state.snapshot, state.project_id)
        if not state.restored:
            await restore(state.snapshot, state.project_id, self._deps.spec)
            state.restored = True
        if state.reservation is None:
            state.reservation = await self._reservation(report, state.snapshot, state.plan, state.project_id)

    async def _acquire(self, slots: asyncio.Semaphore) -> None:
        """A free slot, once the results of the snapshots whose replays ended are stored.

        A slot frees when a replay ends, before its snapshot's result is stored; waiting for that
        result here makes stop_on_first_failure see a failure before the next replay starts.
        """
        await slots.acquire()
        for concluding, ends in list(self._concluding):
            if all(end.done() for end in ends):
                await concluding
                self._concluding.remove((concluding, ends))

    async def _prepare(
        self, report: TestReport, position: int, snapshot: Snapshot, project_id: str
    ) -> dict[int, Replay]:
        """The snapshot's replays, stored with their project before any of them starts."""
        at = now()
        replays = {
            k: Replay(
                trigger_id=suite_trigger_id(report.id, position, k),
                snapshot_id=snapshot.id,
                project_id=project_id,
                created_at=at,
                report_id=report.id,
                position=position,
                repetition=k,
            )
            for k in range(report.options.repetitions)
        }
        async with self._deps.uow(lease=self._lease) as uow:
            if not await uow.repo.add_replays(list(replays.values())):
                raise TriggerReused(replays[0].trigger_id, "a replay of another suite")
            await uow.commit()
        return replays

    async def _skip_rest(self, replays: dict[int, Replay], first: int, reason: str) -> None:
        async with self._deps.uow(lease=self._lease) as uow:
            for k, replay in replays.items():
                if k >= first and replay.state is ReplayState.PREPARED:
                    await uow.repo.update_replay(replay.trigger_id, ReplayChange(ReplayState.SKIPPED, reason=reason))
            await uow.commit()

    # ------------------------------------------------------------ the cost limit

    async def _reservation(
        self, report: TestReport, snapshot: Snapshot, plan: ReplayPlan, project_id: str
    ) -> Reservation:
        """The estimate of the run about to start (preflight, in its restored project, its overrides applied)."""
        options = report.options
        if options.cost_limit_usd is None or options.replay_mode is ReplayMode.RECORDED:
            # No limit to keep, or nothing to pay: a recorded replay's calls are answered from recordings.
            return Reservation(0.0, None)
        estimate = await self._deps.runs.estimate_usd(project_id, plan.config)
        reference = snapshot.reference_metrics
        priced = estimate is not None
        if estimate is None and reference is not None and not reference.unpriced_calls:
            # Preflight cannot price it: what the same work cost when the snapshot's run did it.
            estimate = reference.usd
        if estimate is None:
            why = "cost limit: this replay's cost cannot be estimated (a model has no price)"
            return Reservation(0.0, None, unknown=why)
        held = min(
            cost.reservation(estimate, self._deps.cost_margin, plan.config.parameters.budget_usd), MAX_RUN_BUDGET_USD
        )
        # A run whose models have no price now cannot take a USD budget (its preflight refuses one):
        # it runs uncapped, holding what the same work cost before.
        return Reservation(held, held if held > 0 and priced else None, estimate)

    async def _admit(self, key: str, reservation: Reservation) -> str:
        """Empty when the replay may start (its reservation held); else why it is skipped."""
        if reservation.unknown:
            return reservation.unknown
        limit = self._ledger.limit_usd
        while True:
            if self._stop:
                return self._stop
            if limit is None:
                self._ledger.hold(key, reservation.usd)
                return ""
            self._settled.clear()
            spent = await self._spent()
            in_flight = [k for k in self._ledger.reserved if k in self._runs]
            spent_by = {k: await self._deps.usage.spent_usd(run_id=self._runs[k]) for k in in_flight}
            if self._ledger.fits(reservation.usd, spent, spent_by):
                self._ledger.hold(key, reservation.usd)
                return ""
            if not self._ledger.in_flight:
                committed = self._ledger.committed(spent, spent_by)
                return cost.skip_reason(reservation.estimate_usd, reservation.usd, committed, limit)
            # What the replays in flight do not spend of their reservations comes back when they end.
            await self._settled.wait()

    async def _spent(self) -> float:
        return await self._deps.usage.spent_usd(snapshot_test_id=self._report_id)

    # ------------------------------------------------------------ one replay

    async def _replay(
        self,
        report: TestReport,
        replay: Replay,
        snapshot: Snapshot,
        plan: ReplayPlan,
        reservation: Reservation,
        slots: asyncio.Semaphore,
    ) -> ReplayEnd:
        run_id = ""
        try:
            try:
                run = await create(
                    replay,
                    snapshot,
                    plan,
                    self._deps.runs,
                    snapshot_test_id=report.snapshot_test_id,
                    budget_usd=reservation.budget_usd,
                )
                run_id = self._runs[replay.trigger_id] = self._following[replay.trigger_id] = run.id
                # Stored before it starts: a suite continued after a stop between the two finds the
                # run (and its reservation) and starts it, instead of admitting the replay again.
                await self._update(replay, ReplayChange(ReplayState.RUNNING, run.id, reservation.usd))
                await start(run, plan, self._deps.runs)
            except CrucibleError as exc:
                return await self._failed(replay, run_id, exc)
            return await self._measure(replay, run_id, capped=_capped_by_the_limit(reservation.budget_usd, plan))
        finally:
            self._released(replay, slots)

    async def _attach(self, replay: Replay, plan: ReplayPlan, slots: asyncio.Semaphore) -> ReplayEnd:
        self._following[replay.trigger_id] = replay.run_id
        try:
            try:
                # Its run may have been created but not started when the suite stopped.
                run = await self._deps.runs.get_run(replay.run_id)
                if run is not None:
                    await start(run, plan, self._deps.runs)
            except CrucibleError as exc:
                return await self._failed(replay, replay.run_id, exc)
            return await self._measure(replay, replay.run_id, capped=_capped_by_the_limit(replay.reserved_usd, plan))
        finally:
            self._released(replay, slots)

    async def _measure(self, replay: Replay, run_id: str, *, capped: bool) -> ReplayEnd:
        try:
            metrics = await follow(run_id, self._deps.runs)
        except CrucibleError as exc:
            return await self._failed(replay, run_id, exc)
        await self._update(replay, ReplayChange(ReplayState.ENDED, metrics=metrics))
        self._following.pop(replay.trigger_id, None)
        return ReplayEnd(run_id, metrics, stopped_by_cost=capped and _budget_stopped(metrics.failure_reason))

    async def _failed(self, replay: Replay, run_id: str, error: CrucibleError) -> ReplayEnd:
        if isinstance(error, Unavailable):
            # A service that did not answer is not the replay's failure: the suite waits and goes on
            # from what it stored (its run, if it started, is followed again).
            raise error
        reason = f"replay failed: {error.message}"[:2_000]
        await self._update(replay, ReplayChange(ReplayState.ENDED, reason=reason))
        self._following.pop(replay.trigger_id, None)
        return ReplayEnd(run_id, error=reason)

    async def _cancel_following(self) -> None:
        async def cancel(run_id: str) -> None:
            try:
                await self._deps.runs.cancel_run(run_id, f"test suite {self._report_id} failed")
            except Exception as exc:  # the report is ended next whatever happens here
                logger.warning("test suite %s: cancelling run %s failed: %s", self._report_id, run_id, exc)

        await asyncio.gather(*(cancel(run_id) for run_id in self._following.values()))

    def _released(self, replay: Replay, slots: asyncio.Semaphore) -> None:
        self._ledger.release(replay.trigger_id)
        self._settled.set()
        slots.release()

    async def _update(self, replay: Replay, change: ReplayChange) -> None:
        async with self._deps.uow(lease=self._lease) as uow:
            await uow.repo.update_replay(replay.trigger_id, change)
            await uow.commit()

    # ------------------------------------------------------------ results

    async def _conclude(
        self,
        report: TestReport,
        position: int,
        snapshot: Snapshot,
        ends: Sequence[asyncio.Future[ReplayEnd]],
        not_started: str,
        temporary_project: str,
    ) -> None:
        finished = [await end for end in ends]
        if temporary_project and not any(e.run_id for e in finished):
            await self._discard(temporary_project)
        costs = [await self._cost(e) for e in finished if e.run_id]
        result = snapshot_result(
            snapshot,
            finished,
            cost_usd=sum(costs),
            min_pass_rate=report.options.min_pass_rate,
            not_started=not_started,
        )
        await self._store(position, result)

    async def _cost(self, end: ReplayEnd) -> float:
        """What the agent service recorded for the replay's run (the run's own copy if it cannot say)."""
        try:
            return await self._deps.usage.spent_usd(run_id=end.run_id)
        except CrucibleError as exc:
            logger.warning("usage of run %s unavailable (%s); using the run's own record", end.run_id, exc.message)
            return end.metrics.usd if end.metrics is not None else 0.0

    async def _discard(self, project_id: str) -> None:
        """A project made for replays that never started is not left behind (it holds no run)."""
        try:
            await self._deps.spec.delete_project(project_id)
        except CrucibleError as exc:
            logger.warning("test suite %s: project %s left behind: %s", self._report_id, project_id, exc.message)

    async def _store(self, position: int, result: SnapshotTestResult) -> None:
        async with self._deps.uow(lease=self._lease) as uow:
            await uow.repo.add_result(self._report_id, position, result, now())
            await uow.commit()
        self._note_stop(result)

    def _note_stop(self, result: SnapshotTestResult) -> None:
        if self._options.stop_on_first_failure and stops_the_suite(result) and not self._stop:
            self._stop = f"stop_on_first_failure: snapshot {result.snapshot_name or result.snapshot_id} {result.status}"
            # An admission waiting for room gives up now.
            self._settled.set()

    async def _finish(self, status: ReportStatus, error: str) -> None:
        async with self._deps.uow(read_only=True) as uow:
            report = await uow.repo.get_report(self._report_id)
        assert report is not None
        results_cost = sum(r.cost_usd for r in report.results)
        try:
            recorded = await self._spent()
        except CrucibleError as exc:
            logger.warning("test suite %s: usage unavailable (%s); totalling its results", report.id, exc.message)
            recorded = 0.0
        # The correlation id is the authority; a run whose calls do not carry it still counts.
        total = max(recorded, results_cost)
        async with self._deps.uow(lease=self._lease) as uow:
            await uow.repo.finish_report(report.id, status, error=error, total_cost_usd=total, at=now())
            await uow.commit()

    # ------------------------------------------------------------ reads

    async def _snapshot(self, snapshot_id: str) -> Snapshot:
        async with self._deps.uow(read_only=True) as uow:
            snapshot = await uow.repo.get_snapshot(snapshot_id)
        if snapshot is None:
            raise SnapshotNotFound(snapshot_id)
        return snapshot

    async def _replayable(self, snapshot_id: str) -> Snapshot:
        """The snapshot, with what its replays in a new project need (a suite's always are)."""
        return await with_seeds_for_a_new_project(await self._snapshot(snapshot_id), self._deps.runs)

    async def _name(self, snapshot_id: str) -> str:
        try:
            return (await self._snapshot(snapshot_id)).name
        except CrucibleError:
            return ""


def _first(error: BaseException) -> BaseException:
    """The first failure inside a task group's exception group (or the error itself)."""
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def _budget_stopped(failure_reason: str) -> bool:
    return failure_reason.startswith(BUDGET_STOP)


def _capped_by_the_limit(budget_usd: float | None, plan: ReplayPlan) -> bool:
    """Whether a replay's run budget is its share of the suite's cost limit, rather than its
    snapshot's own budget (when that is lower, the replay holds it: ``cost.reservation``). Only a
    run stopped at the former was stopped by the limit; one stopped at its own budget did what its
    snapshot says, for the invariants to judge."""
    if not budget_usd:
        return False
    own = plan.config.parameters.budget_usd
    return not own or budget_usd < own


def _end_of(replay: Replay, plan: ReplayPlan) -> ReplayEnd:
    """A replay that ended before this process took the suite over."""
    if replay.metrics is None:
        return ReplayEnd(replay.run_id, error=replay.reason or "replay failed")
    stopped = _capped_by_the_limit(replay.reserved_usd, plan) and _budget_stopped(replay.metrics.failure_reason)
    return ReplayEnd(replay.run_id, replay.metrics, stopped_by_cost=stopped)


def _done(end: ReplayEnd) -> asyncio.Future[ReplayEnd]:
    future: asyncio.Future[ReplayEnd] = asyncio.get_running_loop().create_future()
    future.set_result(end)
    return future
