"""Proto ⇄ domain conversions for sprints (translation only; enum names come from the protos)."""

from __future__ import annotations

from dataclasses import asdict

from crucible.agent.v1 import sprint_service_pb2 as pb
from crucible_agent.domain.sprints import (
    Phase,
    PhaseAttempt,
    PhaseAttemptStatus,
    PlanningStatus,
    SpecSnapshot,
    Sprint,
    SprintEvent,
    SprintEventType,
    SprintStatus,
)
from crucible_common.enums import ProtoEnum, dotted
from crucible_common.protobuf import struct, timestamp

STATUS = ProtoEnum(pb.SprintStatus, SprintStatus)
PHASE = ProtoEnum(pb.SprintPhase, Phase)
ATTEMPT_STATUS = ProtoEnum(pb.PhaseAttemptStatus, PhaseAttemptStatus)
PLANNING_STATUS = ProtoEnum(pb.PlanningStatus, PlanningStatus)
EVENT_TYPE = ProtoEnum(pb.SprintEventType, SprintEventType, spelling=dotted)


def spec_snapshot(s: pb.SpecSnapshot) -> SpecSnapshot:
    return SpecSnapshot(
        s.spec_id,
        s.title,
        s.task,
        PLANNING_STATUS.from_proto(s.planning_status, "spec.planning_status"),
        tuple((a.question, a.answer) for a in s.answers),
    )


def sprint_pb(sprint: Sprint) -> pb.Sprint:
    message = pb.Sprint(
        id=sprint.id,
        spec_id=sprint.spec.spec_id,
        name=sprint.name,
        goal=sprint.goal,
        status=STATUS.to_proto(sprint.status),
        current_phase=PHASE.to_proto(sprint.current_phase),
        workspace_ref=sprint.workspace_ref,
        failure_reason=sprint.failure_reason,
        phases=[attempt_pb(a) for a in sprint.phases],
        spec=pb.SpecSnapshot(
            spec_id=sprint.spec.spec_id,
            title=sprint.spec.title,
            task=sprint.spec.task,
            planning_status=PLANNING_STATUS.to_proto(sprint.spec.planning_status),
            answers=[pb.PlanningAnswer(question=q, answer=a) for q, a in sprint.spec.answers],
        ),
        create_time=timestamp(sprint.created_at),
        update_time=timestamp(sprint.updated_at),
    )
    if sprint.trigger is not None:
        message.trigger.CopyFrom(
            pb.Trigger(id=sprint.trigger.id, source=sprint.trigger.source, time=timestamp(sprint.trigger.at))
        )
    return message


def attempt_pb(a: PhaseAttempt) -> pb.PhaseAttempt:
    message = pb.PhaseAttempt(
        phase=PHASE.to_proto(a.phase),
        attempt=a.attempt,
        status=ATTEMPT_STATUS.to_proto(a.status),
        agent_run_id=a.agent_run_id,
        summary=a.summary,
        start_time=timestamp(a.started_at),
    )
    if a.finished_at is not None:
        message.end_time.CopyFrom(timestamp(a.finished_at))
    return message


def event_pb(e: SprintEvent) -> pb.SprintEvent:
    return pb.SprintEvent(
        sequence=e.sequence,
        sprint_id=e.sprint_id,
        type=EVENT_TYPE.to_proto(e.type),
        data=struct(asdict(e.data)),
        time=timestamp(e.at),
    )
