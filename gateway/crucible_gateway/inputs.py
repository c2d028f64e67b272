"""The gateway's side of ``crucible_common.inputs``: what no path, query or JSON body may carry.

``InputGuard`` sees every request before any route does, so a route (or a mount, or the UI's
catch-all) never meets a NUL character, an unpaired surrogate, a NaN or JSON nested too deep: such a
request is a 400 problem naming the field (``path.<param>``, ``query.<name>``, or the body's field,
as request validation names them), and a WebSocket is closed with code 4400 after an ``error``
frame carrying the same problem. Where the path needs the API token, a request without it is
told only that (401, or 4401), whatever else is wrong with it. WebSocket frames are checked by
their route, with ``frame_violations``.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from email.message import Message as MimeHeader
from typing import Any

from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from crucible_common.errors import FieldViolation
from crucible_common.inputs import NOT_EXACT, TOO_DEEP, json_violations, text_problem
from crucible_gateway import errors
from crucible_gateway.auth import request_token_ok, requires_token
from crucible_gateway.openapi import match_path

NOT_UTF8 = "must be UTF-8 encoded JSON"


def json_body_violations(raw: bytes | str) -> list[FieldViolation]:
    """What a JSON document carries that no service can store; [] for one that does not parse
    (the route's own validation names that, as it always has)."""
    return _json_body(raw)[0]


def _json_body(raw: bytes | str) -> tuple[list[FieldViolation], bool]:
    """``json_body_violations``, and whether the document parses."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        return [FieldViolation("", NOT_UTF8)], False
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return [], False
    except RecursionError:
        # Deeper than the parser's own stack: far past the limit.
        return [FieldViolation("", TOO_DEEP)], False
    except ValueError:
        # Python's guard against quadratic int parsing: a number of more than 4,300 digits.
        return [FieldViolation("", NOT_EXACT)], False
    return json_violations(value), True


# A WebSocket frame is a JSON document like a body.
frame_violations = json_body_violations


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            header = MimeHeader()
            header["content-type"] = value.decode("latin-1")
            subtype = header.get_content_subtype()
            return header.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))
    return False


def _says_other_than_json(scope: Scope) -> bool:
    """A body sent to the API not as JSON: under another media type (``curl -d`` sends a form's), or
    under none. The route would read it as a string and answer that it is no object."""
    headers = dict(scope["headers"])
    return (
        scope["path"].startswith("/api/")
        and declares_body(scope)
        and headers.get(b"content-length", b"").strip() != b"0"
        and not _is_json(scope)
    )


def declares_body(scope: Scope) -> bool:
    """Whether an HTTP request has a body: HTTP/1.1 says one comes only with a Content-Length or a
    Transfer-Encoding. A GET has neither, so what guards a body can step aside for it."""
    return any(name in (b"content-length", b"transfer-encoding") for name, _ in scope["headers"])


class InputGuard:
    """Refuses requests whose path, query string or JSON body carries text no service can store."""

    def __init__(self, app: ASGIApp, openapi: Callable[[], dict[str, Any]], api_token: SecretStr | None) -> None:
        self.app = app
        # The API's document, only to name the path parameter that carries refused text.
        self._openapi = openapi
        # A request or a WebSocket without the token is refused for that alone (``auth``).
        self._api_token = api_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        violations = self._path_violations(scope) + _query_violations(scope)
        if violations and scope["type"] == "websocket":
            await errors.refuse_websocket(
                WebSocket(scope, receive, send), errors.violations_problem(violations, "request"), self._api_token
            )
            return
        parses = True
        if not violations and scope["type"] == "http" and _is_json(scope):
            body, receive = await _read_body(receive)
            if body is None:
                # The client went away while sending: the application sees that as it is.
                await self.app(scope, receive, send)
                return
            violations, parses = _json_body(body)
        if not violations and scope["type"] == "http" and _says_other_than_json(scope):
            if self._unauthorized(scope):
                await errors.unauthorized()(scope, receive, send)
                return
            await errors.problem(
                415, "the API reads JSON bodies: send one with Content-Type: application/json", reason="NOT_JSON"
            )(scope, receive, send)
            return
        if (violations or not parses) and self._unauthorized(scope):
            # As for a WebSocket: a caller without the token learns nothing else about its request.
            # (A body that does not parse is refused by the route before its token is checked.)
            await errors.unauthorized()(scope, receive, send)
            return
        if violations:
            await errors.violations_problem(violations, "request")(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _unauthorized(self, scope: Scope) -> bool:
        return requires_token(scope["path"]) and not request_token_ok(scope, self._api_token)

    def _path_violations(self, scope: Scope) -> list[FieldViolation]:
        problem = text_problem(scope["path"])
        if problem is None:
            return []
        # Named as request validation names a parameter, where the path is one the document knows.
        documented = match_path(self._openapi(), scope["path"])
        named = [
            FieldViolation(f"path.{name}", found)
            for name, value in (documented.params if documented else {}).items()
            if (found := text_problem(value)) is not None
        ]
        return named or [FieldViolation("path", problem)]


def _query_violations(scope: Scope) -> list[FieldViolation]:
    # Decoded as Starlette decodes it for the routes (percent escapes as UTF-8), so the same text is judged.
    query = scope.get("query_string", b"").decode("latin-1")
    found: list[FieldViolation] = []
    for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        name_problem = text_problem(name)
        if name_problem is not None:
            found.append(FieldViolation(f"query.{name!a}", f"name {name_problem}"))
        elif (problem := text_problem(value)) is not None:
            found.append(FieldViolation(f"query.{name}", problem))
    return found


async def _read_body(receive: Receive) -> tuple[bytes | None, Receive]:
    """The whole body (None when the client left first), and a receive that gives it again."""
    chunks: list[bytes] = []
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None, _replay(messages, receive)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    whole: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
    return whole["body"], _replay([whole], receive)


def _replay(messages: list[Message], then: Receive) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        return pending.pop(0) if pending else await then()

    return receive
