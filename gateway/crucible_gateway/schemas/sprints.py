"""Bodies of /api/sprints and the events of their WebSocket.

A sprint's status is the seed's planned|active|completed|failed, or cancelled (by
``POST /api/sprints/{id}/cancel``: its running phase and that phase's agent run are cancelled too).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypedDict

from pydantic import BaseModel, Field

from crucible.agent.v1 import sprint_service_pb2 as pb
from crucible_common.enums import dotted
from crucible_common.protobuf import struct_to_dict, to_datetime
from crucible_gateway.schemas.common import Body, Id, RestEnum

SPRINT_STATUS = RestEnum(pb.SprintStatus)
SPRINT_PHASE = RestEnum(pb.SprintPhase)
ATTEMPT_STATUS = RestEnum(pb.PhaseAttemptStatus)
EVENT_TYPE = RestEnum(pb.SprintEventType, dotted)
SprintStatus = Annotated[str, SPRINT_STATUS]
SprintPhase = Annotated[str, SPRINT_PHASE]
AttemptStatus = Annotated[str, ATTEMPT_STATUS]


class SprintCreate(Body):
    spec_id: Id
    name: str = Field(max_length=200)
    goal: str = Field(default="", max_length=10_000)


class SprintStart(Body):
    ui_trigger_id: str = Field(
        max_length=200, description="The explicit action that starts the sprint (a button click id, ...)"
    )
    ui_trigger_source: str = Field(max_length=200, description='Where it came from: "ui", "cli", "api", ...')


class SprintCancel(Body):
    reason: str = Field(default="", max_length=2_000)


class TriggerRead(BaseModel):
    id: str
    source: str
    at: datetime


class PhaseRead(BaseModel):
    phase: str
    attempt: int
    status: AttemptStatus
    agent_run_id: str
    summary: str
    started_at: datetime
    finished_at: datetime | None


class SprintRead(BaseModel):
    id: str
    spec_id: str
    status: SprintStatus
    name: str
    goal: str
    current_phase: SprintPhase | None
    trigger: TriggerRead | None
    workspace_ref: str
    failure_reason: str
    phases: list[PhaseRead]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_proto(cls, s: pb.Sprint) -> SprintRead:
        return cls(
            id=s.id,
            spec_id=s.spec_id,
            status=SPRINT_STATUS.name(s.status),
            name=s.name,
            goal=s.goal,
            current_phase=SPRINT_PHASE.optional(s.current_phase),
            trigger=TriggerRead(id=s.trigger.id, source=s.trigger.source, at=to_datetime(s.trigger.time))
            if s.HasField("trigger")
            else None,
            workspace_ref=s.workspace_ref,
            failure_reason=s.failure_reason,
            phases=[
                PhaseRead(
                    phase=SPRINT_PHASE.optional(p.phase) or "unspecified",
                    attempt=p.attempt,
                    status=ATTEMPT_STATUS.name(p.status),
                    agent_run_id=p.agent_run_id,
                    summary=p.summary,
                    started_at=to_datetime(p.start_time),
                    finished_at=to_datetime(p.end_time) if p.HasField("end_time") else None,
                )
                for p in s.phases
            ],
            created_at=to_datetime(s.create_time),
            updated_at=to_datetime(s.update_time),
        )


class SprintList(BaseModel):
    sprints: list[SprintRead]
    next_page_token: str


class ArtifactRead(BaseModel):
    path: str
    size: int


class ArtifactList(BaseModel):
    artifacts: list[ArtifactRead] = Field(description="In path order")
    next_page_token: str


class SprintEventJson(TypedDict):
    """One WebSocket message: a sprint event, its type spelled dotted ("phase.started")."""

    sequence: int
    sprint_id: str
    type: str
    data: dict[str, Any]
    time: str


def event_json(e: pb.SprintEvent) -> SprintEventJson:
    return {
        "sequence": e.sequence,
        "sprint_id": e.sprint_id,
        "type": EVENT_TYPE.name(e.type),
        "data": struct_to_dict(e.data),
        "time": to_datetime(e.time).isoformat(),
    }
