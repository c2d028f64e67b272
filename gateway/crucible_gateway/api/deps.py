"""Typed dependencies shared by the routers."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, WebSocket
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from crucible_common.settings import Settings
from crucible_gateway.clients import ServiceClients

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
        raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})


def websocket_token_ok(websocket: WebSocket) -> bool:
    """The WebSocket's version of ``require_token``: the header, or ``?token=`` for browsers."""
    settings: Settings = websocket.app.state.settings
    if settings.api_token is None:
        return True
    # Browsers cannot set headers on a WebSocket: the token may also come as ?token=.
    given = websocket.headers.get("authorization", "").removeprefix("Bearer ") or websocket.query_params.get(
        "token", ""
    )
    return token_matches(given, settings.api_token.get_secret_value())


def token_matches(given: str, expected: str) -> bool:
    # Bytes, not str: compare_digest refuses non-ASCII text, which must be a 401, not a 500.
    return secrets.compare_digest(given.encode(), expected.encode())


Clients = Annotated[ServiceClients, Depends(get_clients)]
