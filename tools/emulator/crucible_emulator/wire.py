"""What both provider protocols offer the HTTP layer, and helpers they share."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, Literal, Protocol

from starlette.datastructures import Headers
from starlette.responses import JSONResponse

from crucible_emulator.config import Provider
from crucible_emulator.conversation import InvalidRequest, JsonObject, ModelAnswer, ModelRequest

# A word with the space before it, or the space that ends a text.
_WORDS = re.compile(r"\s*\S+|\s+")

ErrorKind = Literal["invalid_request", "authentication", "not_found", "rate_limit", "server"]


class WireProtocol(Protocol):
    provider: Provider

    def authenticated(self, headers: Headers) -> bool: ...

    def parse(self, body: Any) -> ModelRequest: ...

    def render(self, request: ModelRequest, answer: ModelAnswer, usage: tuple[int, int]) -> JsonObject: ...

    def stream(self, request: ModelRequest, rendered: JsonObject) -> list[str]:
        """The answer ``render`` gave, as the server-sent events of a streamed one."""
        ...

    def error(self, kind: ErrorKind, message: str, param: str | None = None) -> JSONResponse: ...


def pieces(text: str, size: int = 16) -> list[str]:
    """``text`` in pieces of a few words each, as a model writes it; joined, they are ``text`` again."""
    result: list[str] = []
    current = ""
    for word in _WORDS.findall(text):
        current += word
        if len(current) >= size:
            result.append(current)
            current = ""
    if current:
        result.append(current)
    return result


def event(data: JsonObject | str, name: str | None = None) -> str:
    """One server-sent event; ``data`` as JSON unless it is already text."""
    line = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"event: {name}\ndata: {line}\n\n" if name else f"data: {line}\n\n"


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + uuid.uuid4().hex[:length]


def require(condition: bool, message: str, param: str | None = None) -> None:
    if not condition:
        raise InvalidRequest(message, param)


def optional_number(body: JsonObject, key: str, low: float, high: float) -> None:
    value = body.get(key)
    if value is None:
        return
    require(
        isinstance(value, int | float) and not isinstance(value, bool) and low <= value <= high,
        f"Invalid '{key}': expected a number between {low} and {high}, got {value!r}.",
        key,
    )


def positive_int(value: Any, key: str) -> int:
    require(
        isinstance(value, int) and not isinstance(value, bool) and value >= 1,
        f"Invalid '{key}': expected an integer >= 1, got {value!r}.",
        key,
    )
    return int(value)
