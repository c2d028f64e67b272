"""Replays: a snapshot restored into a project and run again by the run service.

The steps, shared by ReplaySnapshot and the suites: a project (new, or the snapshot's own), the
ProblemSpec and WorldModel restored into it through the spec service, a run created with the
replay's trigger (source snapshot_test) and executed, then followed to its end and measured with
the same code that measured the snapshot's reference run. Each step is stored as a ``Replay``, so
the same trigger id asked again (a retried request, a suite resumed by another process) continues
the replay it started instead of starting another.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from crucible_common.errors import FieldViolation, ValidationFailed
from crucible_snapshot.domain import invariants as inv
from crucible_snapshot.domain.errors import TriggerRequired, TriggerReused
from crucible_snapshot.domain.model import InvariantResult, Replay, ReplayChange, ReplayState, RunMetrics, Snapshot
from crucible_snapshot.domain.replay import ReplayPlan, project_title, replay_plan, restore_reason
from crucible_snapshot.domain.snapshot_data import RunConfig
from crucible_snapshot.service_layer import commands as c
from crucible_snapshot.service_layer.handlers import SnapshotDeps, get_snapshot, with_seeds_for_a_new_project
from crucible_snapshot.service_layer.ports import NewRun, RunInfo, RunService, SpecService

logger = logging.getLogger(__name__)

MAX_TRIGGER_ID = 200


@dataclass(frozen=True)
class ReplayOutcome:
    project_id: str
    run_id: str
    # The run's status when answering.
    status: str
    # When waited for.
    metrics: RunMetrics | None = None
    invariants: tuple[InvariantResult, ...] = ()


async def new_project(snapshot: Snapshot, spec: SpecService, *, suite: bool) -> str:
    description = f"Restored from snapshot {snapshot.name} ({snapshot.id}) to replay it."
    return await spec.create_project(project_title(snapshot, suite), description, snapshot.id)


async def restore(snapshot: Snapshot, project_id: str, spec: SpecService) -> None:
    assert snapshot.data is not None, "a replay reads the snapshot with its data"
    await spec.restore(project_id, snapshot.data, restore_reason(snapshot))


def capped(config: RunConfig, budget_usd: float | None) -> RunConfig:
    """The run's config with its share of a cost limit as its budget (the lower of the two, if it has one)."""
    if budget_usd is None:
        return config
    own = config.parameters.budget_usd
    return replace(
        config, parameters=replace(config.parameters, budget_usd=min(own, budget_usd) if own else budget_usd)
    )


async def create(
    replay: Replay,
    snapshot: Snapshot,
    plan: ReplayPlan,
    runs: RunService,
    *,
    snapshot_test_id: str = "",
    budget_usd: float | None = None,
) -> RunInfo:
    """The replay's run, created (the same trigger gives the same run), not started."""
    metadata = {"snapshot_id": snapshot.id, "snapshot_name": snapshot.name[:200]}
    if snapshot_test_id:
        metadata["snapshot_test_id"] = snapshot_test_id
    run = await runs.create_run(
        NewRun(
            project_id=replay.project_id,
            config=capped(plan.config, budget_usd),
            trigger_id=replay.trigger_id,
            replay_of_run_id=plan.replay_of_run_id,
            snapshot_test_id=snapshot_test_id,
            trigger_metadata=metadata,
        )
    )
    return run


async def start(run: RunInfo, plan: ReplayPlan, runs: RunService) -> RunInfo:
    """Execute the replay's run unless it has started (once: ExecuteRun acts only on a created run)."""
    if run.status == "CREATED":
        return await runs.execute_run(run.id, plan.phases)
    return run


async def follow(run_id: str, runs: RunService) -> RunMetrics:
    """The replay's metrics once its run has ended."""
    await runs.wait_ended(run_id)
    return await runs.metrics(run_id)


def trigger_of(ui_trigger_id: str) -> str:
    trigger_id = ui_trigger_id.strip()
    if not trigger_id:
        raise TriggerRequired
    if len(trigger_id) > MAX_TRIGGER_ID:
        raise ValidationFailed([FieldViolation("ui_trigger_id", f"at most {MAX_TRIGGER_ID} characters")], "trigger")
    return trigger_id


async def replay_snapshot(cmd: c.ReplaySnapshot, deps: SnapshotDeps) -> ReplayOutcome:
    """Restore the snapshot into a project and start a run from it; with ``wait``, its invariants checked."""
    trigger_id = trigger_of(cmd.ui_trigger_id)
    snapshot = await get_snapshot(cmd.snapshot_id, deps.uow)
    if cmd.options.reuse_project and not snapshot.project_id:
        raise ValidationFailed(
            [FieldViolation("options.reuse_project", "an imported snapshot has no project: it replays into a new one")],
            "replay",
        )
    if not cmd.options.reuse_project:
        snapshot = await with_seeds_for_a_new_project(snapshot, deps.runs)
    plan = replay_plan(snapshot, cmd.options, into_source_project=cmd.options.reuse_project)
    replay = await _replay_of(trigger_id, snapshot, cmd.options.reuse_project, deps)
    if replay.run_id:
        found = await deps.runs.get_run(replay.run_id)
        assert found is not None, "the run service keeps the runs it created"
        run = found
    else:
        await restore(snapshot, replay.project_id, deps.spec)
        run = await start(await create(replay, snapshot, plan, deps.runs), plan, deps.runs)
        async with deps.uow(single_statement=True) as uow:
            await uow.repo.update_replay(trigger_id, ReplayChange(ReplayState.RUNNING, run_id=run.id))
            await uow.commit()
    if not cmd.wait:
        return ReplayOutcome(replay.project_id, run.id, run.status)
    metrics = await follow(run.id, deps.runs)
    async with deps.uow(single_statement=True) as uow:
        await uow.repo.update_replay(trigger_id, ReplayChange(ReplayState.ENDED, metrics=metrics))
        await uow.commit()
    return ReplayOutcome(
        replay.project_id, run.id, metrics.status, metrics, inv.check_all(snapshot.invariants, [metrics])
    )


async def _replay_of(trigger_id: str, snapshot: Snapshot, reuse_project: bool, deps: SnapshotDeps) -> Replay:
    """The replay this trigger started, or a new one with its project."""
    async with deps.uow(read_only=True) as uow:
        existing = await uow.repo.get_replay(trigger_id)
    if existing is not None:
        return _same_replay(existing, snapshot, trigger_id)
    project_id = snapshot.project_id if reuse_project else await new_project(snapshot, deps.spec, suite=False)
    replay = Replay(trigger_id, snapshot.id, project_id, datetime.now(UTC))
    async with deps.uow() as uow:
        if await uow.repo.add_replays([replay]):
            await uow.commit()
            return replay
        await uow.rollback()
        winner = await uow.repo.get_replay(trigger_id)
    # The same request twice at once: the other one's replay is the replay; this project is not needed.
    if not reuse_project:
        await deps.spec.delete_project(project_id)
    assert winner is not None
    return _same_replay(winner, snapshot, trigger_id)


def _same_replay(replay: Replay, snapshot: Snapshot, trigger_id: str) -> Replay:
    if replay.snapshot_id != snapshot.id or replay.report_id:
        raise TriggerReused(trigger_id, f"another replay (of snapshot {replay.snapshot_id})")
    return replay
