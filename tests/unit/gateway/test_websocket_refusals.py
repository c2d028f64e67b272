"""Every WebSocket of the gateway refuses a malformed id, an unknown id and a malformed frame cleanly.

The rule (``api.deps``): a socket ended by a problem sends it as an ``error`` frame, then closes
with 4000 + the problem's status and its detail as the reason: 4400 a malformed id, 4404 an id
that names nothing, 4503 a service out of reach; without the API token, 4401 before any of these.
The event streams take no frames from the client: what it sends is dropped, and the stream goes
on. The chat answers a frame that is no turn with an error frame and stays open.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from starlette.testclient import TestClient, WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from crucible.agent.v1 import sprint_service_pb2 as sprint_pb
from crucible.run.v1 import run_service_pb2 as run_pb
from crucible.spec.v1 import spec_service_pb2 as spec_pb
from crucible_common.errors import NotFound
from crucible_common.inputs import NOT_UNICODE, NUL
from crucible_gateway.inputs import NOT_UTF8
from tests.unit.gateway.conftest import TOKEN, assert_websocket_refused, starlette_client
from tests.unit.gateway.fakes import (
    RUN_ID,
    SESSION_ID,
    Fakes,
    FakeStub,
    plain_error,
    rpc_error,
    run_event,
    sprint_event,
    suite_report,
    watch_events,
)

UNKNOWN_ID = "0f0e0d0c-0b0a-4908-8706-050403020100"


@dataclass(frozen=True)
class Route:
    """A WebSocket route, the service method it asks first, and a message that method streams."""

    name: str
    param: str
    stub: Callable[[Fakes], FakeStub]
    method: str
    sample: Callable[[int], Any]

    def url(self, resource_id: str) -> str:
        return f"/api/ws/{self.name}/{resource_id}"


RUNS = Route(
    "runs", "run_id", lambda f: f.runs, "WatchRun", lambda n: run_event(n, run_pb.RUN_EVENT_TYPE_PHASE_STARTED)
)
SPRINTS = Route(
    "sprints",
    "sprint_id",
    lambda f: f.sprints,
    "WatchSprint",
    lambda n: sprint_event(n, sprint_pb.SPRINT_EVENT_TYPE_PHASE_STARTED),
)
REPORTS = Route(
    "snapshot-reports", "report_id", lambda f: f.snapshots, "WatchTestReport", lambda n: watch_events(suite_report())[0]
)
CHAT = Route("chat-sessions", "chat_session_id", lambda f: f.spec, "GetChatSession", lambda n: None)

STREAMS = [pytest.param(r, id=r.name) for r in (RUNS, SPRINTS, REPORTS)]
EVERY = [*STREAMS, pytest.param(CHAT, id=CHAT.name)]


@pytest.fixture(autouse=True)
def no_error_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Whatever a client sends, the gateway logs no error and no traceback (TestClient re-raises
    an exception that escapes the app, so none does either)."""
    with caplog.at_level(logging.WARNING):
        yield
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert bad == [], [r.getMessage() for r in bad]


def closed_by(ws: WebSocketTestSession) -> tuple[list[dict[str, Any]], WebSocketDisconnect]:
    """The frames the server sends until it closes, and its close."""
    frames = []
    while True:
        try:
            frames.append(ws.receive_json())
        except WebSocketDisconnect as closed:
            return frames, closed


def assert_ended_by_problem(
    frames: list[dict[str, Any]], closed: WebSocketDisconnect, status: int, reason: str
) -> None:
    """The last frame is the problem, and the close says 4000 + its status and, as reason, its detail."""
    assert frames[-1]["type"] == "error", frames
    problem = frames[-1]["problem"]
    assert (problem["status"], problem["reason"]) == (status, reason)
    assert closed.code == 4000 + status
    assert closed.reason
    assert len(closed.reason.encode()) <= 123
    assert closed.reason == problem["detail"][: len(closed.reason)]


