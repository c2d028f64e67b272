"""The SprintService servicer: proto in → use case → proto out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from crucible.agent.v1 import sprint_service_pb2 as pb
from crucible.agent.v1 import sprint_service_pb2_grpc as pb_grpc
from crucible_agent.domain.sprints import Phase, PhaseAttempt, SpecSnapshot, Sprint, SprintEvent, SprintStatus
from crucible_agent.service_layer.sprints import SprintService
from crucible_common.protobuf import struct, timestamp

Context = grpc.aio.ServicerContext[Any, Any]

STATUS_PB = {
    SprintStatus.PLANNED: pb.SPRINT_STATUS_PLANNED,
    SprintStatus.ACTIVE: pb.SPRINT_STATUS_ACTIVE,
    SprintStatus.COMPLETED: pb.SPRINT_STATUS_COMPLETED,
    SprintStatus.FAILED: pb.SPRINT_STATUS_FAILED,
}
PHASE_PB = {
    Phase.DISCOVERY: pb.SPRINT_PHASE_DISCOVERY,
    Phase.CODING: pb.SPRINT_PHASE_CODING,
    Phase.VERIFICATION: pb.SPRINT_PHASE_VERIFICATION,
}


class SprintServicer(pb_grpc.SprintServiceServicer):
    def __init__(self, sprints: SprintService) -> None:
        self._sprints = sprints

    async def CreateSprint(self, request: pb.CreateSprintRequest, context: Context) -> pb.CreateSprintResponse:
        s = request.spec
        spec = SpecSnapshot(
            s.spec_id, s.title, s.task, s.planning_status, tuple((a.question, a.answer) for a in s.answers)
        )
        sprint = await self._sprints.create(request.name, request.goal, spec)
        return pb.CreateSprintResponse(sprint=sprint_pb(sprint))

    async def StartSprint(self, request: pb.StartSprintRequest, context: Context) -> pb.StartSprintResponse:
        sprint = await self._sprints.start(request.sprint_id, request.trigger.id, request.trigger.source)
        return pb.StartSprintResponse(sprint=sprint_pb(sprint))

    async def GetSprint(self, request: pb.GetSprintRequest, context: Context) -> pb.GetSprintResponse:
        return pb.GetSprintResponse(sprint=sprint_pb(await self._sprints.get(request.sprint_id)))

    async def ListSprints(self, request: pb.ListSprintsRequest, context: Context) -> pb.ListSprintsResponse:
        sprints, token = await self._sprints.list_sprints(request.spec_id, request.page_size, request.page_token)
        return pb.ListSprintsResponse(sprints=[sprint_pb(s) for s in sprints], next_page_token=token)

    async def WatchSprint(self, request: pb.WatchSprintRequest, context: Context) -> AsyncIterator[pb.SprintEvent]:
        async for event in self._sprints.watch(request.sprint_id, request.after_sequence):
            yield event_pb(event)

    async def CancelSprint(self, request: pb.CancelSprintRequest, context: Context) -> pb.CancelSprintResponse:
        return pb.CancelSprintResponse(sprint=sprint_pb(await self._sprints.cancel(request.sprint_id, request.reason)))

    async def ListArtifacts(self, request: pb.ListArtifactsRequest, context: Context) -> pb.ListArtifactsResponse:
        artifacts = await self._sprints.artifacts(request.sprint_id)
        return pb.ListArtifactsResponse(artifacts=[pb.Artifact(path=a.path, size=a.size) for a in artifacts])

    async def GetArtifact(self, request: pb.GetArtifactRequest, context: Context) -> pb.GetArtifactResponse:
        path, content = await self._sprints.artifact(request.sprint_id, request.path)
        return pb.GetArtifactResponse(path=path, content=content)


def sprint_pb(sprint: Sprint) -> pb.Sprint:
    message = pb.Sprint(
        id=sprint.id,
        spec_id=sprint.spec.spec_id,
        name=sprint.name,
        goal=sprint.goal,
        status=STATUS_PB[sprint.status],
        current_phase=PHASE_PB[sprint.current_phase] if sprint.current_phase else pb.SPRINT_PHASE_UNSPECIFIED,
        workspace_ref=sprint.workspace_ref,
        failure_reason=sprint.failure_reason,
        phases=[attempt_pb(a) for a in sprint.phases],
        spec=pb.SpecSnapshot(
            spec_id=sprint.spec.spec_id,
            title=sprint.spec.title,
            task=sprint.spec.task,
            planning_status=sprint.spec.planning_status,
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
        phase=PHASE_PB[a.phase],
        attempt=a.attempt,
        status=a.status.value,
        agent_run_id=a.agent_run_id,
        summary=a.summary,
        start_time=timestamp(a.started_at),
    )
    if a.finished_at is not None:
        message.end_time.CopyFrom(timestamp(a.finished_at))
    return message


def event_pb(e: SprintEvent) -> pb.SprintEvent:
    return pb.SprintEvent(
        sequence=e.sequence, sprint_id=e.sprint_id, type=e.type, data=struct(e.data), time=timestamp(e.at)
    )
