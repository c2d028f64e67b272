"""/api/projects/{id}/chat-sessions, /api/chat-sessions/{id}/messages, and turns with the Architect
(…/turns, and the WebSocket /api/ws/chat-sessions/{id} that streams them)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import grpc
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.types import Message

from crucible.spec.v1 import spec_service_pb2 as pb
from crucible_common.protobuf import struct
from crucible_gateway.api.deps import Clients, refused_without_token
from crucible_gateway.clients import ServiceClients
from crucible_gateway.errors import end_with_problem, problem, problem_json, validation_problem, violations_problem
from crucible_gateway.inputs import frame_violations
from crucible_gateway.schemas.chat import (
    CHAT_MODE,
    ROLE,
    ChatEventJson,
    ChatMessage,
    ChatMessageCreate,
    ChatMessageList,
    ChatSession,
    ChatSessionCreate,
    ChatSessionList,
    ChatTurn,
    ChatTurnCreate,
    turn_event_json,
)
from crucible_gateway.schemas.common import Id, PageSize, PageToken

router = APIRouter(tags=["chat"])
ws_router = APIRouter(tags=["chat"])


@router.post("/projects/{project_id}/chat-sessions", status_code=201)
async def create_chat_session(project_id: Id, body: ChatSessionCreate, clients: Clients) -> ChatSession:
    response = await clients.spec.CreateChatSession(
        pb.CreateChatSessionRequest(project_id=project_id, title=body.title, mode=CHAT_MODE.number(body.mode)),
        timeout=clients.timeout,
    )
    return ChatSession.from_proto(response.chat_session)


@router.get("/projects/{project_id}/chat-sessions")
async def list_chat_sessions(
    project_id: Id, clients: Clients, page_size: PageSize = 0, page_token: PageToken = ""
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
async def get_chat_session(chat_session_id: Id, clients: Clients) -> ChatSession:
    response = await clients.spec.GetChatSession(
        pb.GetChatSessionRequest(chat_session_id=chat_session_id), timeout=clients.timeout
    )
    return ChatSession.from_proto(response.chat_session)


@router.post("/chat-sessions/{chat_session_id}/messages", status_code=201)
async def create_chat_message(chat_session_id: Id, body: ChatMessageCreate, clients: Clients) -> ChatMessage:
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
    chat_session_id: Id, clients: Clients, page_size: PageSize = 0, page_token: PageToken = ""
) -> ChatMessageList:
    response = await clients.spec.ListChatMessages(
        pb.ListChatMessagesRequest(chat_session_id=chat_session_id, page_size=page_size, page_token=page_token),
        timeout=clients.timeout,
    )
    return ChatMessageList(
        chat_messages=[ChatMessage.from_proto(m) for m in response.chat_messages],
        next_page_token=response.next_page_token,
    )


@router.post("/chat-sessions/{chat_session_id}/turns", status_code=201)
async def create_chat_turn(chat_session_id: Id, body: ChatTurnCreate, clients: Clients) -> ChatTurn:
    """A turn with the Architect: the user's message, then its stored reply. A turn never starts a run."""
    response = await clients.spec.CreateChatTurn(
        pb.CreateChatTurnRequest(
            chat_session_id=chat_session_id, content=body.content, chat_message_id=body.chat_message_id
        ),
        timeout=clients.llm_timeout,
    )
    return ChatTurn.from_proto(response)


@ws_router.websocket("/api/ws/chat-sessions/{chat_session_id}")
async def chat_turns(websocket: WebSocket, chat_session_id: Id) -> None:
    """Turns with the Architect: each frame ``{content, chat_message_id?}`` is answered by its turn's events.

    One turn at a time: a frame that arrives while a turn is answered is refused with an error event,
    as is a frame that is not a turn. A failed turn is an error event, and the connection stays open
    for the next one. A client that goes away cancels the turn in flight.

    The session is looked up first: an unknown one is an error frame and a close with 4404
    (``end_with_problem``), before any frame is read.
    """
    if await refused_without_token(websocket):
        return
    clients: ServiceClients = websocket.app.state.clients
    try:
        await clients.spec.GetChatSession(
            pb.GetChatSessionRequest(chat_session_id=chat_session_id), timeout=clients.timeout
        )
    except grpc.aio.AioRpcError as exc:
        await end_with_problem(websocket, problem_json(exc))
        return
    await websocket.accept()
    # The group ends the connection with whatever a turn's task raised: a bug is not swallowed.
    async with asyncio.TaskGroup() as group:
        turn: asyncio.Task[None] | None = None
        # Raised by a refusal sent to a client that has just gone: the same as its disconnect.
        with contextlib.suppress(WebSocketDisconnect):
            # Always reading, even while a turn is answered, so that a disconnect is seen at once.
            while (frame := await websocket.receive())["type"] != "websocket.disconnect":
                if turn is not None and not turn.done():
                    busy = _body(
                        problem(409, "a turn is being answered: send the next after it", reason="TURN_IN_PROGRESS")
                    )
                    await websocket.send_json(_error(busy))
                    continue
                body = _turn_body(frame)
                if isinstance(body, ChatTurnCreate):
                    turn = group.create_task(_relay(websocket, clients, chat_session_id, body))
                else:
                    await websocket.send_json(_error(body))
        if turn is not None:
            # Nobody is left to read the reply: the model is not kept writing it.
            turn.cancel()


async def _relay(websocket: WebSocket, clients: ServiceClients, chat_session_id: str, body: ChatTurnCreate) -> None:
    call = clients.spec.StreamChatTurn(
        pb.StreamChatTurnRequest(
            chat_session_id=chat_session_id, content=body.content, chat_message_id=body.chat_message_id
        ),
        timeout=clients.llm_timeout,
    )
    try:
        async for response in call:
            await websocket.send_json(turn_event_json(response))
    except grpc.aio.AioRpcError as exc:
        await websocket.send_json(_error(problem_json(exc)))
    except WebSocketDisconnect:
        return
    finally:
        # Cancelled while a frame was being sent, the call would stay open until its deadline.
        call.cancel()


def _turn_body(frame: Message) -> ChatTurnCreate | dict[str, Any]:
    """The turn a frame asks for, or the 400 problem that the same JSON sent over HTTP gets."""
    text = frame.get("text")
    raw = text if text is not None else frame.get("bytes") or b""
    violations = frame_violations(raw)
    if violations:
        return _body(violations_problem(violations, "turn"))
    try:
        return ChatTurnCreate.model_validate_json(raw)
    except ValidationError as exc:
        return _body(validation_problem(exc.errors(), "turn"))


def _body(response: JSONResponse) -> dict[str, Any]:
    """A problem response's body: what HTTP would answer, sent as an error event instead."""
    body: dict[str, Any] = json.loads(bytes(response.body))
    return body


def _error(problem_body: dict[str, Any]) -> ChatEventJson:
    return {"type": "error", "problem": problem_body}
