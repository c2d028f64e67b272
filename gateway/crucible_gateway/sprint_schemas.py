"""REST bodies of the sprint endpoints (the seed's shapes: status planned|active|completed|failed)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from crucible.agent.v1 import sprint_service_pb2 as pb
from crucible_common.protobuf import struct_to_dict, to_datetime
from crucible_gateway.schemas import Body

STATUS = {
    pb.SPRINT_STATUS_PLANNED: "planned",
    pb.SPRINT_STATUS_ACTIVE: "active",
    pb.SPRINT_STATUS_COMPLETED: "completed",
    pb.SPRINT_STATUS_FAILED: "failed",
}
PHASE = {
    pb.SPRINT_PHASE_DISCOVERY: "discovery",
    pb.SPRINT_PHASE_CODING: "coding",
    pb.SPRINT_PHASE_VERIFICATION: "verification",
}


class SprintCreate(Body):
    spec_id: str
    name: str
    goal: str = ""


class SprintStart(Body):
    ui_trigger_id: str = Field(description="The explicit action that starts the sprint (a button click id, ...)")
    ui_trigger_source: str = Field(description='Where it came from: "ui", "cli", "api", ...')


class SprintCancel(Body):
    reason: str = ""


class TriggerRead(BaseModel):
    id: str
    source: str
    at: datetime


class PhaseRead(BaseModel):
    phase: str
    attempt: int
    status: str
    agent_run_id: str
    summary: str
    started_at: datetime
    finished_at: datetime | None


class SprintRead(BaseModel):
    id: str
    spec_id: str
    status: Literal["planned", "active", "completed", "failed"]
    name: str
    goal: str
    current_phase: str | None
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
            status=STATUS[s.status],
            name=s.name,
            goal=s.goal,
            current_phase=PHASE.get(s.current_phase),
            trigger=TriggerRead(id=s.trigger.id, source=s.trigger.source, at=to_datetime(s.trigger.time))
            if s.HasField("trigger")
            else None,
            workspace_ref=s.workspace_ref,
            failure_reason=s.failure_reason,
            phases=[
                PhaseRead(
                    phase=PHASE.get(p.phase, "unspecified"),
                    attempt=p.attempt,
                    status=p.status,
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
    artifacts: list[ArtifactRead]


def event_json(e: pb.SprintEvent) -> dict[str, Any]:
    return {
        "sequence": e.sequence,
        "sprint_id": e.sprint_id,
        "type": e.type,
        "data": struct_to_dict(e.data),
        "time": to_datetime(e.time).isoformat(),
    }
