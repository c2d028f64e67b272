"""Turns with the Architect: POST /api/chat-sessions/{id}/turns and the WebSocket that streams them."""

from __future__ import annotations

from typing import Any, cast

import httpx
import pytest
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from crucible.spec.v1 import spec_service_pb2 as spec_pb
from crucible_common.errors import FailedPrecondition, NotFound
from tests.unit.gateway.conftest import TOKEN, assert_problem, assert_refused, serve, starlette_client
from tests.unit.gateway.fakes import MESSAGE_ID, SESSION_ID, Call, Fakes, FakeTurn, rpc_error, turn_events

TURNS = f"/api/chat-sessions/{SESSION_ID}/turns"
WS = f"/api/ws/chat-sessions/{SESSION_ID}"
USER_MESSAGE = {
    "id": MESSAGE_ID,
    "chat_session_id": SESSION_ID,
    "sequence": 4,
    "role": "user",
    "content": "Run it",
    "metadata": {},
    "created_at": "2025-01-02T03:04:05Z",
}


# ---------------------------------------------------------------- POST …/turns


async def test_a_turn_answers_both_stored_messages(fakes: Fakes, http: httpx.AsyncClient) -> None:
    response = await http.post(TURNS, json={"content": "Run it", "chat_message_id": MESSAGE_ID})

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["user_message"] == USER_MESSAGE
    assert (body["agent_message"]["role"], body["agent_message"]["content"]) == ("agent", "Hello")
    assert body["agent_message"]["metadata"] == {"architect": {"intent": "question"}}
    call = fakes.spec.only_call()
    assert call.request == spec_pb.CreateChatTurnRequest(
        chat_session_id=SESSION_ID, content="Run it", chat_message_id=MESSAGE_ID
    )
    # The Architect's model call takes longer than a plain read.
    assert call.timeout == 900.0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({}, "content", id="no-content"),
        pytest.param({"content": 5}, "content", id="content-not-text"),
        pytest.param({"content": "x", "role": "agent"}, "role", id="unknown-field"),
        pytest.param({"content": "x", "chat_message_id": None}, "chat_message_id", id="null-id"),
    ],
)
async def test_an_invalid_turn_is_refused_before_the_service(
    fakes: Fakes, http: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    assert_refused(await http.post(TURNS, json=body), fakes, field)


async def test_a_failed_turn_is_the_services_problem(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fakes.spec.fail("CreateChatTurn", rpc_error(NotFound("no such chat session", reason="CHAT_SESSION_NOT_FOUND")))

    assert_problem(await http.post(TURNS, json={"content": "hi"}), 404, "CHAT_SESSION_NOT_FOUND")


async def test_turns_need_the_token_when_one_is_set(fakes: Fakes) -> None:
    async with serve(fakes, TOKEN) as http:
        assert_problem(await http.post(TURNS, json={"content": "hi"}), 401, "UNAUTHORIZED")

    assert fakes.calls() == []


# ---------------------------------------------------------------- the WebSocket


def receive_turn(ws: WebSocketTestSession) -> list[dict[str, Any]]:
    """The events of one turn, up to its agent message or error."""
    events = [ws.receive_json()]
    while events[-1]["type"] not in ("agent_message", "error"):
        events.append(ws.receive_json())
    return events


def turns_sent(fakes: Fakes) -> list[str]:
    """The content of each turn the spec service was asked to stream (the socket's lookup of its session aside)."""
    return [cast(spec_pb.StreamChatTurnRequest, c.request).content for c in turn_calls(fakes)]


def turn_calls(fakes: Fakes) -> list[Call]:
    return [c for c in fakes.spec.calls if c.method == "StreamChatTurn"]


def test_the_websocket_relays_a_turns_events_in_order(fakes: Fakes) -> None:
    fakes.spec.turns = [FakeTurn(turn_events("I can", None, "I cannot", " start runs", reply="I cannot start runs"))]

    with starlette_client(fakes) as client, client.websocket_connect(WS) as ws:
        ws.send_json({"content": "Run it", "chat_message_id": MESSAGE_ID})
        events = receive_turn(ws)

    assert events[0] == {"type": "user_message", "message": USER_MESSAGE}
    assert events[1:-1] == [
        {"type": "reply.delta", "text": "I can", "restart": False},
        {"type": "reply.delta", "text": "", "restart": True},
        {"type": "reply.delta", "text": "I cannot", "restart": False},
        {"type": "reply.delta", "text": " start runs", "restart": False},
    ]
    assert events[-1]["type"] == "agent_message"
    assert events[-1]["message"]["content"] == "I cannot start runs"
    (call,) = turn_calls(fakes)
    assert call.request == spec_pb.StreamChatTurnRequest(
        chat_session_id=SESSION_ID, content="Run it", chat_message_id=MESSAGE_ID
    )
    assert call.timeout == 900.0


async def test_its_messages_have_the_shape_of_the_rest_apis(fakes: Fakes, http: httpx.AsyncClient) -> None:
    posted = (await http.post(TURNS, json={"content": "Run it"})).json()

    with starlette_client(fakes) as client, client.websocket_connect(WS) as ws:
        ws.send_json({"content": "Run it"})
        events = receive_turn(ws)

    assert [events[0]["message"], events[-1]["message"]] == [posted["user_message"], posted["agent_message"]]


def test_a_turn_that_fails_midway_leaves_the_socket_usable(fakes: Fakes) -> None:
    broken = rpc_error(FailedPrecondition("the model did not answer", reason="ARCHITECT_FAILED"))
    fakes.spec.turns = [FakeTurn(turn_events("Hel")[:2], failure=broken), FakeTurn()]

    with starlette_client(fakes) as client, client.websocket_connect(WS) as ws:
        ws.send_json({"content": "first"})
        first = receive_turn(ws)
        ws.send_json({"content": "second"})
        second = receive_turn(ws)

    assert [e["type"] for e in first] == ["user_message", "reply.delta", "error"]
    problem = first[-1]["problem"]
    assert (problem["status"], problem["reason"], problem["detail"]) == (
        412,
        "ARCHITECT_FAILED",
        "the model did not answer",
    )
    assert [e["type"] for e in second] == ["user_message", "reply.delta", "reply.delta", "agent_message"]
    assert turns_sent(fakes) == ["first", "second"]


def test_a_turn_refused_at_once_is_an_error_event(fakes: Fakes) -> None:
    fakes.spec.fail("StreamChatTurn", rpc_error(NotFound("no such chat session", reason="CHAT_SESSION_NOT_FOUND")))

    with starlette_client(fakes) as client, client.websocket_connect(WS) as ws:
        ws.send_json({"content": "hi"})
        (error,) = receive_turn(ws)

    assert (error["problem"]["status"], error["problem"]["reason"]) == (404, "CHAT_SESSION_NOT_FOUND")


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        pytest.param("run it", "", id="not-json"),
        pytest.param('["run it"]', "", id="not-an-object"),
        pytest.param("{}", "content", id="no-content"),
        pytest.param('{"content": 1}', "content", id="content-not-text"),
        pytest.param('{"content": "x", "mode": "fast"}', "mode", id="unknown-field"),
    ],
)
def test_a_bad_frame_is_an_error_event_and_the_socket_stays_open(fakes: Fakes, frame: str, field: str) -> None:
    with starlette_client(fakes) as client, client.websocket_connect(WS) as ws:
        ws.send_text(frame)
        (error,) = receive_turn(ws)
        ws.send_json({"content": "then a good one"})
        turn = receive_turn(ws)

    problem = error["problem"]
    assert (problem["status"], problem["reason"]) == (400, "VALIDATION_FAILED")
    assert problem["detail"].startswith("invalid turn: ")
    assert field in [v["field"] for v in problem["field_violations"]]
    assert turn[-1]["type"] == "agent_message"
    assert turns_sent(fakes) == ["then a good one"]


