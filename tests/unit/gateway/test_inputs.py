"""Text no service can store (NUL, unpaired surrogates) and JSON nested too deep are refused by the
gateway itself, in every place a request carries text: body, query, path, WebSocket frame."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from crucible_common.inputs import MAX_JSON_DEPTH, NOT_EXACT, NOT_FINITE, NOT_UNICODE, NUL, TOO_DEEP
from tests.unit.gateway.conftest import assert_problem, assert_refused, assert_websocket_refused, starlette_client
from tests.unit.gateway.fakes import PROJECT_ID, RUN_ID, SESSION_ID, SPRINT_ID, Fakes

JSON = {"content-type": "application/json"}


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def violation(response: httpx.Response, field: str) -> str:
    """The description of the one violation of ``field``."""
    (description,) = [v["description"] for v in response.json()["field_violations"] if v["field"] == field]
    return str(description)


# Raw JSON text, so that escapes reach the gateway exactly as a client wrote them.
BODIES = [
    pytest.param("POST", "/api/projects", '{"title": "a\\u0000b"}', "title", NUL, id="nul-in-a-title"),
    pytest.param("POST", "/api/projects", '{"title": "\\ud800"}', "title", NOT_UNICODE, id="lone-surrogate"),
    pytest.param("POST", "/api/projects", '{"title": "\\udfff x"}', "title", NOT_UNICODE, id="lone-low-surrogate"),
    pytest.param(
        "POST",
        f"/api/chat-sessions/{SESSION_ID}/messages",
        '{"role": "user", "content": "hi", "metadata": {"k": ["ok", "\\u0000"]}}',
        "metadata.k[1]",
        NUL,
        id="nul-in-metadata",
    ),
    pytest.param(
        "POST",
        f"/api/chat-sessions/{SESSION_ID}/messages",
        '{"role": "user", "content": "hi", "metadata": {"\\u0000": 1}}',
        "metadata.'\\x00'",
        f"key {NUL}",
        id="nul-in-a-key",
    ),
    pytest.param(
        "POST",
        "/api/runs",
        json.dumps({"project_id": PROJECT_ID, "mode": "full_search", "ui_trigger_id": "t\x00"}),
        "ui_trigger_id",
        NUL,
        id="nul-in-a-trigger-id",
    ),
    pytest.param(
        "PUT",
        f"/api/projects/{PROJECT_ID}/world-model",
        json.dumps({"model_data": {"actors": [nested(MAX_JSON_DEPTH - 2)]}}),
        "model_data.actors[0]" + ".a" * (MAX_JSON_DEPTH - 3),
        TOO_DEEP,
        id="model-data-too-deep",
    ),
    pytest.param("POST", "/api/projects", "[" * 100_000 + "]" * 100_000, "", TOO_DEEP, id="past-the-parser"),
    pytest.param(
        "POST",
        f"/api/chat-sessions/{SESSION_ID}/messages",
        '{"role": "user", "content": "hi", "metadata": {"x": [NaN, -Infinity]}}',
        "metadata.x[1]",
        NOT_FINITE,
        id="not-finite",
    ),
    pytest.param("POST", "/api/projects", b'{"title": "\xff"}', "", "must be UTF-8 encoded JSON", id="not-utf8"),
    pytest.param(
        "POST",
        "/api/runs",
        json.dumps({"project_id": PROJECT_ID, "ui_trigger_id": "t", "ui_trigger_metadata": {"n": 2**53 + 1}}),
        "ui_trigger_metadata.n",
        NOT_EXACT,
        id="past-exact-integers",
    ),
    pytest.param(
        "POST",
        "/api/runs",
        json.dumps({"project_id": PROJECT_ID, "ui_trigger_id": "t", "ui_trigger_metadata": {"n": 0}})[:-3]
        + "1" * 5000
        + "}}",
        "",
        NOT_EXACT,
        id="past-the-int-parser",
    ),
]


@pytest.mark.parametrize(("method", "url", "body", "field", "description"), BODIES)
async def test_a_body_that_cannot_be_stored_is_refused_naming_the_field(
    fakes: Fakes, http: httpx.AsyncClient, method: str, url: str, body: str | bytes, field: str, description: str
) -> None:
    response = await http.request(method, url, content=body, headers=JSON)

    assert_refused(response, fakes, field)
    assert violation(response, field) == description


@pytest.mark.parametrize("body", ['{"title": "a",', "{", "title=a"])
async def test_a_body_that_is_no_json_is_refused_saying_what_is_wrong_and_where(
    fakes: Fakes, http: httpx.AsyncClient, body: str
) -> None:
    response = await http.post("/api/projects", content=body, headers=JSON)

    # The whole body is at fault: no field is named (FastAPI's location read as a field "1").
    assert_refused(response, fakes, "")
    assert violation(response, "").startswith("not valid JSON: ")
    assert "(at character " in violation(response, "")
    assert response.json()["detail"].startswith("invalid request: not valid JSON: ")


@pytest.mark.parametrize("media_type", ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data"])
async def test_a_body_sent_as_another_media_type_is_a_415_saying_what_to_send(
    fakes: Fakes, http: httpx.AsyncClient, media_type: str
) -> None:
    """``curl -d '{"title": "a"}'`` sends a form's type: not "Input should be a valid dictionary"."""
    response = await http.post("/api/projects", content='{"title": "a"}', headers={"content-type": media_type})

    body = assert_problem(response, 415, "NOT_JSON")
    assert "Content-Type: application/json" in str(body["detail"])
    assert fakes.calls() == []