def methods(fakes: Fakes) -> list[str]:
    return [c.method for c in fakes.calls()]


# ---------------------------------------------------------------- ids


@pytest.mark.parametrize("route", EVERY)
def test_an_unknown_id_is_an_error_frame_and_a_close_with_4404(fakes: Fakes, route: Route) -> None:
    route.stub(fakes).fail(route.method, rpc_error(NotFound(f"{UNKNOWN_ID} not found", reason="NOT_FOUND")))

    with starlette_client(fakes) as client, client.websocket_connect(route.url(UNKNOWN_ID)) as ws:
        frames, closed = closed_by(ws)

    assert len(frames) == 1
    assert_ended_by_problem(frames, closed, 404, "NOT_FOUND")
    assert closed.reason == f"{UNKNOWN_ID} not found"
    assert methods(fakes) == [route.method]


def test_the_chat_refuses_an_unknown_session_before_reading_a_turn(fakes: Fakes) -> None:
    fakes.spec.fail("GetChatSession", rpc_error(NotFound("no such chat session", reason="CHAT_SESSION_NOT_FOUND")))

    with starlette_client(fakes) as client, client.websocket_connect(CHAT.url(UNKNOWN_ID)) as ws:
        # A client that sends its turn at once, as the web UI does, gets the refusal all the same.
        ws.send_json({"content": "hi"})
        frames, closed = closed_by(ws)

    assert_ended_by_problem(frames, closed, 404, "CHAT_SESSION_NOT_FOUND")
    assert methods(fakes) == ["GetChatSession"]
    assert fakes.spec.calls[0].request == spec_pb.GetChatSessionRequest(chat_session_id=UNKNOWN_ID)


@pytest.mark.parametrize("route", EVERY)
def test_a_service_out_of_reach_is_a_close_with_4503(fakes: Fakes, route: Route) -> None:
    route.stub(fakes).fail(route.method, plain_error(grpc.StatusCode.UNAVAILABLE, "connection refused"))

    with starlette_client(fakes) as client, client.websocket_connect(route.url(UNKNOWN_ID)) as ws:
        frames, closed = closed_by(ws)

    assert_ended_by_problem(frames, closed, 503, "UNAVAILABLE")


@pytest.mark.parametrize("route", EVERY)
@pytest.mark.parametrize(
    ("resource_id", "field"),
    [
        pytest.param("not-a-uuid", "path.{param}", id="not-a-uuid"),
        pytest.param("x" * 4000, "path.{param}", id="too-long"),
        pytest.param(RUN_ID + "0", "path.{param}", id="one-digit-too-many"),
        pytest.param("{" + RUN_ID + "}", "path.{param}", id="braced"),
        pytest.param("%C3%A9", "path.{param}", id="non-ascii"),
        pytest.param("%FF", "path.{param}", id="not-utf8"),
        pytest.param("%ED%A0%80", "path.{param}", id="surrogate"),
        pytest.param("%00", "path", id="nul"),
        pytest.param(RUN_ID + "%00", "path", id="uuid-then-nul"),
    ],
)
def test_a_malformed_id_is_refused_with_4400_before_any_service(
    fakes: Fakes, route: Route, resource_id: str, field: str
) -> None:
    with starlette_client(fakes) as client:
        assert_websocket_refused(client, route.url(resource_id), field.format(param=route.param))

    assert fakes.calls() == []


@pytest.mark.parametrize("route", EVERY)
@pytest.mark.parametrize(
    ("resource_id", "field"),
    [
        # Refused by the route's parameter validation, and by the input guard before any route.
        pytest.param("not-a-uuid", "path.{param}", id="validation"),
        pytest.param("%00", "path", id="input-guard"),
    ],
)
def test_without_the_token_a_malformed_id_is_refused_for_the_token_alone(
    fakes: Fakes, route: Route, resource_id: str, field: str
) -> None:
    # As over HTTP, a caller without the token learns nothing of what else is wrong with its request.
    with starlette_client(fakes, TOKEN) as client, client.websocket_connect(route.url(resource_id)) as ws:
        frames, closed = closed_by(ws)

    assert len(frames) == 1
    assert_ended_by_problem(frames, closed, 401, "UNAUTHORIZED")
    assert "field_violations" not in frames[0]["problem"]
    assert fakes.calls() == []

    # With the token, the same id is refused for what it is.
    with starlette_client(fakes, TOKEN) as client:
        assert_websocket_refused(client, f"{route.url(resource_id)}?token={TOKEN}", field.format(param=route.param))


