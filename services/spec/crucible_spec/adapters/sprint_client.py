"""The spec service's client of the agent service's sprints."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from crucible.agent.v1 import sprint_service_pb2 as pb
from crucible_common.errors import relayed
from crucible_spec.service_layer.sprints import SprintCreator, SprintRequest

if TYPE_CHECKING:  # the async stub type exists only in the generated .pyi
    from crucible.agent.v1.sprint_service_pb2_grpc import SprintServiceAsyncStub


class AgentSprintCreator(SprintCreator):
    def __init__(self, stub: SprintServiceAsyncStub, *, timeout: float) -> None:
        self._stub = stub
        self._timeout = timeout

    async def create_sprint(self, request: SprintRequest) -> pb.Sprint:
        spec = pb.SpecSnapshot(
            spec_id=request.spec_id,
            title=request.title,
            task=request.task,
            # Only an answered spec gets this far (the handler checked).
            planning_status=pb.PLANNING_STATUS_ANSWERED,
            answers=[pb.PlanningAnswer(question=q, answer=a) for q, a in request.answers],
        )
        call = pb.CreateSprintRequest(name=request.name, goal=request.goal, spec=spec)
        try:
            response = await self._stub.CreateSprint(call, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            # The agent context owns sprints: its answer (a bad name, ...) is the caller's answer.
            raise relayed(exc) from exc
        return response.sprint