async def test_a_body_without_a_media_type_is_a_415_and_an_empty_one_is_no_body(
    fakes: Fakes, http: httpx.AsyncClient
) -> None:
    bare = await http.post("/api/projects", content='{"title": "a"}')
    cancel = await http.post(f"/api/runs/{RUN_ID}/cancel")

    assert "content-type" not in bare.request.headers
    assert_problem(bare, 415, "NOT_JSON")
    # A POST without a body (content-length: 0) is not asked for a media type.
    assert cancel.status_code == 200, cancel.text


async def test_json_at_the_depth_limit_passes(fakes: Fakes, http: httpx.AsyncClient) -> None:
    # The body is level 1, model_data level 2, the actors list level 3.
    body = {"model_data": {"actors": [nested(MAX_JSON_DEPTH - 3)]}}

    response = await http.put(f"/api/projects/{PROJECT_ID}/world-model", json=body)

    assert response.status_code == 200, response.text
    assert [c.method for c in fakes.calls()] == ["UpdateWorldModel"]


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/usage?purpose=%00", "query.purpose"),
        ("/api/snapshots?name=a%00b", "query.name"),
        ("/api/projects/%00", "path.project_id"),
        (f"/api/runs/{RUN_ID}%00/results", "path.run_id"),
        # Where no documented path matches, the URL's path as a whole is named.
        (f"/api/sprints/{SPRINT_ID}/artifacts/src/a%00.py", "path"),
        # The web UI's catch-all route (a file lookup) never sees it either.
        ("/a%00b", "path"),
        ("/assets/a%00b", "path"),
    ],
)
async def test_a_nul_in_the_url_is_refused_naming_the_parameter(
    fakes: Fakes, http: httpx.AsyncClient, url: str, field: str
) -> None:
    response = await http.get(url)

    assert_refused(response, fakes, field)
    assert violation(response, field) == NUL


def test_a_websocket_whose_url_carries_a_nul_is_closed_naming_the_parameter(fakes: Fakes) -> None:
    with starlette_client(fakes) as client:
        assert_websocket_refused(client, f"/api/ws/runs/{RUN_ID}?after=1&x=%00", "query.x")
        assert_websocket_refused(client, "/api/ws/sprints/%00", "path")

    assert fakes.calls() == []


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/ws/runs/not-a-uuid", "path.run_id"),
        (f"/api/ws/runs/{RUN_ID}?after=18446744073709551616", "query.after"),
        (f"/api/ws/runs/{RUN_ID}?after=1.0", "query.after"),
        ("/api/ws/sprints/42", "path.sprint_id"),
        ("/api/ws/chat-sessions/x", "path.chat_session_id"),
        ("/api/ws/snapshot-reports/x", "path.report_id"),
    ],
)
def test_every_websocket_parameter_is_checked_like_a_query_parameter(fakes: Fakes, url: str, field: str) -> None:
    with starlette_client(fakes) as client:
        assert_websocket_refused(client, url, field)

    assert fakes.calls() == []


@pytest.mark.parametrize(
    ("frame", "field", "description"),
    [
        ('{"content": "a\\u0000"}', "content", NUL),
        ('{"content": "\\ud800"}', "content", NOT_UNICODE),
        (json.dumps({"content": "x", "x": nested(MAX_JSON_DEPTH)}), "x" + ".a" * (MAX_JSON_DEPTH - 1), TOO_DEEP),
    ],
)
def test_a_chat_frame_that_cannot_be_stored_is_an_error_event(
    fakes: Fakes, frame: str, field: str, description: str
) -> None:
    with starlette_client(fakes) as client, client.websocket_connect(f"/api/ws/chat-sessions/{SESSION_ID}") as ws:
        ws.send_text(frame)
        error = ws.receive_json()

    assert error["type"] == "error"
    problem = error["problem"]
    assert (problem["status"], problem["reason"]) == (400, "VALIDATION_FAILED")
    assert {"field": field, "description": description} in problem["field_violations"]
    # Only the socket's lookup of its session: no turn was asked for.
    assert [c.method for c in fakes.calls()] == ["GetChatSession"]
