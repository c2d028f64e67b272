"""Slow clients are cut off: headers that never end, a body shorter than its Content-Length."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import uvicorn
from fastapi import Request
from starlette.types import Message, Receive, Scope, Send
from uvicorn.server import ServerState

from crucible_gateway.slow_clients import http_protocol
from tests.unit.gateway.conftest import build_app
from tests.unit.gateway.fakes import PROJECT_ID, Fakes

# ---------------------------------------------------------------- the body


async def _never() -> Message:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def _trickle(first: bytes) -> Any:
    """A receive that gives the first part of a body, then nothing more, ever (the client stalled)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": first, "more_body": True}
        return await _never()

    return receive


async def _call(
    app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], receive: Receive
) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "server": ("gateway", 80),
        "client": ("127.0.0.1", 5000),
        "state": {},
    }
    await app(scope, receive, send)
    return sent


def _timed_out(sent: list[Message]) -> dict[str, Any]:
    start = sent[0]
    assert start["type"] == "http.response.start"
    assert start["status"] == 408
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    assert (body["status"], body["reason"]) == (408, "REQUEST_TIMEOUT")
    return body


async def test_a_json_body_shorter_than_its_length_is_cut_off(fakes: Fakes) -> None:
    app, fastapi = build_app(fakes, gateway_body_timeout_seconds=0.01)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"100")]

    async with fastapi.router.lifespan_context(fastapi):
        sent = await _call(app, "POST", "/api/projects", headers, _trickle(b'{"title": '))

    assert "did not arrive within" in _timed_out(sent)["detail"]
    assert fakes.calls() == []


async def test_a_body_a_route_reads_itself_is_cut_off_too(fakes: Fakes) -> None:
    # Not JSON, so no middleware reads it first: the route's own read times out, as a 408 all the
    # same. (The API refuses a body that is not JSON before reading it, a 415: the route here is
    # outside it, as the MCP endpoint is.)
    app, fastapi = build_app(fakes, gateway_body_timeout_seconds=0.01)

    @fastapi.post("/probe")
    async def probe(request: Request) -> dict[str, int]:
        return {"read": len(await request.body())}

    headers = [(b"content-type", b"text/plain"), (b"content-length", b"100")]

    async with fastapi.router.lifespan_context(fastapi):
        sent = await _call(app, "POST", "/probe", headers, _trickle(b"title"))

    _timed_out(sent)
    assert fakes.calls() == []


async def test_a_chunked_body_that_stalls_is_cut_off(fakes: Fakes) -> None:
    app, fastapi = build_app(fakes, gateway_body_timeout_seconds=0.01)
    headers = [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")]

    async with fastapi.router.lifespan_context(fastapi):
        sent = await _call(app, "POST", "/api/projects", headers, _trickle(b'{"ti'))

    _timed_out(sent)


async def test_after_the_whole_body_reads_wait_as_long_as_they_need(fakes: Fakes) -> None:
    """Only the body is timed: a read for a disconnect, after it, is not cut off."""
    app, fastapi = build_app(fakes, gateway_body_timeout_seconds=0.01)
    body = json.dumps({"model_data": {}}).encode()
    parts: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Message:
        if parts:
            return parts.pop(0)
        # Past the deadline: the application listening for a disconnect gets it, not a timeout.
        await asyncio.sleep(0.05)
        return {"type": "http.disconnect"}

    async with fastapi.router.lifespan_context(fastapi):
        sent = await _call(
            app, "PUT", f"/api/projects/{PROJECT_ID}/world-model", [(b"content-type", b"application/json")], receive
        )

    assert sent[0]["status"] == 200


# ---------------------------------------------------------------- the headers


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = asyncio.Event()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 5000)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closed.set()

    def is_closing(self) -> bool:
        return self.closed.is_set()

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _connect(header_timeout: float) -> tuple[Any, FakeTransport]:
    config = uvicorn.Config(_ok, http=http_protocol(header_timeout), lifespan="off", log_config=None)
    config.load()
    protocol = config.http_protocol_class(  # type: ignore[call-arg]
        config=config, server_state=ServerState(), app_state={}
    )
    transport = FakeTransport()
    protocol.connection_made(transport)
    return protocol, transport


def _answer_of(transport: FakeTransport) -> tuple[str, dict[str, Any]]:
    head, _, body = transport.written.partition(b"\r\n\r\n")
    return head.decode().splitlines()[0], json.loads(body)


async def test_headers_that_never_end_get_a_408_and_the_connection_closed() -> None:
    protocol, transport = _connect(header_timeout=0.01)

    protocol.data_received(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Slow: ")
    await transport.closed.wait()

    status, problem = _answer_of(transport)
    assert status == "HTTP/1.1 408 Request Timeout"
    assert (problem["status"], problem["reason"]) == (408, "REQUEST_TIMEOUT")
    assert b"connection: close" in transport.written


async def test_a_connection_that_sends_nothing_is_closed_too() -> None:
    _, transport = _connect(header_timeout=0.01)

    await transport.closed.wait()

    assert _answer_of(transport)[0] == "HTTP/1.1 408 Request Timeout"


async def test_headers_that_arrive_stop_the_clock() -> None:
    protocol, _ = _connect(header_timeout=3600)
    timer = protocol._header_timer
    assert timer is not None

    protocol.data_received(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")

    assert timer.cancelled()
    assert protocol._header_timer is None
    protocol.connection_lost(None)
