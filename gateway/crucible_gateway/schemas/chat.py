"""Bodies of /api/projects/{id}/chat-sessions and /api/chat-sessions/{id}/messages and …/turns;
the events of the chat's WebSocket."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, Field, field_validator

from crucible.spec.v1 import spec_service_pb2 as pb
from crucible_common.protobuf import struct_to_dict, to_datetime
from crucible_gateway.schemas.common import Body, OptionalId, RestEnum

CHAT_MODE = RestEnum(pb.ChatSessionMode)
ROLE = RestEnum(pb.MessageRole)
ChatMode = Annotated[str, CHAT_MODE]
Role = Annotated[str, ROLE]


class ChatSessionCreate(Body):
    title: str = Field(default="", max_length=200)
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


# Metadata only Crucible writes on its own messages: the Architect's recommendation (a run created
# from it is lineage-linked to the Architect), a run's summary and rejections. A client's message
# carrying one would pass for Crucible's.
RESERVED_METADATA = ("architect", "recommended_run_config", "run_summary", "run_rejections")


class ChatMessageCreate(Body):
    role: Role
    content: str = Field(max_length=100_000)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("metadata")
    @classmethod
    def _not_crucible_s_own(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        taken = [key for key in RESERVED_METADATA if key in metadata]
        if taken:
            raise ValueError(
                f"{', '.join(taken)}: written by Crucible itself (the Architect's recommendations, the runs' "
                "summaries); a message posted here cannot carry them"
            )
        return metadata


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


# ---------------------------------------------------------------- turns with the Architect


class ChatTurnCreate(Body):
    """A user's message to the Architect: the body of POST …/turns, and each frame of the chat WebSocket."""

    content: str = Field(max_length=20_000)
    chat_message_id: OptionalId = Field(
        default="", description="Optional, a UUID: the user message's id; sent again, the turn is not repeated"
    )


class ChatTurn(BaseModel):
    user_message: ChatMessage
    agent_message: ChatMessage = Field(
        description="metadata.architect: intent and what was applied; metadata.recommended_run_config when the "
        "user asked to run (seed 001's fields). No turn ever starts a run."
    )

    @classmethod
    def from_proto(cls, r: pb.CreateChatTurnResponse) -> ChatTurn:
        return cls(
            user_message=ChatMessage.from_proto(r.user_message), agent_message=ChatMessage.from_proto(r.agent_message)
        )


class MessageEventJson(TypedDict):
    """A stored message of the turn: ``user_message`` first, ``agent_message`` last."""

    type: Literal["user_message", "agent_message"]
    message: dict[str, Any]


class ReplyDeltaEventJson(TypedDict):
    """A piece of the Architect's reply; ``restart``: the model was retried, drop the reply so far."""

    type: Literal["reply.delta"]
    text: str
    restart: bool


class ErrorEventJson(TypedDict):
    """A turn that failed, or a frame refused: the problem body HTTP would answer with."""

    type: Literal["error"]
    problem: dict[str, Any]


ChatEventJson = MessageEventJson | ReplyDeltaEventJson | ErrorEventJson


def turn_event_json(r: pb.StreamChatTurnResponse) -> ChatEventJson:
    """One WebSocket message for one event of a streamed turn."""
    kind = r.WhichOneof("event")
    if kind == "reply_delta":
        return {"type": "reply.delta", "text": r.reply_delta.text, "restart": r.reply_delta.restart}
    if kind == "user_message":
        return {"type": "user_message", "message": ChatMessage.from_proto(r.user_message).model_dump(mode="json")}
    if kind == "agent_message":
        return {"type": "agent_message", "message": ChatMessage.from_proto(r.agent_message).model_dump(mode="json")}
    # As with an enum value the gateway does not know: the service speaks a newer contract.
    raise ValueError(f"a chat turn event the gateway does not know: {kind}")
