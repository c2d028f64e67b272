"""The snapshot context's use cases: create (capture), list, get, delete; test reports and their watch."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from crucible_common.errors import FieldViolation, ValidationFailed
from crucible_common.ids import parse_id
from crucible_common.leases import Workers
from crucible_common.pagination import page_request, split_page, time_cursor
from crucible_snapshot.domain import invariants as inv
from crucible_snapshot.domain.errors import (
    ConfirmationRequired,
    ReportNotFound,
    RunNotEnded,
    RunNotFound,
    SnapshotNameTaken,
    SnapshotNotFound,
)
from crucible_snapshot.domain.model import (
    ReplayMove,
    ReplayState,
    ReportStatus,
    Snapshot,
    SnapshotTestResult,
    TestReport,
)
from crucible_snapshot.domain.naming import MAX_NAME, run_marker, run_snapshot_name
from crucible_snapshot.domain.snapshot_data import RunConfig, RunParameters, SnapshotData
from crucible_snapshot.service_layer import commands as c
from crucible_snapshot.service_layer.ports import ReportUpdates, RunService, SpecService, Usage
from crucible_snapshot.service_layer.unit_of_work import UowFactory

# How often a default name is chosen again when another snapshot of the run took it meanwhile.
DEFAULT_NAME_TRIES = 3
MAX_DESCRIPTION = 10_000
MAX_TAGS = 50
MAX_TAG = 64
DEFAULT_CHAT_CONTEXT = 10
MAX_CHAT_CONTEXT = 100
# A watcher is woken by each stored result; it also looks this often regardless.
WATCH_FALLBACK_SECONDS = 1.0
WATCH_MIN_INTERVAL_SECONDS = 0.05


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SnapshotDeps:
    uow: UowFactory
    spec: SpecService
    runs: RunService
    usage: Usage
    updates: ReportUpdates
    scheduler: Workers
    owner: str
    # Replays in flight at once in a suite that does not say.
    concurrency: int
    # A replay under a cost limit reserves (and may spend) its estimate times this.
    cost_margin: float


# ---------------------------------------------------------------- snapshots


def _validated(cmd: c.CreateSnapshot) -> c.CreateSnapshot:
    problems: list[FieldViolation] = []
    name = cmd.name.strip()
    # A snapshot of a run may go unnamed: it is named after its project and run (see create_snapshot).
    named_by_us = bool(cmd.run_id) and not cmd.parent_snapshot_id and cmd.data is None
    if not name and not named_by_us:
        problems.append(FieldViolation("name", "required (except for a snapshot of a run)"))
    elif len(name) > MAX_NAME:
        problems.append(FieldViolation("name", f"at most {MAX_NAME} characters"))
    if len(cmd.description) > MAX_DESCRIPTION:
        problems.append(FieldViolation("description", f"at most {MAX_DESCRIPTION} characters"))
    tags = tuple(dict.fromkeys(t.strip() for t in cmd.tags))
    if len(tags) > MAX_TAGS:
        problems.append(FieldViolation("tags", f"at most {MAX_TAGS} tags"))
    for i, tag in enumerate(tags):
        if not tag or len(tag) > MAX_TAG:
            problems.append(FieldViolation(f"tags[{i}]", f"1 to {MAX_TAG} characters"))
    if not 0 <= cmd.chat_context_messages <= MAX_CHAT_CONTEXT:
        problems.append(FieldViolation("chat_context_messages", f"0 (the default, {DEFAULT_CHAT_CONTEXT}) to 100"))
    if cmd.parent_snapshot_id and cmd.run_id:
        problems.append(FieldViolation("run_id", "a snapshot made from a parent takes the parent's run"))
    if cmd.data is not None:
        for field in ("project_id", "run_id", "parent_snapshot_id"):
            if getattr(cmd, field):
                problems.append(FieldViolation(field, "an import (snapshot_data) takes no project, run or parent"))
    elif cmd.reference_metrics is not None:
        problems.append(FieldViolation("reference_metrics", "only with snapshot_data (an import)"))
    elif not cmd.parent_snapshot_id and not cmd.project_id:
        problems.append(FieldViolation("project_id", "required unless parent_snapshot_id or snapshot_data is given"))
    problems.extend(inv.validate(cmd.invariants))
    if problems:
        raise ValidationFailed(problems, "snapshot")
    invariants = tuple(inv.normalized(i) for i in cmd.invariants)
    return replace(cmd, name=name, tags=tags, invariants=invariants)


async def create_snapshot(cmd: c.CreateSnapshot, deps: SnapshotDeps) -> Snapshot:
    """A new, immutable snapshot: of a project (and a run), of a parent snapshot with new invariants or tags,
    or imported from its data."""
    cmd = _validated(cmd)
    at = now()
    if cmd.parent_snapshot_id:
        parent = await get_snapshot(cmd.parent_snapshot_id, deps.uow)
        if cmd.project_id and parse_id(cmd.project_id, "project_id") != parent.project_id:
            raise ValidationFailed([FieldViolation("project_id", "not the parent snapshot's project")], "snapshot")
        snapshot = replace(
            parent,
            id=str(uuid.uuid4()),
            name=cmd.name,
            description=cmd.description,
            tags=cmd.tags,
            invariants=cmd.invariants or parent.invariants,
            # Its data is stored as read: migrated to the current version.
            stored_version=parent.data.version if parent.data is not None else parent.stored_version,
            parent_id=parent.id,
            created_at=at,
            updated_at=at,
        )
    elif cmd.data is not None:
        snapshot = Snapshot(
            id=str(uuid.uuid4()),
            name=cmd.name,
            description=cmd.description,
            tags=cmd.tags,
            project_id="",
            run_id="",
            data=cmd.data,
            reference_metrics=cmd.reference_metrics,
            invariants=cmd.invariants,
            stored_version=cmd.data.version,
            parent_id="",
            created_at=at,
            updated_at=at,
        )
    else:
        snapshot, title, status = await _capture(cmd, deps, at)
        if not cmd.name:
            return await _add_named_after_its_run(snapshot, title, status, deps)
    async with deps.uow() as uow:
        if not await uow.repo.add_snapshot(snapshot):
            raise SnapshotNameTaken(cmd.name)
        await uow.commit()
    return snapshot


async def _add_named_after_its_run(snapshot: Snapshot, title: str, status: str, deps: SnapshotDeps) -> Snapshot:
    """Stored under the first free name of its run's (the same run snapshotted again is `` (2)``);
    a name taken meanwhile by another snapshot of the run is a look again, a few times."""
    for _ in range(DEFAULT_NAME_TRIES):
        async with deps.uow() as uow:
            taken = await uow.repo.names_containing(run_marker(snapshot.run_id))
            named = replace(snapshot, name=run_snapshot_name(title, snapshot.run_id, status, taken))
            if await uow.repo.add_snapshot(named):
                await uow.commit()
                return named
    raise SnapshotNameTaken(run_snapshot_name(title, snapshot.run_id, status, ()))


async def _capture(cmd: c.CreateSnapshot, deps: SnapshotDeps, at: datetime) -> tuple[Snapshot, str, str]:
    """The snapshot, with its project's title and its run's status (what names it when unnamed)."""
    project_id = parse_id(cmd.project_id, "project_id")
    run_id = parse_id(cmd.run_id, "run_id") if cmd.run_id else ""
    reference = None
    status = ""
    if run_id:
        run = await deps.runs.get_run(run_id)
        if run is None:
            raise RunNotFound(run_id)
        if run.project_id != project_id:
            raise ValidationFailed([FieldViolation("run_id", "a run of another project")], "snapshot")
        reference = await deps.runs.metrics(run_id)
        if not reference.ended:
            raise RunNotEnded(run_id, reference.status)
        status = reference.status
        config = await _with_seeds_whole(run_id, run.config, deps)
    state = await deps.spec.capture(project_id, cmd.chat_context_messages or DEFAULT_CHAT_CONTEXT)
    if not run_id:
        # Without a run, the configuration the ProblemSpec asks for, with the run service's defaults.
        mode = state.problem_spec.mode if state.problem_spec and state.problem_spec.mode else "full_search"
        config = RunConfig(mode, RunParameters())
    data = SnapshotData(state.problem_spec, state.world_model, config, state.chat_context)
    snapshot = Snapshot(
        id=str(uuid.uuid4()),
        name=cmd.name,
        description=cmd.description,
        tags=cmd.tags,
        project_id=project_id,
        run_id=run_id,
        data=data,
        reference_metrics=reference,
        invariants=cmd.invariants,
        stored_version=data.version,
        parent_id="",
        created_at=at,
        updated_at=at,
    )
    return snapshot, state.title, status


async def _with_seeds_whole(run_id: str, config: RunConfig, deps: SnapshotDeps) -> RunConfig:
    """The run's config with its seeds whole, so that a replay in a new project evaluates them too."""
    p = config.parameters
    if not (p.seed_candidate_ids or p.seed_candidates):
        return config
    # The seeds as the run stored them; a run that ended before storing them has only those it
    # was given whole (its named ones stay ids, replayable in the source project alone).
    stored = await deps.runs.seed_candidates(run_id)
    return replace(config, parameters=replace(p, seed_candidates=stored or p.seed_candidates))


