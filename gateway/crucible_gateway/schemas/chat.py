"""Bodies of /api/projects/{id}/chat-sessions and /api/chat-sessions/{id}/messages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from crucible.spec.v1 import spec_service_pb2 as pb
from crucible_common.protobuf import struct_to_dict, to_datetime
from crucible_gateway.schemas.common import Body, RestEnum

CHAT_MODE = RestEnum(pb.ChatSessionMode)
ROLE = RestEnum(pb.MessageRole)
ChatMode = Annotated[str, CHAT_MODE]
Role = Annotated[str, ROLE]


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
    def from_proto(cls, s: pb.ChatSession) -> ChatSession:
        return cls(
            id=s.id,
            project_id=s.project_id,
            title=s.title,
            mode=CHAT_MODE.name(s.mode),
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
    def from_proto(cls, m: pb.ChatMessage) -> ChatMessage:
        return cls(
            id=m.id,
            chat_session_id=m.chat_session_id,
            sequence=m.sequence,
            role=ROLE.name(m.role),
            content=m.content,
            metadata=struct_to_dict(m.metadata),
            created_at=to_datetime(m.create_time),
        )


class ChatMessageList(BaseModel):
    chat_messages: list[ChatMessage]
    next_page_token: str
