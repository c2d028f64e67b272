"""The sprints' use cases: create, start, get, list, cancel, watch, and the artifacts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

from crucible_agent.domain.sprint_errors import (
    SpecNotAnswered,
    SprintFinished,
    SprintNotFound,
    SprintNotPlanned,
    TriggerRequired,
)
from crucible_agent.domain.sprints import (
    Artifact,
    NewSprintEvent,
    PhaseAttemptStatus,
    PhaseEnded,
    PlanningStatus,
    Sprint,
    SprintCreated,
    SprintEnded,
    SprintEvent,
    SprintEventType,
    SprintStarted,
    SprintStatus,
    Trigger,
)
from crucible_agent.service_layer import commands as c
from crucible_agent.service_layer import journal
from crucible_agent.service_layer.agent_runs import AgentRunner
from crucible_agent.service_layer.journal import now
from crucible_agent.service_layer.ports import Workspaces
from crucible_agent.service_layer.unit_of_work import SPRINT, UowFactory
from crucible_common.errors import FieldViolation, ValidationFailed
from crucible_common.ids import parse_id
from crucible_common.leases import Workers
from crucible_common.pagination import Cursor, page_request, split_page, time_cursor
from crucible_common.updates import Updates

MAX_NAME = 200
MAX_GOAL = 10_000
MAX_TRIGGER = 200
# How often a watcher looks for new events.
WATCH_PAGE = 500
# A watcher reads again at least this often even without a notification (a lost connection).
WATCH_FALLBACK_SECONDS = 5.0


async def create_sprint(cmd: c.CreateSprint, uow: UowFactory) -> Sprint:
    problems = []
    spec_id = parse_id(cmd.spec.spec_id, "spec.spec_id")
    if not cmd.name.strip() or len(cmd.name) > MAX_NAME:
        problems.append(FieldViolation("name", f"1 to {MAX_NAME} characters"))
    if len(cmd.goal) > MAX_GOAL:
        problems.append(FieldViolation("goal", f"at most {MAX_GOAL} characters"))
    if not cmd.spec.task.strip():
        problems.append(FieldViolation("spec.task", "must not be empty"))
    if problems:
        raise ValidationFailed(problems, "sprint")
    if cmd.spec.planning_status is not PlanningStatus.ANSWERED:
        raise SpecNotAnswered(spec_id, cmd.spec.planning_status.value if cmd.spec.planning_status else "unknown")
    at = now()
    sprint_id = str(uuid.uuid4())
    sprint = Sprint(
        id=sprint_id,
        spec=replace(cmd.spec, spec_id=spec_id),
        name=cmd.name.strip(),
        goal=cmd.goal,
        status=SprintStatus.PLANNED,
        current_phase=None,
        trigger=None,
        workspace_ref=sprint_id,
        failure_reason="",
        created_at=at,
        updated_at=at,
    )
    async with uow() as unit:
        await unit.sprints.add(sprint)
        event = NewSprintEvent(SprintEventType.SPRINT_CREATED, SprintCreated(sprint.name, spec_id))
        await unit.sprints.add_event(sprint_id, event, at)
        await unit.commit()
    return sprint


async def start_sprint(cmd: c.StartSprint, uow: UowFactory, scheduler: Workers, owner: str) -> Sprint:
    """Start a planned sprint in the background: only by an explicit action, named by its trigger."""
    sprint_id = parse_id(cmd.sprint_id, "sprint_id")
    given = (("id", cmd.trigger_id), ("source", cmd.trigger_source))
    missing = [name for name, value in given if not value.strip()]
    if missing:
        raise TriggerRequired(missing)
    too_long = [
        FieldViolation(f"trigger.{name}", f"at most {MAX_TRIGGER} characters")
        for name, value in given
        if len(value) > MAX_TRIGGER
    ]
    if too_long:
        raise ValidationFailed(too_long, "trigger")
    trigger = Trigger(cmd.trigger_id.strip(), cmd.trigger_source.strip(), now())
    async with uow() as unit:
        sprint = await unit.sprints.get(sprint_id, for_update=True)
        if sprint is None:
            raise SprintNotFound(sprint_id)
        if sprint.status is not SprintStatus.PLANNED:
            raise SprintNotPlanned(sprint_id, sprint.status.value)
        await unit.sprints.start(sprint_id, trigger)
        lease = await unit.take_lease(SPRINT, sprint_id, owner)
        event = NewSprintEvent(SprintEventType.SPRINT_STARTED, SprintStarted(trigger.id, trigger.source))
        await unit.sprints.add_event(sprint_id, event, trigger.at)
        await unit.commit()
    scheduler.launch(lease)
    return await get_sprint(sprint_id, uow)


async def get_sprint(sprint_id: str, uow: UowFactory) -> Sprint:
    sprint_id = parse_id(sprint_id, "sprint_id")
    async with uow(read_only=True) as unit:
        sprint = await unit.sprints.get(sprint_id)
    if sprint is None:
        raise SprintNotFound(sprint_id)
    return sprint


async def list_sprints(cmd: c.ListSprints, uow: UowFactory) -> tuple[list[Sprint], str]:
    spec_id = parse_id(cmd.spec_id, "spec_id") if cmd.spec_id else ""
    scope = f"sprints:{spec_id}"
    page = page_request(cmd.page_size, cmd.page_token, scope=scope)
    async with uow(read_only=True) as unit:
        rows = await unit.sprints.list_sprints(
            spec_id, page.size + 1, (page.after.time, page.after.id) if page.after else None
        )
    return split_page(rows, page, time_cursor, scope=scope)


async def cancel_sprint(cmd: c.CancelSprint, uow: UowFactory, scheduler: Workers, runner: AgentRunner) -> Sprint:
    """Cancel the sprint and stop its work: no model call of it is made once this returns.

    One transaction ends the sprint, its running phase attempt and that attempt's agent run as
    cancelled, and revokes the leases of both. From its commit no process can store one more step
    of them or make one more model call for them: both are fenced by those leases (a process that
    checks while this transaction is open waits for it). Then this process's own tasks on them
    are cancelled and awaited, so none of their calls is left in flight here either.
    """
    sprint_id = parse_id(cmd.sprint_id, "sprint_id")
    async with uow() as unit:
        sprint = await unit.sprints.get(sprint_id, for_update=True)
        if sprint is None:
            raise SprintNotFound(sprint_id)
        if sprint.status.finished:
            raise SprintFinished(sprint_id, sprint.status.value)
        at = now()
        reason = f"cancelled: {cmd.reason or 'no reason given'}"
        stopped_runs = []
        for attempt in sprint.phases:
            if attempt.status is not PhaseAttemptStatus.RUNNING:
                continue
            cancelled = replace(attempt, status=PhaseAttemptStatus.CANCELLED, summary=reason, finished_at=at)
            await unit.sprints.save_attempt(cancelled)
            ended = PhaseEnded(attempt.phase, attempt.attempt, reason)
            await unit.sprints.add_event(sprint_id, NewSprintEvent(SprintEventType.PHASE_CANCELLED, ended), at)
            if await journal.cancel(unit, attempt.agent_run_id, reason, at):
                stopped_runs.append(attempt.agent_run_id)
        await unit.sprints.finish(sprint_id, SprintStatus.CANCELLED, reason, at)
        await unit.revoke_lease(SPRINT, sprint_id)
        event = NewSprintEvent(SprintEventType.SPRINT_CANCELLED, SprintEnded(reason))
        await unit.sprints.add_event(sprint_id, event, at)
        await unit.commit()
    scheduler.stop(sprint_id)
    await scheduler.wait(sprint_id)
    # A planning run this process took over from a dead one runs outside the sprint's task.
    for run_id in stopped_runs:
        await runner.stop(run_id)
    return await get_sprint(sprint_id, uow)


async def list_artifacts(cmd: c.ListArtifacts, uow: UowFactory, workspaces: Workspaces) -> tuple[list[Artifact], str]:
    sprint = await get_sprint(cmd.sprint_id, uow)
    scope = f"artifacts:{sprint.id}"
    page = page_request(cmd.page_size, cmd.page_token, scope=scope, key="text")
    artifacts = await workspaces.open(sprint.workspace_ref).artifacts()
    after = [a for a in artifacts if page.after is None or a.path > page.after.key]
    return split_page(after[: page.size + 1], page, lambda a: Cursor(a.path, a.path), scope=scope)


async def get_artifact(cmd: c.GetArtifact, uow: UowFactory, workspaces: Workspaces) -> tuple[str, bytes]:
    sprint = await get_sprint(cmd.sprint_id, uow)
    return cmd.path, await workspaces.open(sprint.workspace_ref).open_artifact(cmd.path)


async def watch_sprint(cmd: c.WatchSprint, uow: UowFactory, updates: Updates) -> AsyncIterator[SprintEvent]:
    """Every event after ``after_sequence``, then new ones, until the sprint has ended."""
    sprint = await get_sprint(cmd.sprint_id, uow)
    cursor = cmd.after_sequence
    # Subscribed before the first read: nothing stored in between goes unnoticed.
    with updates.subscribe(sprint.id) as waiter:
        while True:
            async with uow(read_only=True) as unit:
                # Status first: an end that commits between the two reads still has its event read.
                current = await unit.sprints.get(sprint.id)
                events = await unit.sprints.events(sprint.id, cursor, WATCH_PAGE)
            for event in events:
                cursor = event.sequence
                yield event
            finished = current is None or current.status.finished
            if finished and not events:
                return
            if finished or len(events) == WATCH_PAGE:
                continue
            # Whatever commits after the read above notifies the waiter (on whichever replica wrote
            # it), so waiting cannot miss an event; the timeout is only a safety net.
            await waiter.wait(WATCH_FALLBACK_SECONDS)
