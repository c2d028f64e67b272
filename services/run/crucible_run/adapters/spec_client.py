"""The run service's client of the spec service: the project's problem, settings, recommendations, chat.

Reads only, and the post-run summary: nothing here can reach a run's creation, which only the
RunService's own CreateRun does, on an explicit trigger.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import grpc

from crucible.spec.v1 import spec_service_pb2 as pb
from crucible_common.errors import relayed
from crucible_common.protobuf import struct, struct_to_dict, to_datetime
from crucible_run.adapters.calls import patiently, unanswered
from crucible_run.domain.lineage import ChatMessage
from crucible_run.domain.model import Constraint, JsonObject, ProblemCopy
from crucible_run.service_layer.ports import ChatTarget, ProjectProblem, SpecService, SummaryRefused

if TYPE_CHECKING:  # the async stub type exists only in the generated .pyi
    from crucible.spec.v1.spec_service_pb2_grpc import SpecServiceAsyncStub

T = TypeVar("T")

RESOLUTIONS = {pb.RESOLUTION_COARSE: "coarse", pb.RESOLUTION_MEDIUM: "medium", pb.RESOLUTION_FINE: "fine"}
SUMMARY_SESSION_TITLE = "Runs"


class SpecClient(SpecService):
    def __init__(self, stub: SpecServiceAsyncStub, *, timeout: float, wait_seconds: float) -> None:
        self._stub = stub
        self._timeout = timeout
        self._wait = wait_seconds

    async def project_exists(self, project_id: str) -> bool:
        try:
            await self._call(
                lambda: self._stub.GetProject(pb.GetProjectRequest(project_id=project_id), timeout=self._timeout)
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                return False
            raise relayed(exc) from exc
        return True

    async def problem(self, project_id: str) -> ProjectProblem:
        spec, world = await asyncio.gather(
            self._maybe(
                lambda: self._stub.GetProblemSpec(
                    pb.GetProblemSpecRequest(project_id=project_id), timeout=self._timeout
                )
            ),
            self._maybe(
                lambda: self._stub.GetWorldModel(pb.GetWorldModelRequest(project_id=project_id), timeout=self._timeout)
            ),
        )
        problem_spec = spec.problem_spec if spec is not None else None
        model_data = struct_to_dict(world.world_model.model_data) if world is not None else {}
        has_spec = problem_spec is not None and bool(problem_spec.constraints or problem_spec.goals)
        has_world = any(isinstance(v, list) and v for v in model_data.values())
        if problem_spec is None:
            return ProjectProblem(None, has_spec, has_world)
        copy = ProblemCopy(
            constraints=tuple(Constraint(c.name, c.description, c.weight) for c in problem_spec.constraints),
            goals=tuple(g.description for g in problem_spec.goals),
            resolution=RESOLUTIONS.get(problem_spec.resolution, "medium"),
            world_model=model_data,
        )
        return ProjectProblem(copy, has_spec, has_world)

    async def auto_snapshot_failed_runs(self, project_id: str) -> bool:
        response = await self._maybe(
            lambda: self._stub.GetProject(pb.GetProjectRequest(project_id=project_id), timeout=self._timeout)
        )
        return response is not None and response.project.auto_snapshot_failed_runs

    async def chat_message(self, message_id: str) -> ChatMessage | None:
        response = await self._maybe(
            lambda: self._stub.GetChatMessage(
                pb.GetChatMessageRequest(chat_message_id=message_id), timeout=self._timeout
            )
        )
        if response is None:
            return None
        message = response.chat_message
        return ChatMessage(
            id=message.id,
            project_id=response.project_id,
            chat_session_id=message.chat_session_id,
            from_agent=message.role == pb.MESSAGE_ROLE_AGENT,
            content=message.content,
            metadata=struct_to_dict(message.metadata),
            created_at=to_datetime(message.create_time) if message.HasField("create_time") else None,
        )

    async def chat_session_project(self, chat_session_id: str) -> str | None:
        response = await self._maybe(
            lambda: self._stub.GetChatSession(
                pb.GetChatSessionRequest(chat_session_id=chat_session_id), timeout=self._timeout
            )
        )
        return response.chat_session.project_id if response is not None else None

    async def post_summary(self, target: ChatTarget, message_id: str, content: str, metadata: JsonObject) -> str:
        session_id = target.chat_session_id
        if session_id and await self.chat_session_project(session_id) != target.project_id:
            session_id = ""
        if not session_id:
            session_id = await self._setup_session(target.project_id)
            if not session_id:
                # The project is gone: there is no chat to report to.
                return ""
        request = pb.CreateChatMessageRequest(
            chat_session_id=session_id,
            role=pb.MESSAGE_ROLE_AGENT,
            content=content,
            metadata=struct(metadata),
            chat_message_id=message_id,
        )
        try:
            response = await self._call(lambda: self._stub.CreateChatMessage(request, timeout=self._timeout))
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                return ""  # the session (or its project) was deleted meanwhile: no chat to report to
            raise SummaryRefused(f"{exc.code().name}: {exc.details()}") from exc
        return response.chat_message.id

    async def _setup_session(self, project_id: str) -> str:
        """The project's latest setup session, created when it has none; "" when the project is gone."""
        token = ""
        try:
            while True:
                request = pb.ListChatSessionsRequest(project_id=project_id, page_size=100, page_token=token)
                page = await self._call(functools.partial(self._stub.ListChatSessions, request, timeout=self._timeout))
                setup = next((s for s in page.chat_sessions if s.mode == pb.CHAT_SESSION_MODE_SETUP), None)
                if setup is not None:
                    return setup.id
                if not page.next_page_token:
                    break
                token = page.next_page_token
            created = await self._call(
                lambda: self._stub.CreateChatSession(
                    pb.CreateChatSessionRequest(
                        project_id=project_id, title=SUMMARY_SESSION_TITLE, mode=pb.CHAT_SESSION_MODE_SETUP
                    ),
                    timeout=self._timeout,
                )
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                return ""
            raise
        return created.chat_session.id

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await patiently(call, wait_seconds=self._wait, what="the spec service")
        except grpc.aio.AioRpcError as exc:
            if unanswered(exc):
                # Still away after waiting, or no answer in time: the caller may try again later.
                raise ConnectionError(f"the spec service is unavailable: {exc.details()}") from exc
            raise

    async def _maybe(self, call: Callable[[], Awaitable[T]]) -> T | None:
        """The answer, or None when the spec service says there is no such thing."""
        try:
            return await self._call(call)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                return None
            raise relayed(exc) from exc
