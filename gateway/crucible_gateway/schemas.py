"""REST bodies of the gateway, and their translation from the services' protos."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from crucible.common.v1 import actor_pb2
from crucible.spec.v1 import spec_service_pb2 as spec_pb
from crucible_common.protobuf import struct_to_dict, to_datetime

# Lengths and ranges are the spec service's to judge; the gateway only keeps numbers within
# what the wire format can carry, so an absurd value is a 400 and never a crash.
Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
Int64 = Annotated[int, Field(ge=0, le=2**63 - 1)]
PageSize = Annotated[int, Field(ge=0, le=1000, description="0 means the default (50)")]

ChatMode = Literal["setup", "analysis"]
Role = Literal["user", "agent", "system"]
ResolutionName = Literal["coarse", "medium", "fine"]
RunModeName = Literal["full_search", "eval_only", "seeded"]
ActorKindName = Literal["user", "architect", "system"]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- projects


class ProjectCreate(Body):
    title: str
    description: str = ""


class ProjectPatch(Body):
    title: str | None = None
    description: str | None = None


class Project(BaseModel):
    id: str
    title: str
    description: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_proto(cls, p: spec_pb.Project) -> Project:
        return cls(
            id=p.id,
            title=p.title,
            description=p.description,
            created_at=to_datetime(p.create_time),
            updated_at=to_datetime(p.update_time),
        )


class ProjectList(BaseModel):
    projects: list[Project]
    next_page_token: str


# ---------------------------------------------------------------- chat


class ChatSessionCreate(Body):
    title: str = ""
    mode: ChatMode = "setup"


class ChatSession(BaseModel):
    id: str
    project_id: str
    title: str
    mode: ChatMode
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_proto(cls, s: spec_pb.ChatSession) -> ChatSession:
        return cls(
            id=s.id,
            project_id=s.project_id,
            title=s.title,
            mode=_enum_name(spec_pb.ChatSessionMode.Name(s.mode), "CHAT_SESSION_MODE_"),
            created_at=to_datetime(s.create_time),
            updated_at=to_datetime(s.update_time),
        )


class ChatSessionList(BaseModel):
    chat_sessions: list[ChatSession]
    next_page_token: str


class ChatMessageCreate(Body):
    role: Role
    content: str
    metadata: dict[str, Any] = Field(default_factory=dict)


class ChatMessage(BaseModel):
    id: str
    chat_session_id: str
    sequence: int
    role: Role
    content: str
    metadata: dict[str, Any]
    created_at: datetime

    @classmethod
    def from_proto(cls, m: spec_pb.ChatMessage) -> ChatMessage:
        return cls(
            id=m.id,
            chat_session_id=m.chat_session_id,
            sequence=m.sequence,
            role=_enum_name(spec_pb.MessageRole.Name(m.role), "MESSAGE_ROLE_"),
            content=m.content,
            metadata=struct_to_dict(m.metadata),
            created_at=to_datetime(m.create_time),
        )


class ChatMessageList(BaseModel):
    chat_messages: list[ChatMessage]
    next_page_token: str


# ---------------------------------------------------------------- ProblemSpec / WorldModel


class Actor(Body):
    kind: ActorKindName = "user"
    id: str = ""


class ConstraintBody(Body):
    name: str
    description: str = ""
    weight: Int32 = Field(description="0-100; 100 makes it a hard constraint")


class GoalBody(Body):
    description: str


class ChangeMeta(Body):
    expected_version: Int64 | None = Field(
        default=None, description="Fail with 409 unless the stored version equals it"
    )
    reason: str = ""
    actor: Actor = Field(default_factory=Actor)


class ProblemSpecPut(ChangeMeta):
    constraints: list[ConstraintBody] = Field(default_factory=list)
    goals: list[GoalBody] = Field(default_factory=list)
    resolution: ResolutionName = "medium"
    mode: RunModeName = "full_search"


class ProblemSpecPatch(ChangeMeta):
    constraints: list[ConstraintBody] | None = None
    goals: list[GoalBody] | None = None
    resolution: ResolutionName | None = None
    mode: RunModeName | None = None


class ProblemSpec(BaseModel):
    project_id: str
    constraints: list[ConstraintBody]
    goals: list[GoalBody]
    resolution: ResolutionName
    mode: RunModeName
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_proto(cls, s: spec_pb.ProblemSpec) -> ProblemSpec:
        return cls(
            project_id=s.project_id,
            constraints=[
                ConstraintBody(name=c.name, description=c.description, weight=c.weight) for c in s.constraints
            ],
            goals=[GoalBody(description=g.description) for g in s.goals],
            resolution=_enum_name(spec_pb.Resolution.Name(s.resolution), "RESOLUTION_"),
            mode=_enum_name(spec_pb.RunMode.Name(s.mode), "RUN_MODE_"),
            version=s.version,
            created_at=to_datetime(s.create_time),
            updated_at=to_datetime(s.update_time),
        )


class WorldModelPut(ChangeMeta):
    model_data: dict[str, Any] = Field(
        description="Sections: actors, mechanisms, resources, constraints, assumptions, simplifications"
    )


class WorldModelPatch(ChangeMeta):
    model_data: dict[str, Any] = Field(description="Only the sections given are replaced")


class WorldModel(BaseModel):
    project_id: str
    model_data: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_proto(cls, m: spec_pb.WorldModel) -> WorldModel:
        return cls(
            project_id=m.project_id,
            model_data=struct_to_dict(m.model_data),
            version=m.version,
            created_at=to_datetime(m.create_time),
            updated_at=to_datetime(m.update_time),
        )


class ProvenanceEntry(BaseModel):
    id: str
    version: int
    actor: Actor
    action: str
    changed_fields: list[str]
    reason: str
    changes: dict[str, Any]
    created_at: datetime

    @classmethod
    def from_proto(cls, e: spec_pb.ProvenanceEntry) -> ProvenanceEntry:
        return cls(
            id=e.id,
            version=e.version,
            actor=Actor(
                kind=_enum_name(actor_pb2.ActorKind.Name(e.actor.kind), "ACTOR_KIND_") or "user",
                id=e.actor.id,
            ),
            action=e.action,
            changed_fields=list(e.changed_fields),
            reason=e.reason,
            changes=struct_to_dict(e.changes),
            created_at=to_datetime(e.create_time),
        )


class ProvenanceList(BaseModel):
    entries: list[ProvenanceEntry]
    next_page_token: str


# ---------------------------------------------------------------- health


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    services: dict[str, str]
    not_serving: list[str]


def _enum_name(name: str, prefix: str) -> str:
    return name.removeprefix(prefix).lower()
