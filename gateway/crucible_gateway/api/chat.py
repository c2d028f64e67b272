"""/api/projects/{id}/chat-sessions and /api/chat-sessions/{id}/messages"""

from __future__ import annotations

from fastapi import APIRouter

from crucible.spec.v1 import spec_service_pb2 as pb
from crucible_common.protobuf import struct
from crucible_gateway.api.deps import Clients
from crucible_gateway.schemas.chat import (
    CHAT_MODE,
    ROLE,
    ChatMessage,
    ChatMessageCreate,
    ChatMessageList,
    ChatSession,
    ChatSessionCreate,
    ChatSessionList,
)
from crucible_gateway.schemas.common import PageSize, PageToken

router = APIRouter(tags=["chat"])


@router.post("/projects/{project_id}/chat-sessions", status_code=201)
async def create_chat_session(project_id: str, body: ChatSessionCreate, clients: Clients) -> ChatSession:
    response = await clients.spec.CreateChatSession(
        pb.CreateChatSessionRequest(project_id=project_id, title=body.title, mode=CHAT_MODE.number(body.mode)),
        timeout=clients.timeout,
    )
    return ChatSession.from_proto(response.chat_session)


@router.get("/projects/{project_id}/chat-sessions")
async def list_chat_sessions(
    project_id: str, clients: Clients, page_size: PageSize = 0, page_token: PageToken = ""
) -> ChatSessionList:
    response = await clients.spec.ListChatSessions(
        pb.ListChatSessionsRequest(project_id=project_id, page_size=page_size, page_token=page_token),
        timeout=clients.timeout,
    )
    return ChatSessionList(
        chat_sessions=[ChatSession.from_proto(s) for s in response.chat_sessions],
        next_page_token=response.next_page_token,
    )


@router.get("/chat-sessions/{chat_session_id}")
async def get_chat_session(chat_session_id: str, clients: Clients) -> ChatSession:
    response = await clients.spec.GetChatSession(
        pb.GetChatSessionRequest(chat_session_id=chat_session_id), timeout=clients.timeout
    )
    return ChatSession.from_proto(response.chat_session)


@router.post("/chat-sessions/{chat_session_id}/messages", status_code=201)
async def create_chat_message(chat_session_id: str, body: ChatMessageCreate, clients: Clients) -> ChatMessage:
    response = await clients.spec.CreateChatMessage(
        pb.CreateChatMessageRequest(
            chat_session_id=chat_session_id,
            role=ROLE.number(body.role),
            content=body.content,
            metadata=struct(body.metadata),
        ),
        timeout=clients.timeout,
    )
    return ChatMessage.from_proto(response.chat_message)


@router.get("/chat-sessions/{chat_session_id}/messages")
async def list_chat_messages(
    chat_session_id: str, clients: Clients, page_size: PageSize = 0, page_token: PageToken = ""
) -> ChatMessageList:
    response = await clients.spec.ListChatMessages(
        pb.ListChatMessagesRequest(chat_session_id=chat_session_id, page_size=page_size, page_token=page_token),
        timeout=clients.timeout,
    )
    return ChatMessageList(
        chat_messages=[ChatMessage.from_proto(m) for m in response.chat_messages],
        next_page_token=response.next_page_token,
    )
