"""/api/projects/{id}/chat-sessions and /api/chat-sessions/{id}/messages"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from crucible.spec.v1 import spec_service_pb2 as pb
from crucible_common.protobuf import struct
from crucible_gateway.api.deps import Clients
from crucible_gateway.schemas import (
    ChatMessage,
    ChatMessageCreate,
    ChatMessageList,
    ChatSession,
    ChatSessionCreate,
    ChatSessionList,
    PageSize,
)

router = APIRouter(tags=["chat"])

CHAT_MODES = {"setup": pb.CHAT_SESSION_MODE_SETUP, "analysis": pb.CHAT_SESSION_MODE_ANALYSIS}
ROLES = {"user": pb.MESSAGE_ROLE_USER, "agent": pb.MESSAGE_ROLE_AGENT, "system": pb.MESSAGE_ROLE_SYSTEM}


@router.post("/projects/{project_id}/chat-sessions", status_code=201)
async def create_chat_session(project_id: str, body: ChatSessionCreate, clients: Clients) -> ChatSession:
    response = await clients.spec.CreateChatSession(
        pb.CreateChatSessionRequest(project_id=project_id, title=body.title, mode=CHAT_MODES[body.mode]),
        timeout=clients.timeout,
    )
    return ChatSession.from_proto(response.chat_session)


@router.get("/projects/{project_id}/chat-sessions")
async def list_chat_sessions(
    project_id: str,
    clients: Clients,
    page_size: Annotated[PageSize, Query()] = 0,
    page_token: Annotated[str, Query(max_length=1024)] = "",
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
            role=ROLES[body.role],
            content=body.content,
            metadata=struct(body.metadata),
        ),
        timeout=clients.timeout,
    )
    return ChatMessage.from_proto(response.chat_message)


@router.get("/chat-sessions/{chat_session_id}/messages")
async def list_chat_messages(
    chat_session_id: str,
    clients: Clients,
    page_size: Annotated[PageSize, Query()] = 0,
    page_token: Annotated[str, Query(max_length=1024)] = "",
) -> ChatMessageList:
    response = await clients.spec.ListChatMessages(
        pb.ListChatMessagesRequest(chat_session_id=chat_session_id, page_size=page_size, page_token=page_token),
        timeout=clients.timeout,
    )
    return ChatMessageList(
        chat_messages=[ChatMessage.from_proto(m) for m in response.chat_messages],
        next_page_token=response.next_page_token,
    )