@pytest.mark.parametrize("route", EVERY)
def test_a_path_no_route_matches_is_refused_at_the_handshake(fakes: Fakes, route: Route) -> None:
    # Starlette closes before accepting: a real server answers the handshake with 403.
    with starlette_client(fakes) as client, pytest.raises(WebSocketDisconnect):  # noqa: SIM117
        with client.websocket_connect(route.url(f"{RUN_ID}/more")):
            pass

    assert fakes.calls() == []


# ---------------------------------------------------------------- frames the streams do not take

GARBAGE: list[str | bytes] = [
    "not json",
    '{"content": "hi"}',
    "\x00",
    "\ud800",
    "",
    b"\xff\xfe\x00",
    b"",
    "x" * (3 * 1024 * 1024),
]


def send_garbage(ws: WebSocketTestSession) -> None:
    for frame in GARBAGE:
        if isinstance(frame, str):
            ws.send_text(frame)
        else:
            ws.send_bytes(frame)


class HeldStream:
    """A service's stream that sends one message, then waits for the test to let it go on (to send
    one more and end); records whether the gateway cancelled it. Runs in the app's thread."""

    def __init__(self, first: Any, second: Any) -> None:
        self.first, self.second = first, second
        self.cancelled = threading.Event()
        self._go_on: Callable[[], object] | None = None

    def __call__(self, request: Any, timeout: float | None = None) -> AsyncIterator[Any]:
        return self._stream()

    def go_on(self) -> None:
        """From the test's thread, once the first message has arrived."""
        assert self._go_on is not None
        self._go_on()

    async def _stream(self) -> AsyncIterator[Any]:
        loop, going_on = asyncio.get_running_loop(), asyncio.Event()
        self._go_on = lambda: loop.call_soon_threadsafe(going_on.set)
        yield self.first
        try:
            await going_on.wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        yield self.second


def held(monkeypatch: pytest.MonkeyPatch, fakes: Fakes, route: Route) -> HeldStream:
    stream = HeldStream(route.sample(1), route.sample(2))
    monkeypatch.setattr(route.stub(fakes), route.method, stream)
    return stream


