"""The API token (``CRUCIBLE_API_TOKEN``): whether a request or a WebSocket carries it.

Apart from ``api.deps`` because ``errors`` needs it too: a WebSocket without the token is told
only that, before anything else about its request, wherever it is refused.
"""

from __future__ import annotations

import secrets

from pydantic import SecretStr
from starlette.websockets import WebSocket

UNAUTHORIZED_DETAIL = "a valid bearer token is required"


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
