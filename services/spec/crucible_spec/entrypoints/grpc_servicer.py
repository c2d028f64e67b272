"""The SpecService servicer: proto in → command → handler → proto out, nothing more."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from crucible.spec.v1 import spec_service_pb2 as pb
from crucible.spec.v1 import spec_service_pb2_grpc as pb_grpc
from crucible_common.protobuf import struct_to_dict
from crucible_common.streams import Emit, relay
from crucible_common.updates import Changes
from crucible_spec.domain.model import ChatMessage
from crucible_spec.entrypoints import proto_mapping as m
from crucible_spec.service_layer import commands as c
from crucible_spec.service_layer import handlers as h
from crucible_spec.service_layer import sprints
from crucible_spec.service_layer.chat_turns import TurnDeps, chat_turn
from crucible_spec.service_layer.planning import PlanningInterviewer
from crucible_spec.service_layer.project_changes import Heartbeat, ProjectChanged, Ready, watch_project_changes
from crucible_spec.service_layer.sprints import SprintCreator
from crucible_spec.service_layer.unit_of_work import AbstractUnitOfWork

Context = grpc.aio.ServicerContext[Any, Any]


class SpecServicer(pb_grpc.SpecServiceServicer):
    def __init__(
        self,
        uow: Callable[[], AbstractUnitOfWork],
        read_uow: Callable[[], AbstractUnitOfWork] | None = None,
        *,
        interviewer: PlanningInterviewer,
        sprints: SprintCreator,
        turns: TurnDeps,
        project_changes: Changes,
    ) -> None:
        self._uow = uow
        self._read = read_uow or uow
        self._interviewer = interviewer
        self._sprints = sprints
        self._turns = turns
        self._project_changes = project_changes

    # ------------------------------------------------------------ projects

    async def CreateProject(self, request: pb.CreateProjectRequest, context: Context) -> pb.CreateProjectResponse:
        project = await h.create_project(
            c.CreateProject(request.title, request.description, request.replay_of_snapshot_id), self._uow()
        )
        return pb.CreateProjectResponse(project=m.project(project))

    async def GetProject(self, request: pb.GetProjectRequest, context: Context) -> pb.GetProjectResponse:
        project = await h.get_project(c.GetProject(request.project_id), self._read())
        return pb.GetProjectResponse(project=m.project(project))

    async def ListProjects(self, request: pb.ListProjectsRequest, context: Context) -> pb.ListProjectsResponse:
        page = await h.list_projects(
            c.ListProjects(request.page_size, request.page_token, request.include_replays), self._read()
        )
        return pb.ListProjectsResponse(
            projects=[m.project(p) for p in page.items], next_page_token=page.next_page_token
        )

    async def UpdateProject(self, request: pb.UpdateProjectRequest, context: Context) -> pb.UpdateProjectResponse:
        cmd = c.UpdateProject(
            request.project_id,
            tuple(request.update_mask.paths),
            request.title,
            request.description,
            request.auto_snapshot_failed_runs,
        )
        project = await h.update_project(cmd, self._uow())
        return pb.UpdateProjectResponse(project=m.project(project))

    async def DeleteProject(self, request: pb.DeleteProjectRequest, context: Context) -> pb.DeleteProjectResponse:
        await h.delete_project(c.DeleteProject(request.project_id), self._uow())
        return pb.DeleteProjectResponse()

    async def WatchProjectChanges(
        self, request: pb.WatchProjectChangesRequest, context: Context
    ) -> AsyncIterator[pb.WatchProjectChangesResponse]:
        async for event in watch_project_changes(self._project_changes):
            match event:
                case Ready():
                    yield pb.WatchProjectChangesResponse(ready=True)
                case Heartbeat():
                    yield pb.WatchProjectChangesResponse(heartbeat=True)
                case ProjectChanged(project_id):
                    yield pb.WatchProjectChangesResponse(project_id=project_id)

    # ------------------------------------------------------------ chat

    async def CreateChatSession(
        self, request: pb.CreateChatSessionRequest, context: Context
    ) -> pb.CreateChatSessionResponse:
        mode = m.CHAT_MODE.from_proto(request.mode, "mode")
        session = await h.create_chat_session(c.CreateChatSession(request.project_id, mode, request.title), self._uow())
        return pb.CreateChatSessionResponse(chat_session=m.chat_session(session))

    async def GetChatSession(self, request: pb.GetChatSessionRequest, context: Context) -> pb.GetChatSessionResponse:
        session = await h.get_chat_session(c.GetChatSession(request.chat_session_id), self._read())
        return pb.GetChatSessionResponse(chat_session=m.chat_session(session))

    async def ListChatSessions(
        self, request: pb.ListChatSessionsRequest, context: Context
    ) -> pb.ListChatSessionsResponse:
        cmd = c.ListChatSessions(request.project_id, request.page_size, request.page_token)
        page = await h.list_chat_sessions(cmd, self._read())
        return pb.ListChatSessionsResponse(
            chat_sessions=[m.chat_session(s) for s in page.items], next_page_token=page.next_page_token
        )

    async def CreateChatMessage(
        self, request: pb.CreateChatMessageRequest, context: Context
    ) -> pb.CreateChatMessageResponse:
        cmd = c.CreateChatMessage(
            request.chat_session_id,
            m.ROLE.from_proto(request.role, "role"),
            request.content,
            struct_to_dict(request.metadata),
            request.chat_message_id,
        )
        message = await h.create_chat_message(cmd, self._uow())
        return pb.CreateChatMessageResponse(chat_message=m.chat_message(message))

    async def GetChatMessage(self, request: pb.GetChatMessageRequest, context: Context) -> pb.GetChatMessageResponse:
        message, project_id = await h.get_chat_message(c.GetChatMessage(request.chat_message_id), self._read())
        return pb.GetChatMessageResponse(chat_message=m.chat_message(message), project_id=project_id)

    async def ListChatMessages(
        self, request: pb.ListChatMessagesRequest, context: Context
    ) -> pb.ListChatMessagesResponse:
        cmd = c.ListChatMessages(request.chat_session_id, request.page_size, request.page_token)
        page = await h.list_chat_messages(cmd, self._read())
        return pb.ListChatMessagesResponse(
            chat_messages=[m.chat_message(x) for x in page.items], next_page_token=page.next_page_token
        )

    async def CreateChatTurn(self, request: pb.CreateChatTurnRequest, context: Context) -> pb.CreateChatTurnResponse:
        cmd = c.CreateChatTurn(request.chat_session_id, request.content, request.chat_message_id)
        turn = await chat_turn(cmd, self._turns)
        return pb.CreateChatTurnResponse(
            user_message=m.chat_message(turn.user_message), agent_message=m.chat_message(turn.agent_message)
        )

    async def StreamChatTurn(
        self, request: pb.StreamChatTurnRequest, context: Context
    ) -> AsyncIterator[pb.StreamChatTurnResponse]:
        cmd = c.CreateChatTurn(request.chat_session_id, request.content, request.chat_message_id)

        async def turn(emit: Emit[pb.StreamChatTurnResponse]) -> pb.StreamChatTurnResponse:
            async def user_message(message: ChatMessage) -> None:
                await emit(pb.StreamChatTurnResponse(user_message=m.chat_message(message)))

            async def delta(text: str, restart: bool) -> None:
                await emit(pb.StreamChatTurnResponse(reply_delta=pb.ReplyDelta(text=text, restart=restart)))

            done = await chat_turn(cmd, self._turns, on_user_message=user_message, on_delta=delta)
            return pb.StreamChatTurnResponse(agent_message=m.chat_message(done.agent_message))

        async for event in relay(turn):
            yield event

    # ------------------------------------------------------------ ProblemSpec

    async def GetProblemSpec(self, request: pb.GetProblemSpecRequest, context: Context) -> pb.GetProblemSpecResponse:
        spec = await h.get_problem_spec(c.GetProblemSpec(request.project_id), self._read())
        return pb.GetProblemSpecResponse(problem_spec=m.problem_spec(spec))

    async def UpdateProblemSpec(
        self, request: pb.UpdateProblemSpecRequest, context: Context
    ) -> pb.UpdateProblemSpecResponse:
        spec = request.problem_spec
        cmd = c.UpdateProblemSpec(
            project_id=spec.project_id,
            constraints=m.constraints(list(spec.constraints)),
            goals=m.goals(list(spec.goals)),
            resolution=m.RESOLUTION.from_proto(spec.resolution, "problem_spec.resolution"),
            mode=m.RUN_MODE.from_proto(spec.mode, "problem_spec.mode"),
            update_mask=tuple(request.update_mask.paths),
            allow_missing=request.allow_missing,
            expected_version=request.expected_version,
            actor=m.actor(request.actor),
            reason=request.reason,
        )
        stored = await h.update_problem_spec(cmd, self._uow())
        return pb.UpdateProblemSpecResponse(problem_spec=m.problem_spec(stored))

    async def ListProblemSpecProvenance(
        self, request: pb.ListProblemSpecProvenanceRequest, context: Context
    ) -> pb.ListProblemSpecProvenanceResponse:
        cmd = c.ListProvenance(request.project_id, request.page_size, request.page_token)
        page = await h.list_provenance(cmd, "problem_spec", self._read())
        return pb.ListProblemSpecProvenanceResponse(
            entries=[m.provenance_entry(e) for e in page.items], next_page_token=page.next_page_token
        )

    # ------------------------------------------------------------ WorldModel

    async def GetWorldModel(self, request: pb.GetWorldModelRequest, context: Context) -> pb.GetWorldModelResponse:
        model = await h.get_world_model(c.GetWorldModel(request.project_id), self._read())
        return pb.GetWorldModelResponse(world_model=m.world_model(model))

    async def UpdateWorldModel(
        self, request: pb.UpdateWorldModelRequest, context: Context
    ) -> pb.UpdateWorldModelResponse:
        model = request.world_model
        cmd = c.UpdateWorldModel(
            project_id=model.project_id,
            model_data=struct_to_dict(model.model_data),
            update_mask=tuple(request.update_mask.paths),
            allow_missing=request.allow_missing,
            expected_version=request.expected_version,
            actor=m.actor(request.actor),
            reason=request.reason,
        )
        stored = await h.update_world_model(cmd, self._uow())
        return pb.UpdateWorldModelResponse(world_model=m.world_model(stored))

    async def ListWorldModelProvenance(
        self, request: pb.ListWorldModelProvenanceRequest, context: Context
    ) -> pb.ListWorldModelProvenanceResponse:
        cmd = c.ListProvenance(request.project_id, request.page_size, request.page_token)
        page = await h.list_provenance(cmd, "world_model", self._read())
        return pb.ListWorldModelProvenanceResponse(
            entries=[m.provenance_entry(e) for e in page.items], next_page_token=page.next_page_token
        )

    # ------------------------------------------------------------ specs

    async def CreateSpecWithPlanning(
        self, request: pb.CreateSpecWithPlanningRequest, context: Context
    ) -> pb.CreateSpecWithPlanningResponse:
        cmd = c.CreateSpecWithPlanning(
            task=request.task,
            title=request.title,
            max_questions=request.max_questions,
            mode=m.INTERVIEW_MODE.from_proto(request.mode, "mode"),
        )
        spec = await h.create_spec_with_planning(cmd, self._uow(), self._interviewer)
        return pb.CreateSpecWithPlanningResponse(spec=m.spec(spec))

    async def SavePlanningAnswers(
        self, request: pb.SavePlanningAnswersRequest, context: Context
    ) -> pb.SavePlanningAnswersResponse:
        cmd = c.SavePlanningAnswers(request.spec_id, m.planning_answers(list(request.answers)))
        spec = await h.save_planning_answers(cmd, self._uow())
        return pb.SavePlanningAnswersResponse(spec=m.spec(spec), unanswered_questions=list(spec.planning.unanswered()))

    async def GetSpec(self, request: pb.GetSpecRequest, context: Context) -> pb.GetSpecResponse:
        spec = await h.get_spec(c.GetSpec(request.spec_id), self._read())
        return pb.GetSpecResponse(spec=m.spec(spec))

    async def ListSpecs(self, request: pb.ListSpecsRequest, context: Context) -> pb.ListSpecsResponse:
        page = await h.list_specs(c.ListSpecs(request.page_size, request.page_token), self._read())
        return pb.ListSpecsResponse(specs=[m.spec(s) for s in page.items], next_page_token=page.next_page_token)

    async def CreateSprint(self, request: pb.CreateSprintRequest, context: Context) -> pb.CreateSprintResponse:
        cmd = c.CreateSprint(request.spec_id, request.name, request.goal)
        return pb.CreateSprintResponse(sprint=await sprints.create_sprint(cmd, self._read(), self._sprints))
