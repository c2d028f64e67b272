"""The SprintService servicer: proto in → command → use case → proto out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from crucible.agent.v1 import sprint_service_pb2 as pb
from crucible.agent.v1 import sprint_service_pb2_grpc as pb_grpc
from crucible_agent.entrypoints import sprint_mapping as m
from crucible_agent.service_layer import commands as c
from crucible_agent.service_layer.sprints import handlers as h
from crucible_agent.service_layer.sprints.workflow import SprintDeps
from crucible_common.leases import Workers

Context = grpc.aio.ServicerContext[Any, Any]


class SprintServicer(pb_grpc.SprintServiceServicer):
    def __init__(self, deps: SprintDeps, scheduler: Workers) -> None:
        self._deps = deps
        self._scheduler = scheduler

    async def CreateSprint(self, request: pb.CreateSprintRequest, context: Context) -> pb.CreateSprintResponse:
        cmd = c.CreateSprint(request.name, request.goal, m.spec_snapshot(request.spec))
        return pb.CreateSprintResponse(sprint=m.sprint_pb(await h.create_sprint(cmd, self._deps.uow)))

    async def StartSprint(self, request: pb.StartSprintRequest, context: Context) -> pb.StartSprintResponse:
        cmd = c.StartSprint(request.sprint_id, request.trigger.id, request.trigger.source)
        sprint = await h.start_sprint(cmd, self._deps.uow, self._scheduler, self._deps.owner)
        return pb.StartSprintResponse(sprint=m.sprint_pb(sprint))

    async def GetSprint(self, request: pb.GetSprintRequest, context: Context) -> pb.GetSprintResponse:
        return pb.GetSprintResponse(sprint=m.sprint_pb(await h.get_sprint(request.sprint_id, self._deps.uow)))

    async def ListSprints(self, request: pb.ListSprintsRequest, context: Context) -> pb.ListSprintsResponse:
        cmd = c.ListSprints(request.spec_id, request.page_size, request.page_token)
        sprints, token = await h.list_sprints(cmd, self._deps.uow)
        return pb.ListSprintsResponse(sprints=[m.sprint_pb(s) for s in sprints], next_page_token=token)

    async def WatchSprint(
        self, request: pb.WatchSprintRequest, context: Context
    ) -> AsyncIterator[pb.WatchSprintResponse]:
        watch = c.WatchSprint(request.sprint_id, request.after_sequence)
        async for event in h.watch_sprint(watch, self._deps.uow, self._deps.updates):
            yield pb.WatchSprintResponse(event=m.event_pb(event))

    async def CancelSprint(self, request: pb.CancelSprintRequest, context: Context) -> pb.CancelSprintResponse:
        cmd = c.CancelSprint(request.sprint_id, request.reason)
        sprint = await h.cancel_sprint(cmd, self._deps.uow, self._scheduler, self._deps.runner)
        return pb.CancelSprintResponse(sprint=m.sprint_pb(sprint))

    async def ListArtifacts(self, request: pb.ListArtifactsRequest, context: Context) -> pb.ListArtifactsResponse:
        cmd = c.ListArtifacts(request.sprint_id, request.page_size, request.page_token)
        artifacts, token = await h.list_artifacts(cmd, self._deps.uow, self._deps.workspaces)
        return pb.ListArtifactsResponse(
            artifacts=[pb.Artifact(path=a.path, size=a.size) for a in artifacts], next_page_token=token
        )

    async def GetArtifact(self, request: pb.GetArtifactRequest, context: Context) -> pb.GetArtifactResponse:
        cmd = c.GetArtifact(request.sprint_id, request.path)
        path, content = await h.get_artifact(cmd, self._deps.uow, self._deps.workspaces)
        return pb.GetArtifactResponse(path=path, content=content)