@pytest.mark.parametrize("route", STREAMS)
def test_a_stream_drops_what_the_client_sends_and_goes_on(
    fakes: Fakes, route: Route, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = held(monkeypatch, fakes, route)

    with starlette_client(fakes) as client, client.websocket_connect(route.url(UNKNOWN_ID)) as ws:
        first = ws.receive_json()
        send_garbage(ws)
        stream.go_on()
        frames, closed = closed_by(ws)

    assert first["type"] != "error"
    assert [f["type"] for f in frames] == [first["type"]]
    assert closed.code == 1000
    assert not stream.cancelled.is_set()


@pytest.mark.parametrize("route", STREAMS)
def test_a_client_that_goes_away_cancels_the_stream_at_once(
    fakes: Fakes, route: Route, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = held(monkeypatch, fakes, route)

    with starlette_client(fakes) as client, client.websocket_connect(route.url(UNKNOWN_ID)) as ws:
        ws.receive_json()
        send_garbage(ws)
        ws.close(1001)
        # Seen by the gateway while it has no event to send, the session still open here: the
        # service's call ends now, not at the next event.
        assert stream.cancelled.wait(5)


@pytest.mark.parametrize("route", STREAMS)
def test_garbage_sent_to_a_stream_that_fails_still_gets_the_problem(fakes: Fakes, route: Route) -> None:
    route.stub(fakes).fail(route.method, rpc_error(NotFound("gone", reason="NOT_FOUND")))

    with starlette_client(fakes) as client, client.websocket_connect(route.url(UNKNOWN_ID)) as ws:
        send_garbage(ws)
        frames, closed = closed_by(ws)

    assert_ended_by_problem(frames, closed, 404, "NOT_FOUND")


# ---------------------------------------------------------------- frames the chat refuses


def error_then_a_good_turn(client: TestClient, send: Callable[[WebSocketTestSession], None]) -> dict[str, Any]:
    """The problem the chat answers to what ``send`` sends; then a good turn still works."""
    with client.websocket_connect(CHAT.url(SESSION_ID)) as ws:
        send(ws)
        error = ws.receive_json()
        ws.send_json({"content": "then a good one"})
        turn = [ws.receive_json()]
        while turn[-1]["type"] not in ("agent_message", "error"):
            turn.append(ws.receive_json())
    assert error["type"] == "error", error
    assert turn[-1]["type"] == "agent_message", turn
    problem: dict[str, Any] = error["problem"]
    return problem


@pytest.mark.parametrize(
    ("send", "field", "description"),
    [
        pytest.param(lambda ws: ws.send_text(""), "", None, id="empty"),
        pytest.param(lambda ws: ws.send_text("null"), "", None, id="null"),
        pytest.param(lambda ws: ws.send_text("42"), "", None, id="number"),
        pytest.param(lambda ws: ws.send_text('{"content": "hi"'), "", None, id="cut-short"),
        pytest.param(lambda ws: ws.send_text('{"content": ["hi"]}'), "content", None, id="content-a-list"),
        pytest.param(
            lambda ws: ws.send_text('{"content": "hi", "chat_message_id": "x"}'),
            "chat_message_id",
            None,
            id="bad-message-id",
        ),
        # Raw control characters are no JSON; escaped, they are JSON that no service can store.
        pytest.param(lambda ws: ws.send_text('{"content": "a\x00b"}'), "", None, id="raw-nul"),
        pytest.param(lambda ws: ws.send_text('{"content": "a\\u0000b"}'), "content", NUL, id="escaped-nul"),
        pytest.param(lambda ws: ws.send_text('{"content": "\ud800"}'), "content", NOT_UNICODE, id="raw-lone-surrogate"),
        pytest.param(lambda ws: ws.send_text("\ud800"), "", None, id="lone-surrogate-alone"),
        pytest.param(lambda ws: ws.send_bytes(b'{"content": "\xff"}'), "", NOT_UTF8, id="binary-not-utf8"),
        pytest.param(lambda ws: ws.send_bytes(b"\x00\x01\x02"), "", None, id="binary-not-json"),
        pytest.param(lambda ws: ws.send_bytes(b""), "", None, id="binary-empty"),
        pytest.param(
            lambda ws: ws.send_text(json.dumps({"content": "x" * (3 * 1024 * 1024)})), "content", None, id="oversized"
        ),
        pytest.param(lambda ws: ws.send_text("x" * (3 * 1024 * 1024)), "", None, id="oversized-not-json"),
    ],
)
def test_a_chat_frame_that_is_no_turn_is_a_400_and_the_socket_stays_open(
    fakes: Fakes, send: Callable[[WebSocketTestSession], None], field: str, description: str | None
) -> None:
    with starlette_client(fakes) as client:
        problem = error_then_a_good_turn(client, send)

    assert (problem["status"], problem["reason"]) == (400, "VALIDATION_FAILED")
    assert problem["detail"].startswith("invalid turn")
    fields = {v["field"]: v["description"] for v in problem["field_violations"]}
    assert field in fields, problem
    if description is not None:
        assert fields[field] == description
    assert "Traceback" not in json.dumps(problem)
    # Only the good turn reached the service.
    assert [c.method for c in fakes.spec.calls] == ["GetChatSession", "StreamChatTurn"]