async def with_seeds_for_a_new_project(snapshot: Snapshot, runs: RunService) -> Snapshot:
    """The snapshot as a replay in a new project needs it: its run's named seeds whole.

    A snapshot taken before seeds were kept whole (document 2.0) names them by id only, and a new
    project has no run to name them from; they are taken from the source run while the run service
    still has it. Otherwise the snapshot is as it was (and its eval_only replay is refused by the
    run's preflight, insufficient_candidates, as before).
    """
    assert snapshot.data is not None, "a replay reads the snapshot with its data"
    config = snapshot.data.run_config
    p = config.parameters
    if not (p.seed_candidate_ids and snapshot.run_id) or any(s.source_candidate_id for s in p.seed_candidates):
        return snapshot
    stored = await runs.seed_candidates(snapshot.run_id)
    if not any(s.source_candidate_id for s in stored):
        return snapshot
    whole = replace(config, parameters=replace(p, seed_candidates=stored))
    return replace(snapshot, data=replace(snapshot.data, run_config=whole))


async def get_snapshot(snapshot_id: str, uow: UowFactory) -> Snapshot:
    snapshot_id = parse_id(snapshot_id, "snapshot_id")
    async with uow(read_only=True) as unit:
        snapshot = await unit.repo.get_snapshot(snapshot_id)
    if snapshot is None:
        raise SnapshotNotFound(snapshot_id)
    return snapshot


