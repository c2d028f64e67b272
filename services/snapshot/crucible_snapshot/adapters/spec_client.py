"""The snapshot service's client of the spec service: capture a project's state, restore it into another."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from crucible.common.v1 import actor_pb2
from crucible.spec.v1 import spec_service_pb2 as pb
from crucible_common.enums import enum_names
from crucible_common.protobuf import struct, struct_to_dict, to_datetime
from crucible_snapshot.adapters.grpc_calls import call, call_or_none
from crucible_snapshot.domain.errors import ProjectNotFound
from crucible_snapshot.domain.replay import RESTORE_ACTOR
from crucible_snapshot.domain.snapshot_data import (
    Actor,
    ChatContextMessage,
    Constraint,
    Goal,
    ProblemSpecCopy,
    ProvenanceEntry,
    SnapshotData,
    WorldModelCopy,
)
from crucible_snapshot.service_layer.ports import ProjectState, SpecService

if TYPE_CHECKING:  # the async stub type exists only in the generated .pyi
    from crucible.spec.v1.spec_service_pb2_grpc import SpecServiceAsyncStub

PAGE = 1_000
RESOLUTIONS = enum_names(pb.Resolution)
MODES = enum_names(pb.RunMode)
ROLES = enum_names(pb.MessageRole)
ACTORS = enum_names(actor_pb2.ActorKind)


def _number(names: dict[int, str], name: str) -> int:
    """The proto value of a REST spelling ("" and unknown names: UNSPECIFIED)."""
    return next((number for number, spelt in names.items() if spelt == name), 0)


class _Page(Protocol):
    @property
    def next_page_token(self) -> str: ...


class _ProvenancePage(_Page, Protocol):
    @property
    def entries(self) -> Sequence[pb.ProvenanceEntry]: ...


P = TypeVar("P", bound=_Page)


async def _pages(fetch: Callable[[str], Awaitable[P]]) -> list[P]:
    """Every page of a listing, in order."""
    pages = [await fetch("")]
    while pages[-1].next_page_token:
        pages.append(await fetch(pages[-1].next_page_token))
    return pages


def _entry(e: pb.ProvenanceEntry) -> ProvenanceEntry:
    return ProvenanceEntry(
        id=e.id,
        version=e.version,
        actor=Actor(ACTORS.get(e.actor.kind, "user"), e.actor.id),
        action=e.action,
        changed_fields=tuple(e.changed_fields),
        reason=e.reason,
        changes=struct_to_dict(e.changes),
        created_at=to_datetime(e.create_time).isoformat() if e.HasField("create_time") else "",
        chat_message_id=e.chat_message_id,
    )


class SpecClient(SpecService):
    def __init__(self, stub: SpecServiceAsyncStub, *, timeout: float) -> None:
        self._stub = stub
        # Every call waits for a restarting spec service, up to its deadline.
        self._opts: dict[str, Any] = {"timeout": timeout, "wait_for_ready": True}

    async def capture(self, project_id: str, chat_messages: int) -> ProjectState:
        found = await call_or_none(
            lambda: self._stub.GetProject(pb.GetProjectRequest(project_id=project_id), **self._opts)
        )
        if found is None:
            raise ProjectNotFound(project_id)
        problem_spec, world_model, chat = await asyncio.gather(
            self._problem_spec(project_id), self._world_model(project_id), self._chat(project_id, chat_messages)
        )
        return ProjectState(problem_spec, world_model, chat, found.project.title)

    async def _problem_spec(self, project_id: str) -> ProblemSpecCopy | None:
        found = await call_or_none(
            functools.partial(self._stub.GetProblemSpec, pb.GetProblemSpecRequest(project_id=project_id), **self._opts)
        )
        if found is None:
            return None
        spec = found.problem_spec
        return ProblemSpecCopy(
            constraints=tuple(Constraint(c.name, c.description, c.weight) for c in spec.constraints),
            goals=tuple(Goal(g.description) for g in spec.goals),
            resolution=RESOLUTIONS.get(spec.resolution, ""),
            mode=MODES.get(spec.mode, ""),
            provenance_log=await self._provenance(
                self._stub.ListProblemSpecProvenance, pb.ListProblemSpecProvenanceRequest, project_id
            ),
        )

    async def _world_model(self, project_id: str) -> WorldModelCopy | None:
        found = await call_or_none(
            functools.partial(self._stub.GetWorldModel, pb.GetWorldModelRequest(project_id=project_id), **self._opts)
        )
        if found is None:
            return None
        return WorldModelCopy(
            model_data=struct_to_dict(found.world_model.model_data),
            provenance=await self._provenance(
                self._stub.ListWorldModelProvenance, pb.ListWorldModelProvenanceRequest, project_id
            ),
        )

    async def _provenance(
        self, rpc: Callable[..., Awaitable[_ProvenancePage]], request: Callable[..., object], project_id: str
    ) -> tuple[ProvenanceEntry, ...]:
        """A ProblemSpec's or a WorldModel's whole provenance log, oldest first."""
        pages = await _pages(
            lambda token: call(
                functools.partial(rpc, request(project_id=project_id, page_size=PAGE, page_token=token), **self._opts)
            )
        )
        return tuple(_entry(e) for page in pages for e in page.entries)

    async def _chat(self, project_id: str, last: int) -> tuple[ChatContextMessage, ...]:
        """The last ``last`` messages of the project's latest setup session."""
        if last <= 0:
            return ()
        session = await self._setup_session(project_id)
        if not session:
            return ()
        pages = await _pages(
            lambda token: call(
                lambda: self._stub.ListChatMessages(
                    pb.ListChatMessagesRequest(chat_session_id=session, page_size=PAGE, page_token=token),
                    **self._opts,
                )
            )
        )
        messages = [m for page in pages for m in page.chat_messages][-last:]
        return tuple(
            ChatContextMessage(
                role=ROLES.get(m.role, "user"),
                content=m.content,
                created_at=to_datetime(m.create_time).isoformat() if m.HasField("create_time") else "",
            )
            for m in messages
        )

    async def _setup_session(self, project_id: str) -> str:
        token = ""
        while True:
            request = pb.ListChatSessionsRequest(project_id=project_id, page_size=100, page_token=token)
            page = await call(functools.partial(self._stub.ListChatSessions, request, **self._opts))
            # Newest first: the first setup session is the latest.
            setup = next((s.id for s in page.chat_sessions if s.mode == pb.CHAT_SESSION_MODE_SETUP), "")
            if setup or not page.next_page_token:
                return setup
            token = page.next_page_token

    async def create_project(self, title: str, description: str, replay_of_snapshot_id: str) -> str:
        created = await call(
            lambda: self._stub.CreateProject(
                pb.CreateProjectRequest(
                    title=title, description=description, replay_of_snapshot_id=replay_of_snapshot_id
                ),
                **self._opts,
            )
        )
        return created.project.id

    async def delete_project(self, project_id: str) -> None:
        await call_or_none(
            lambda: self._stub.DeleteProject(pb.DeleteProjectRequest(project_id=project_id), **self._opts)
        )

    async def restore(self, project_id: str, data: SnapshotData, reason: str) -> None:
        actor = actor_pb2.Actor(kind=actor_pb2.ACTOR_KIND_SYSTEM, id=RESTORE_ACTOR)
        if data.problem_spec is not None:
            spec = data.problem_spec
            request = pb.UpdateProblemSpecRequest(
                problem_spec=pb.ProblemSpec(
                    project_id=project_id,
                    constraints=[
                        pb.Constraint(name=c.name, description=c.description, weight=c.weight) for c in spec.constraints
                    ],
                    goals=[pb.Goal(description=g.description) for g in spec.goals],
                    resolution=pb.Resolution.ValueType(_number(RESOLUTIONS, spec.resolution)),
                    mode=pb.RunMode.ValueType(_number(MODES, spec.mode)),
                ),
                allow_missing=True,
                actor=actor,
                reason=reason,
            )
            await call(lambda: self._stub.UpdateProblemSpec(request, **self._opts))
        if data.world_model is not None:
            world = pb.UpdateWorldModelRequest(
                world_model=pb.WorldModel(project_id=project_id, model_data=struct(data.world_model.model_data)),
                allow_missing=True,
                actor=actor,
                reason=reason,
            )
            await call(lambda: self._stub.UpdateWorldModel(world, **self._opts))
