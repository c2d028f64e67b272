"""Stand-ins for the snapshot service's repository and its neighbours (spec, run and agent services).

``FakeRuns`` behaves as the run service does where the snapshot service depends on it: a run is
created once per trigger id (the same trigger again answers the same run), it is executed once,
it ends on its own after ``latency`` seconds (or when the test says so), and it pays for its model
calls once: ``paid`` counts executions, so a test can assert nothing was paid twice. Its cost
goes to ``FakeUsage`` under the run's id and the suite's correlation id, as the agent service records.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from crucible_common.errors import FailedPrecondition, Unavailable
from crucible_common.leases import Lease, Workers
from crucible_common.updates import Waiter
from crucible_snapshot.domain.errors import ProjectNotFound
from crucible_snapshot.domain.model import (
    Replay,
    ReplayChange,
    ReplayMove,
    ReportStatus,
    RunMetrics,
    RunPhase,
    Snapshot,
    SnapshotTestResult,
    TestReport,
)
from crucible_snapshot.domain.snapshot_data import (
    ChatContextMessage,
    Constraint,
    Goal,
    ProblemSpecCopy,
    RunConfig,
    RunParameters,
    SeedCandidate,
    SnapshotData,
    WorldModelCopy,
)
from crucible_snapshot.service_layer.handlers import SnapshotDeps
from crucible_snapshot.service_layer.ports import (
    AbstractSnapshotRepository,
    NewRun,
    ProjectState,
    RunInfo,
)
from crucible_snapshot.service_layer.unit_of_work import AbstractUnitOfWork, UowFactory

PROBLEM = ProblemSpecCopy(
    constraints=(Constraint("budget", "stay under budget", 100), Constraint("style", "look good", 40)),
    goals=(Goal("carry traffic across the river"),),
    resolution="medium",
    mode="full_search",
)
WORLD = WorldModelCopy(model_data={"actors": [{"name": "commuters"}]})
DATA = SnapshotData(PROBLEM, WORLD, RunConfig("full_search", RunParameters(3, 5)))
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def good_metrics(run_id: str = "", **changes: object) -> RunMetrics:
    base = RunMetrics(
        run_id=run_id or str(uuid.uuid4()),
        status="COMPLETED",
        candidates=3,
        scenarios=5,
        evaluations=15,
        coverage=1.0,
        duration_seconds=10.0,
        input_tokens=1_000,
        output_tokens=500,
        usd=0.10,
        llm_calls=17,
        top_i=1.2,
        top_p=0.6,
        top_r=0.5,
        top_candidate_id="c1",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


_created = iter(range(10**9))


def snapshot(name: str = "", **changes: object) -> Snapshot:
    at = EPOCH + timedelta(seconds=next(_created))
    base = Snapshot(
        id=str(uuid.uuid4()),
        name=name or f"snapshot {uuid.uuid4().hex[:6]}",
        description="",
        tags=(),
        project_id=str(uuid.uuid4()),
        run_id=str(uuid.uuid4()),
        data=DATA,
        reference_metrics=good_metrics(),
        invariants=(),
        stored_version=DATA.version,
        parent_id="",
        created_at=at,
        updated_at=at,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


# ---------------------------------------------------------------- the repository


@dataclass
class FakeTables:
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    reports: dict[str, TestReport] = field(default_factory=dict)
    # report → position → (sequence, result)
    results: dict[str, dict[int, tuple[int, SnapshotTestResult]]] = field(default_factory=dict)
    replays: dict[str, Replay] = field(default_factory=dict)
    sequence: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    # Storing a result of these positions fails, as a database that went away would.
    broken_positions: set[int] = field(default_factory=set)


class FakeRepository(AbstractSnapshotRepository):
    def __init__(self, tables: FakeTables) -> None:
        self.t = tables

    async def add_snapshot(self, snapshot: Snapshot) -> bool:
        if any(s.name == snapshot.name for s in self.t.snapshots.values()):
            return False
        self.t.snapshots[snapshot.id] = snapshot
        return True

    async def get_snapshot(self, snapshot_id: str) -> Snapshot | None:
        return self.t.snapshots.get(snapshot_id)

    async def list_snapshots(
        self,
        *,
        tags: Sequence[str],
        project_id: str,
        name: str,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> list[Snapshot]:
        found = [
            replace(s, data=None)
            for s in self.t.snapshots.values()
            if set(tags) <= set(s.tags)
            and (not project_id or s.project_id == project_id)
            and name.lower() in s.name.lower()
            and (after is None or (s.created_at, s.id) < after)
        ]
        return sorted(found, key=lambda s: (s.created_at, s.id), reverse=True)[:limit]

    async def names_containing(self, part: str) -> set[str]:
        return {s.name for s in self.t.snapshots.values() if part.lower() in s.name.lower()}

    async def snapshot_ids(self) -> list[str]:
        return [s.id for s in sorted(self.t.snapshots.values(), key=lambda s: (s.created_at, s.id))]

    async def delete_snapshot(self, snapshot_id: str) -> bool:
        return self.t.snapshots.pop(snapshot_id, None) is not None

    async def add_report(self, report: TestReport) -> bool:
        if any(r.trigger_id == report.trigger_id for r in self.t.reports.values()):
            return False
        self.t.reports[report.id] = report
        self.t.results[report.id] = {}
        return True

    def _with_results(self, report: TestReport) -> TestReport:
        results = self.t.results.get(report.id, {})
        return replace(report, results=tuple(results[p][1] for p in sorted(results)))

    async def get_report(self, report_id: str) -> TestReport | None:
        report = self.t.reports.get(report_id)
        return self._with_results(report) if report else None

    async def report_status(self, report_id: str) -> ReportStatus | None:
        report = self.t.reports.get(report_id)
        return report.status if report else None

    async def report_by_trigger(self, trigger_id: str) -> TestReport | None:
        found = next((r for r in self.t.reports.values() if r.trigger_id == trigger_id), None)
        return self._with_results(found) if found else None

    async def list_reports(self, limit: int, after: tuple[datetime, str] | None) -> list[TestReport]:
        found = [r for r in self.t.reports.values() if after is None or (r.created_at, r.id) < after]
        return [self._with_results(r) for r in sorted(found, key=lambda r: (r.created_at, r.id), reverse=True)][:limit]

    async def add_result(self, report_id: str, position: int, result: SnapshotTestResult, at: datetime) -> None:
        assert position not in self.t.results[report_id], "one result per snapshot of a suite"
        if position in self.t.broken_positions:
            raise ConnectionResetError("the database went away")
        self.t.sequence += 1
        self.t.results[report_id][position] = (self.t.sequence, result)
        self.t.changed.set()

    async def results_by_position(self, report_id: str) -> dict[int, SnapshotTestResult]:
        return {p: r for p, (_, r) in self.t.results.get(report_id, {}).items()}

    async def results_except(self, report_id: str, positions: Collection[int]) -> list[tuple[int, SnapshotTestResult]]:
        stored = self.t.results.get(report_id, {})
        return [(p, result) for p, (_, result) in sorted(stored.items(), key=lambda i: i[1][0]) if p not in positions]

    async def finish_report(
        self, report_id: str, status: ReportStatus, *, error: str, total_cost_usd: float, at: datetime
    ) -> None:
        report = self.t.reports[report_id]
        self.t.reports[report_id] = replace(
            report, status=status, error=error, total_cost_usd=total_cost_usd, ended_at=at
        )
        self.t.changed.set()

    async def add_replays(self, replays: Sequence[Replay]) -> bool:
        if any(r.trigger_id in self.t.replays for r in replays):
            return False
        self.t.replays.update((r.trigger_id, r) for r in replays)
        return True

    async def get_replay(self, trigger_id: str) -> Replay | None:
        return self.t.replays.get(trigger_id)

    async def replays_of(self, report_id: str) -> list[Replay]:
        found = [r for r in self.t.replays.values() if r.report_id == report_id]
        return sorted(found, key=lambda r: (r.position, r.repetition))

    async def replay_moves(self, report_id: str) -> list[ReplayMove]:
        return [
            ReplayMove(
                r.position,
                r.repetition,
                r.snapshot_id,
                r.state,
                r.run_id,
                s.name if (s := self.t.snapshots.get(r.snapshot_id)) else "",
            )
            for r in await self.replays_of(report_id)
            if r.position not in self.t.results.get(report_id, {})
        ]

    async def update_replay(self, trigger_id: str, change: ReplayChange) -> None:
        self.t.replays[trigger_id] = replace(self.t.replays[trigger_id], **change.changed())  # type: ignore[arg-type]
        if self.t.replays[trigger_id].report_id:
            self.t.changed.set()  # as the service's NOTIFY wakes the suite's watchers


class FakeUnitOfWork(AbstractUnitOfWork):
    """Writes land at once (these fakes never roll back); a write under a lost lease is refused."""

    def __init__(self, tables: FakeTables, lease: Lease | None, lost: set[str]) -> None:
        self.repo = FakeRepository(tables)
        self._lease = lease
        self._lost = lost

    async def __aenter__(self) -> Self:
        if self._lease is not None and self._lease.id in self._lost:
            from crucible_common.leases import LeaseLost

            raise LeaseLost(self._lease)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def commit(self) -> None:
        return None

    async def rollback(self) -> None:
        return None

    async def take_lease(self, resource: str, id_: str, owner: str) -> Lease:
        return Lease(resource, id_, owner, 1)


def uow_factory(tables: FakeTables, lost: set[str] | None = None) -> UowFactory:
    lost_leases = lost if lost is not None else set()

    def make(*, read_only: bool = False, single_statement: bool = False, lease: Lease | None = None) -> FakeUnitOfWork:
        return FakeUnitOfWork(tables, lease, lost_leases)

    return make


# ---------------------------------------------------------------- the neighbours


@dataclass
class FakeSpec:
    projects: set[str] = field(default_factory=set)
    states: dict[str, ProjectState] = field(default_factory=dict)
    restored: list[tuple[str, SnapshotData, str]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    # By project: the snapshot it was made to replay.
    replay_of: dict[str, str] = field(default_factory=dict)

    def project(self, state: ProjectState | None = None) -> str:
        project_id = str(uuid.uuid4())
        self.projects.add(project_id)
        self.states[project_id] = state or ProjectState(PROBLEM, WORLD, (ChatContextMessage("user", "hi"),))
        return project_id

    async def capture(self, project_id: str, chat_messages: int) -> ProjectState:
        if project_id not in self.projects:
            raise ProjectNotFound(project_id)
        state = self.states[project_id]
        return replace(state, chat_context=state.chat_context[-chat_messages:] if chat_messages else ())

    async def create_project(self, title: str, description: str, replay_of_snapshot_id: str) -> str:
        project_id = self.project(ProjectState(None, None, ()))
        self.replay_of[project_id] = replay_of_snapshot_id
        return project_id

    async def delete_project(self, project_id: str) -> None:
        self.projects.discard(project_id)
        self.deleted.append(project_id)

    async def restore(self, project_id: str, data: SnapshotData, reason: str) -> None:
        self.restored.append((project_id, data, reason))


@dataclass
class FakeRun:
    info: RunInfo
    new: NewRun
    phases: tuple[RunPhase, ...] = ()
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    metrics: RunMetrics | None = None


@dataclass
class FakeUsage:
    by_run: dict[str, float] = field(default_factory=dict)
    by_test: dict[str, float] = field(default_factory=dict)
    # Answers every question with this error, when set.
    down: bool = False

    def record(self, run_id: str, snapshot_test_id: str, usd: float) -> None:
        self.by_run[run_id] = self.by_run.get(run_id, 0.0) + usd
        if snapshot_test_id:
            self.by_test[snapshot_test_id] = self.by_test.get(snapshot_test_id, 0.0) + usd

    async def spent_usd(self, *, run_id: str = "", snapshot_test_id: str = "") -> float:
        if self.down:
            raise Unavailable("the agent service is unavailable")
        if run_id:
            return self.by_run.get(run_id, 0.0)
        return self.by_test.get(snapshot_test_id, 0.0)


# What a replay's run ends with: its metrics from its project and request (None: the default).
Outcome = Callable[[FakeRun], RunMetrics | None]


@dataclass
class FakeRuns:
    usage: FakeUsage
    # What preflight says a run costs (None: unpriced).
    estimate: float | None = 0.10
    # What a run really costs.
    cost: float = 0.10
    # Seconds a run takes; None: it ends only when the test calls finish().
    latency: float | None = 0.0
    outcome: Outcome = lambda run: None
    # Reference runs the snapshot service reads (GetRun, metrics).
    existing: dict[str, FakeRun] = field(default_factory=dict)
    by_trigger: dict[str, FakeRun] = field(default_factory=dict)
    paid: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    most_in_flight: int = 0
    refuse: str = ""
    stored_seeds: dict[str, tuple[SeedCandidate, ...]] = field(default_factory=dict)
    # While set and not yet opened, ExecuteRun waits for it (the caller may stop meanwhile).
    execute_gate: asyncio.Event | None = None
    # Waits for a run's end that fail as a run service away too long would, before they work.
    away_waits: int = 0
    cancelled: list[str] = field(default_factory=list)

    def reference(
        self,
        project_id: str,
        metrics: RunMetrics,
        config: RunConfig | None = None,
        seeds: tuple[SeedCandidate, ...] = (),
    ) -> str:
        """A run the snapshot service reads; ``seeds``: the seed candidates it stored."""
        info = RunInfo(metrics.run_id, project_id, metrics.status, config or DATA.run_config)
        run = FakeRun(info, NewRun(project_id, info.config, f"ref-{metrics.run_id}"), metrics=metrics)
        run.ended.set()
        self.existing[metrics.run_id] = run
        self.stored_seeds[metrics.run_id] = seeds
        return metrics.run_id

    @property
    def runs(self) -> list[FakeRun]:
        return list(self.by_trigger.values())

    async def get_run(self, run_id: str) -> RunInfo | None:
        run = self.existing.get(run_id)
        return run.info if run else None

    async def metrics(self, run_id: str) -> RunMetrics:
        run = self.existing[run_id]
        assert run.metrics is not None, "measured once ended"
        return run.metrics

    async def seed_candidates(self, run_id: str) -> tuple[SeedCandidate, ...]:
        return self.stored_seeds.get(run_id, ())

    async def estimate_usd(self, project_id: str, config: RunConfig) -> float | None:
        return self.estimate

    async def create_run(self, new: NewRun) -> RunInfo:
        if self.refuse:
            raise FailedPrecondition(self.refuse, reason="RUN_BLOCKED")
        found = self.by_trigger.get(new.trigger_id)
        if found is not None:
            return found.info
        info = RunInfo(str(uuid.uuid4()), new.project_id, "CREATED", new.config)
        run = self.existing[info.id] = self.by_trigger[new.trigger_id] = FakeRun(info, new)
        return run.info

    async def execute_run(self, run_id: str, phases: tuple[RunPhase, ...]) -> RunInfo:
        if self.execute_gate is not None:
            await self.execute_gate.wait()
        run = self.existing[run_id]
        if run.info.status != "CREATED":
            return run.info
        run.info = replace(run.info, status="RUNNING")
        run.phases = phases
        self.paid[run.new.trigger_id] += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        if self.latency is not None:
            asyncio.get_running_loop().call_later(self.latency, self.finish, run_id)
        return run.info

    def finish(self, run_id: str, metrics: RunMetrics | None = None) -> None:
        run = self.existing[run_id]
        if run.ended.is_set():
            return
        self.in_flight -= 1
        chosen = metrics or self.outcome(run) or good_metrics(run_id, usd=self.cost)
        spent = chosen.usd
        budget = run.new.config.parameters.budget_usd
        if budget is not None and spent > budget:
            # The run service stops a run before a call would cross its budget.
            spent = budget
            chosen = replace(
                chosen, status="FAILED", usd=budget, failure_reason="stopped before crossing the budget: budget_usd"
            )
        run.metrics = replace(chosen, run_id=run_id)
        run.info = replace(run.info, status=run.metrics.status)
        self.usage.record(run_id, run.new.snapshot_test_id, spent)
        run.ended.set()

    async def cancel_run(self, run_id: str, reason: str) -> None:
        run = self.existing[run_id]
        if run.ended.is_set():
            return
        self.cancelled.append(run_id)
        self.finish(run_id, good_metrics(run_id, status="CANCELLED", failure_reason=f"cancelled: {reason}", usd=0.0))

    async def wait_ended(self, run_id: str) -> RunInfo:
        if self.away_waits:
            self.away_waits -= 1
            raise Unavailable("UNAVAILABLE: the run service is away", reason="UNAVAILABLE")
        run = self.existing[run_id]
        await run.ended.wait()
        return run.info


class FakeWaiter:
    def __init__(self, tables: FakeTables) -> None:
        self._tables = tables

    async def wait(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._tables.changed.wait()
                self._tables.changed.clear()
                return True
        return False

    async def pause(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeUpdates:
    def __init__(self, tables: FakeTables) -> None:
        self._tables = tables

    @contextlib.contextmanager
    def subscribe(self, report_id: str) -> Iterator[Waiter]:
        yield FakeWaiter(self._tables)


class Idle(Workers):
    """A scheduler that runs nothing by itself: the test drives the suite with the lease it was given."""

    def __init__(self) -> None:
        self.launched: list[Lease] = []

    def launch(self, lease: Lease) -> None:
        self.launched.append(lease)


@dataclass
class World:
    """The snapshot service's use cases over the fakes."""

    tables: FakeTables
    spec: FakeSpec
    usage: FakeUsage
    runs: FakeRuns
    scheduler: Idle
    deps: SnapshotDeps
    lost: set[str]

    @classmethod
    def make(cls, *, concurrency: int = 4, cost_margin: float = 1.0, **runs: object) -> World:
        tables = FakeTables()
        usage = FakeUsage()
        fake_runs = FakeRuns(usage, **runs)  # type: ignore[arg-type]
        spec = FakeSpec()
        scheduler = Idle()
        lost: set[str] = set()
        deps = SnapshotDeps(
            uow=uow_factory(tables, lost),
            spec=spec,
            runs=fake_runs,
            usage=usage,
            updates=FakeUpdates(tables),
            scheduler=scheduler,
            owner="test",
            concurrency=concurrency,
            cost_margin=cost_margin,
        )
        return cls(tables, spec, usage, fake_runs, scheduler, deps, lost)

    def add(self, *snapshots: Snapshot) -> list[Snapshot]:
        for s in snapshots:
            self.tables.snapshots[s.id] = s
        return list(snapshots)
