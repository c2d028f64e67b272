"""Typed dependencies shared by the routers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, Callable, Mapping
from typing import Annotated, Any, TypeVar

import grpc
from fastapi import Depends, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from crucible_common.settings import Settings
from crucible_gateway.auth import UNAUTHORIZED_DETAIL, token_matches, websocket_token_ok
from crucible_gateway.clients import ServiceClients
from crucible_gateway.errors import end_with_problem, problem_body, problem_json, unauthorized

M = TypeVar("M")

_bearer = HTTPBearer(auto_error=False)


# Async on purpose: FastAPI runs a plain `def` dependency in a worker thread, per request.
async def get_clients(request: Request) -> ServiceClients:
    clients: ServiceClients = request.app.state.clients
    return clients


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def require_token(
    settings: Annotated[Settings, Depends(get_settings)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """With CRUCIBLE_API_TOKEN set, every /api call needs ``Authorization: Bearer <token>``."""
    if settings.api_token is None:
        return
    expected = settings.api_token.get_secret_value()
    if credentials is None or not token_matches(credentials.credentials, expected):
        raise HTTPException(401, UNAUTHORIZED_DETAIL, headers={"WWW-Authenticate": "Bearer"})


async def refused_without_token(websocket: WebSocket) -> bool:
    """Refuse a WebSocket without the token (``auth.websocket_token_ok``) as any other problem ends
    one: accepted, an ``error`` frame of status 401, then 4401. True when it was refused."""
    settings: Settings = websocket.app.state.settings
    if websocket_token_ok(websocket, settings.api_token):
        return False
    await end_with_problem(websocket, problem_body(unauthorized()))
    return True


Clients = Annotated[ServiceClients, Depends(get_clients)]


# ---------------------------------------------------------------- WebSockets: how one ends
#
# A WebSocket that ends in a problem sends it first, as an ``error`` frame (the body HTTP would
# answer), then closes with code 4000 + the problem's status (``errors.end_with_problem``): 4400 a
# malformed id or query (``errors.refuse_websocket``), 4404 an id that names nothing, 4503 a service
# out of reach, 4401 a missing token (``refused_without_token``; checked before all the others), ...
# A stream that has ended closes with 1000.


async def relay_stream(websocket: WebSocket, stream: AsyncIterable[M], frame: Callable[[M], Mapping[str, Any]]) -> None:
    """Accept, and send each of a service's streamed messages as a JSON frame; close with 1000 when
    the stream ends, or ``end_with_problem`` when it fails (a stream of an unknown id fails at once
    with NOT_FOUND: 4404).

    These sockets carry nothing from the client: whatever it sends (text, binary, garbage) is read
    and dropped, and neither ends nor disturbs the stream. Reading them is how a client that goes
    away is seen at once, not at the next event: its going cancels the service's call.
    """
    await websocket.accept()
    try:
        async with asyncio.TaskGroup() as group:
            sending = group.create_task(_send_each(websocket, stream, frame))
            listening = group.create_task(_until_gone(websocket))
            # Whichever ends first ends the other.
            sending.add_done_callback(lambda _: listening.cancel())
            listening.add_done_callback(lambda _: sending.cancel())
    finally:
        # Cancelled while a frame was being sent (or before the first was read), the call would
        # stay open until it is collected. A call that has ended ignores this.
        if isinstance(stream, grpc.aio.Call):
            stream.cancel()


async def _send_each(websocket: WebSocket, stream: AsyncIterable[M], frame: Callable[[M], Mapping[str, Any]]) -> None:
    try:
        async for message in stream:
            await websocket.send_json(frame(message))
    except grpc.aio.AioRpcError as exc:
        await end_with_problem(websocket, problem_json(exc))
        return
    except WebSocketDisconnect:
        return
    with contextlib.suppress(WebSocketDisconnect):
        await websocket.close()


async def _until_gone(websocket: WebSocket) -> None:
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass  # A frame from the client: these sockets take none, and drop it.
