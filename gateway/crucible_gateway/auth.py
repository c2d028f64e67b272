"""The API token (``CRUCIBLE_API_TOKEN``): which paths need it, and whether a request or a WebSocket
carries it.

Apart from ``api.deps`` because ``errors`` and ``inputs`` need it too: a request or a WebSocket
without the token is told only that, before anything else about it, wherever it is refused.
"""

from __future__ import annotations

import secrets

from pydantic import SecretStr
from starlette.types import Scope
from starlette.websockets import WebSocket

UNAUTHORIZED_DETAIL = "a valid bearer token is required"
# Under /api, what anyone may read: the API's document and its Swagger UI.
_PUBLIC_API = ("/api/openapi.json", "/api/docs")


def requires_token(path: str) -> bool:
    """Whether the path is one the token guards: every /api route (the WebSockets included) but the
    API's document and docs, and /mcp. ``tests/unit/gateway/test_auth.py`` holds this to the routes."""
    if path == "/mcp":
        return True
    if not path.startswith("/api/"):
        return False
    return not any(path == public or path.startswith(public + "/") for public in _PUBLIC_API)


def token_matches(given: str, expected: str) -> bool:
    # Bytes, not str: compare_digest refuses non-ASCII text, which must be a 401, not a 500.
    return secrets.compare_digest(given.encode(), expected.encode())


def websocket_token_ok(websocket: WebSocket, token: SecretStr | None) -> bool:
    """The WebSocket's version of ``api.deps.require_token``: the header, or ``?token=`` for browsers.
    ``token``: the configured one (``Settings.api_token``); None lets every socket through."""
    if token is None:
        return True
    # Browsers cannot set headers on a WebSocket: the token may also come as ?token=.
    given = websocket.headers.get("authorization", "").removeprefix("Bearer ") or websocket.query_params.get(
        "token", ""
    )
    return token_matches(given, token.get_secret_value())


def request_token_ok(scope: Scope, token: SecretStr | None) -> bool:
    """Whether an HTTP request carries ``Authorization: Bearer <token>``, as ``api.deps.require_token``
    reads it; ``token``: the configured one (``Settings.api_token``); None lets every request through."""
    if token is None:
        return True
    header = next((value for name, value in scope["headers"] if name == b"authorization"), b"")
    scheme, _, given = header.decode("latin-1").partition(" ")
    return scheme.lower() == "bearer" and token_matches(given, token.get_secret_value())