async def list_snapshots(cmd: c.ListSnapshots, uow: UowFactory) -> tuple[list[Snapshot], str]:
    tags = tuple(sorted({t.strip() for t in cmd.tags if t.strip()}))
    project_id = parse_id(cmd.project_id, "project_id") if cmd.project_id else ""
    name = cmd.name.strip()
    scope = f"snapshots:{','.join(tags)}:{project_id}:{name}"
    page = page_request(cmd.page_size, cmd.page_token, scope=scope)
    async with uow(read_only=True) as unit:
        rows = await unit.repo.list_snapshots(
            tags=tags,
            project_id=project_id,
            name=name,
            limit=page.size + 1,
            after=(page.after.time, page.after.id) if page.after else None,
        )
    return split_page(rows, page, time_cursor, scope=scope)


async def delete_snapshot(cmd: c.DeleteSnapshot, uow: UowFactory) -> None:
    snapshot_id = parse_id(cmd.snapshot_id, "snapshot_id")
    async with uow() as unit:
        if await unit.repo.get_snapshot(snapshot_id) is None:
            raise SnapshotNotFound(snapshot_id)
        if not cmd.confirm:
            raise ConfirmationRequired(snapshot_id)
        await unit.repo.delete_snapshot(snapshot_id)
        await unit.commit()


# ---------------------------------------------------------------- test reports


async def get_report(report_id: str, deps: SnapshotDeps) -> TestReport:
    report_id = parse_id(report_id, "report_id")
    async with deps.uow(read_only=True) as unit:
        report = await unit.repo.get_report(report_id)
    if report is None:
        raise ReportNotFound(report_id)
    return _so_far(report)


def _so_far(report: TestReport) -> TestReport:
    """A running suite's total so far: what its finished snapshots cost (at its end, the agent service's total)."""
    if report.status is not ReportStatus.RUNNING:
        return report
    return replace(report, total_cost_usd=sum(r.cost_usd for r in report.results))


async def list_reports(cmd: c.ListTestReports, uow: UowFactory) -> tuple[list[TestReport], str]:
    scope = "test_reports"
    page = page_request(cmd.page_size, cmd.page_token, scope=scope)
    async with uow(read_only=True) as unit:
        rows = await unit.repo.list_reports(page.size + 1, (page.after.time, page.after.id) if page.after else None)
    return split_page([_so_far(r) for r in rows], page, time_cursor, scope=scope)


@dataclass(frozen=True)
class Started:
    report_id: str
    snapshot_ids: tuple[str, ...]
    # Each snapshot's replays: the suite's number snapshots × repetitions.
    repetitions: int = 1


ReportEvent = Started | ReplayMove | SnapshotTestResult | TestReport


async def watch_report(report_id: str, deps: SnapshotDeps) -> AsyncIterator[ReportEvent]:
    """The suite from its start: started, each replay's moves while its snapshot is in progress (a
    replay that moved twice between two reads is told where it stands), each result as it was
    stored (which ends its replays' moves), then the report once it has ended."""
    report = await get_report(report_id, deps)
    yield Started(report.id, report.snapshot_ids, max(1, report.options.repetitions))
    # The snapshots (by position) whose result has been told.
    told_results: set[int] = set()
    # Each replay as last told (its state, its run): a move is told once.
    told: dict[tuple[int, int], ReplayMove] = {}
    # Subscribed before the first read: nothing stored in between goes unnoticed.
    with deps.updates.subscribe(report.id) as waiter:
        while True:
            read_at = time.monotonic()
            async with deps.uow(read_only=True) as unit:
                # The status first: a result stored just before the end is still read below. The
                # results before the moves, which leave out the snapshots with a result: a result
                # stored between the two reads leaves its replays out until it is read itself, so
                # no move is told after its snapshot's result.
                status = await unit.repo.report_status(report.id)
                results = await unit.repo.results_except(report.id, told_results)
                moves = await unit.repo.replay_moves(report.id)
            for move in moves:
                key = (move.position, move.repetition)
                # A replay only prepared has nothing to show yet (its project is restored, no more).
                if told.get(key) != move and (key in told or move.state is not ReplayState.PREPARED):
                    told[key] = move
                    yield move
            for position, result in results:
                told_results.add(position)
                yield result
            if status is None:
                return
            if status is not ReportStatus.RUNNING:
                async with deps.uow(read_only=True) as unit:
                    ended = await unit.repo.get_report(report.id)
                if ended is not None:
                    yield ended
                return
            await waiter.wait(WATCH_FALLBACK_SECONDS)
            # A burst of results is one read per watcher.
            await waiter.pause(read_at + WATCH_MIN_INTERVAL_SECONDS - time.monotonic())
