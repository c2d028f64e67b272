"""What every ProblemSpec / WorldModel change carries (version check, reason, actor), and its log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from crucible.common.v1 import actor_pb2
from crucible.spec.v1 import spec_service_pb2 as pb
from crucible_common.protobuf import struct_to_dict, to_datetime
from crucible_gateway.schemas.common import Body, Int64, RestEnum

ACTOR_KIND = RestEnum(actor_pb2.ActorKind)
ActorKind = Annotated[str, ACTOR_KIND]


class Actor(Body):
    kind: ActorKind = "user"
    id: str = Field(default="", max_length=200)


class ChangeMeta(Body):
    expected_version: Int64 | None = Field(
        default=None, description="Fail with 409 unless the stored version equals it"
    )
    reason: str = Field(default="", max_length=2_000)
    actor: Actor = Field(default_factory=Actor)


class ProvenanceEntry(BaseModel):
    id: str
    version: int
    actor: Actor
    action: str
    changed_fields: list[str]
    reason: str
    changes: dict[str, Any]
    created_at: datetime
    chat_message_id: str = Field(description="For an Architect's change: the chat message that asked for it")

    @classmethod
    def from_proto(cls, e: pb.ProvenanceEntry) -> ProvenanceEntry:
        return cls(
            id=e.id,
            version=e.version,
            actor=Actor(kind=ACTOR_KIND.optional(e.actor.kind) or "user", id=e.actor.id),
            action=e.action,
            changed_fields=list(e.changed_fields),
            reason=e.reason,
            changes=struct_to_dict(e.changes),
            created_at=to_datetime(e.create_time),
            chat_message_id=e.chat_message_id,
        )


class ProvenanceList(BaseModel):
    entries: list[ProvenanceEntry]
    next_page_token: str