def test_a_binary_frame_of_json_is_a_turn(fakes: Fakes) -> None:
    with starlette_client(fakes) as client, client.websocket_connect(WS) as ws:
        ws.send_bytes(b'{"content": "hi"}')
        turn = receive_turn(ws)

    assert turn[-1]["type"] == "agent_message"


def test_a_frame_sent_while_a_turn_is_answered_is_refused(fakes: Fakes) -> None:
    fakes.spec.turns = [FakeTurn(turn_events()[:1], hold=True)]

    with starlette_client(fakes) as client, client.websocket_connect(WS) as ws:
        ws.send_json({"content": "first"})
        assert ws.receive_json()["type"] == "user_message"
        ws.send_json({"content": "too soon"})
        refused = ws.receive_json()

    assert refused["type"] == "error"
    assert (refused["problem"]["status"], refused["problem"]["reason"]) == (409, "TURN_IN_PROGRESS")
    assert turns_sent(fakes) == ["first"]


def test_a_client_that_goes_away_cancels_the_turn_in_flight(fakes: Fakes) -> None:
    fakes.spec.turns = [FakeTurn(turn_events()[:1], hold=True)]

    with starlette_client(fakes) as client, client.websocket_connect(WS) as ws:
        ws.send_json({"content": "long question"})
        assert ws.receive_json()["type"] == "user_message"

    (stream,) = fakes.spec.streams
    assert stream.cancelled


def test_a_finished_turn_is_not_cancelled(fakes: Fakes) -> None:
    with starlette_client(fakes) as client, client.websocket_connect(WS) as ws:
        ws.send_json({"content": "hi"})
        receive_turn(ws)

    (stream,) = fakes.spec.streams
    assert stream.finished
    assert not stream.cancelled


def test_the_websocket_needs_the_token_when_one_is_set(fakes: Fakes) -> None:
    with starlette_client(fakes, TOKEN) as client, client.websocket_connect(WS) as ws:
        error = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()

    assert error["problem"]["status"] == 401

    assert closed.value.code == 4401
    assert fakes.calls() == []

    for connect in (
        {"url": f"{WS}?token={TOKEN}"},
        {"url": WS, "headers": {"Authorization": f"Bearer {TOKEN}"}},
    ):
        with starlette_client(fakes, TOKEN) as client, client.websocket_connect(**connect) as ws:
            ws.send_json({"content": "hi"})
            assert receive_turn(ws)[-1]["type"] == "agent_message"
