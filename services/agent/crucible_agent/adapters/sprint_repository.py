"""The sprints' repository: sprints, their phase attempts, their event log.

A phase attempt's output and an event's data are typed domain objects, stored as JSONB through
``crucible_common.jsonb``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from crucible_agent.adapters import tables as t
from crucible_agent.domain.model import JsonObject
from crucible_agent.domain.sprints import (
    EVENT_DATA,
    NewSprintEvent,
    Phase,
    PhaseAttempt,
    PhaseAttemptStatus,
    PhaseOutput,
    PlanningStatus,
    SpecSnapshot,
    Sprint,
    SprintEvent,
    SprintEventType,
    SprintStatus,
    Trigger,
)
from crucible_agent.service_layer.ports import AbstractSprintRepository
from crucible_common import jsonb
from crucible_common.notify import notify

# Watchers of a sprint are woken on this channel, with the sprint's id as the payload.
SPRINT_EVENTS_CHANNEL = "crucible_sprint_events"


class SqlSprintRepository(AbstractSprintRepository):
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, sprint: Sprint) -> None:
        await self._conn.execute(
            insert(t.sprints).values(
                id=sprint.id,
                spec_id=sprint.spec.spec_id,
                spec=_spec_json(sprint.spec),
                name=sprint.name,
                goal=sprint.goal,
                status=sprint.status.value,
                current_phase=None,
                trigger=None,
                workspace_ref=sprint.workspace_ref,
                failure_reason="",
                lease_owner="",
                lease_expires_at=None,
                created_at=sprint.created_at,
                updated_at=sprint.updated_at,
            )
        )

    async def get(self, sprint_id: str, *, for_update: bool = False) -> Sprint | None:
        query = select(t.sprints).where(t.sprints.c.id == sprint_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        if row is None:
            return None
        p = t.sprint_phases.c
        phases = await self._conn.execute(
            select(t.sprint_phases).where(p.sprint_id == sprint_id).order_by(p.started_at, p.attempt)
        )
        return _sprint(row, [_attempt(x) for x in phases])

    async def list_sprints(self, spec_id: str, limit: int, after: tuple[datetime, str] | None) -> list[Sprint]:
        c = t.sprints.c
        query = select(t.sprints)
        if spec_id:
            query = query.where(c.spec_id == spec_id)
        if after is not None:
            at, id_ = after
            query = query.where(or_(c.created_at < at, and_(c.created_at == at, c.id < id_)))
        rows = await self._conn.execute(query.order_by(c.created_at.desc(), c.id.desc()).limit(limit))
        return [_sprint(row, []) for row in rows]

    async def start(self, sprint_id: str, trigger: Trigger) -> None:
        await self._conn.execute(
            update(t.sprints)
            .where(t.sprints.c.id == sprint_id)
            .values(
                status=SprintStatus.ACTIVE.value,
                trigger={"id": trigger.id, "source": trigger.source, "at": trigger.at.isoformat()},
                updated_at=trigger.at,
            )
        )

    async def set_phase(self, sprint_id: str, phase: Phase, at: datetime) -> None:
        await self._conn.execute(
            update(t.sprints).where(t.sprints.c.id == sprint_id).values(current_phase=phase.value, updated_at=at)
        )

    async def finish(self, sprint_id: str, status: SprintStatus, failure_reason: str, at: datetime) -> None:
        await self._conn.execute(
            update(t.sprints)
            .where(t.sprints.c.id == sprint_id)
            .values(status=status.value, failure_reason=failure_reason, updated_at=at, lease_expires_at=None)
        )

    async def save_attempt(self, attempt: PhaseAttempt) -> None:
        values = {
            "sprint_id": attempt.sprint_id,
            "phase": attempt.phase.value,
            "attempt": attempt.attempt,
            "status": attempt.status.value,
            "agent_run_id": attempt.agent_run_id,
            "summary": attempt.summary,
            "output": _json(PhaseOutput, attempt.output),
            "started_at": attempt.started_at,
            "finished_at": attempt.finished_at,
        }
        statement = pg_insert(t.sprint_phases).values(**values)
        await self._conn.execute(
            statement.on_conflict_do_update(
                index_elements=["sprint_id", "phase", "attempt"],
                set_={k: statement.excluded[k] for k in ("status", "agent_run_id", "summary", "output", "finished_at")},
            )
        )

    async def add_event(self, sprint_id: str, event: NewSprintEvent, at: datetime) -> int:
        data = _json(EVENT_DATA[event.type], event.data)
        sequence = await self._conn.scalar(
            insert(t.sprint_events)
            .values(sprint_id=sprint_id, type=event.type.value, data=data, created_at=at)
            .returning(t.sprint_events.c.sequence)
        )
        # Delivered when this transaction commits, to the sprint's watchers on every replica.
        await notify(self._conn, SPRINT_EVENTS_CHANNEL, sprint_id)
        return int(sequence or 0)

    async def events(self, sprint_id: str, after_sequence: int, limit: int) -> list[SprintEvent]:
        e = t.sprint_events.c
        rows = await self._conn.execute(
            select(t.sprint_events)
            .where(e.sprint_id == sprint_id, e.sequence > after_sequence)
            .order_by(e.sequence)
            .limit(limit)
        )
        return [_event(r) for r in rows]


def _spec_json(spec: SpecSnapshot) -> JsonObject:
    return {
        "spec_id": spec.spec_id,
        "title": spec.title,
        "task": spec.task,
        "planning_status": spec.planning_status.value if spec.planning_status else "",
        "answers": [{"question": q, "answer": a} for q, a in spec.answers],
    }


def _sprint(row: Row[Any], phases: list[PhaseAttempt]) -> Sprint:
    s = row.spec
    trigger = row.trigger
    return Sprint(
        id=str(row.id),
        spec=SpecSnapshot(
            s["spec_id"],
            s["title"],
            s["task"],
            PlanningStatus(s["planning_status"]) if s["planning_status"] else None,
            tuple((a["question"], a["answer"]) for a in s["answers"]),
        ),
        name=row.name,
        goal=row.goal,
        status=SprintStatus(row.status),
        current_phase=Phase(row.current_phase) if row.current_phase else None,
        trigger=Trigger(trigger["id"], trigger["source"], datetime.fromisoformat(trigger["at"])) if trigger else None,
        workspace_ref=row.workspace_ref,
        failure_reason=row.failure_reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
        phases=phases,
    )


def _attempt(row: Row[Any]) -> PhaseAttempt:
    return PhaseAttempt(
        sprint_id=str(row.sprint_id),
        phase=Phase(row.phase),
        attempt=row.attempt,
        status=PhaseAttemptStatus(row.status),
        agent_run_id=row.agent_run_id,
        summary=row.summary,
        output=_from_json(PhaseOutput, row.output),
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _event(row: Row[Any]) -> SprintEvent:
    kind = SprintEventType(row.type)
    return SprintEvent(row.sequence, str(row.sprint_id), kind, _from_json(EVENT_DATA[kind], row.data), row.created_at)


def _json(kind: type[Any], value: object) -> JsonObject:
    data: JsonObject = jsonb.dump(kind, value)
    return data


def _from_json(kind: type[Any], data: JsonObject) -> Any:
    return jsonb.load(kind, data)
