"""With CRUCIBLE_API_TOKEN set, every /api call, /mcp and the WebSockets need the bearer token, and a
request without it is told only that, whatever else is wrong with it."""

from __future__ import annotations

import pytest
from starlette.websockets import WebSocketDisconnect

from crucible.agent.v1 import sprint_service_pb2 as sprint_pb
from crucible_gateway.api import chat, runs, snapshots, sprints
from crucible_gateway.auth import requires_token
from tests.unit.gateway.conftest import TOKEN, assert_problem, build_app, serve, starlette_client
from tests.unit.gateway.fakes import SPRINT_ID, Fakes, sprint_event

WS_PATH = f"/api/ws/sprints/{SPRINT_ID}"
REFUSED = [
    pytest.param([], id="missing"),
    pytest.param([(b"authorization", b"Bearer wrong-token")], id="wrong"),
    pytest.param([(b"authorization", f"Basic {TOKEN}".encode())], id="not-bearer"),
    pytest.param([(b"authorization", b"Bearer")], id="empty"),
    # A non-ASCII header must be a 401 like any other wrong token, never a 500.
    pytest.param([(b"authorization", "Bearer s3cret-tökén".encode())], id="non-ascii"),
]


@pytest.mark.parametrize("headers", REFUSED)
async def test_rest_calls_without_the_right_token_are_refused(fakes: Fakes, headers: list[tuple[bytes, bytes]]) -> None:
    async with serve(fakes, TOKEN) as http:
        response = await http.get("/api/projects", headers=headers)
        created = await http.post("/api/projects", json={"title": "x"}, headers=headers)

    assert_problem(response, 401, "UNAUTHORIZED")
    assert response.headers["www-authenticate"] == "Bearer"
    assert_problem(created, 401, "UNAUTHORIZED")
    assert fakes.calls() == []


async def test_the_right_token_lets_the_call_through(fakes: Fakes) -> None:
    async with serve(fakes, TOKEN) as http:
        response = await http.get("/api/projects", headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 200, response.text
    assert [c.method for c in fakes.calls()] == ["ListProjects"]


async def test_without_a_configured_token_no_header_is_needed(fakes: Fakes) -> None:
    async with serve(fakes) as http:
        response = await http.get("/api/projects")

    assert response.status_code == 200


async def test_health_is_open_to_probes(fakes: Fakes) -> None:
    async with serve(fakes, TOKEN) as http:
        response = await http.get("/healthz")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        pytest.param({}, "", id="missing"),
        pytest.param({"Authorization": "Bearer wrong-token"}, "", id="wrong-header"),
        pytest.param({}, "?token=wrong-token", id="wrong-query"),
        pytest.param({"Authorization": "Bearer s3cret-tökén".encode("latin-1")}, "", id="non-ascii-header"),
        pytest.param({}, "?token=s3cret-t%C3%B6k%C3%A9n", id="non-ascii-query"),
    ],
)
def test_the_sprint_websocket_refuses_a_wrong_token(fakes: Fakes, headers: dict[str, str | bytes], query: str) -> None:
    with starlette_client(fakes, TOKEN) as client, client.websocket_connect(WS_PATH + query, headers=headers) as ws:
        error = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()

    assert error["problem"]["status"] == 401

    assert closed.value.code == 4401
    assert fakes.sprints.calls == []


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        pytest.param({"Authorization": f"Bearer {TOKEN}"}, "", id="header"),
        # Browsers cannot set headers on a WebSocket.
        pytest.param({}, f"?token={TOKEN}", id="query"),
    ],
)
def test_the_sprint_websocket_accepts_the_right_token(fakes: Fakes, headers: dict[str, str], query: str) -> None:
    fakes.sprints.events = [sprint_event(1, sprint_pb.SPRINT_EVENT_TYPE_SPRINT_COMPLETED)]
    with starlette_client(fakes, TOKEN) as client, client.websocket_connect(WS_PATH + query, headers=headers) as ws:
        assert ws.receive_json()["type"] == "sprint.completed"

    assert [c.method for c in fakes.sprints.calls] == ["WatchSprint"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("POST", "/api/projects", b'{"title": "a\\u0000b"}', id="nul-in-body"),
        pytest.param("POST", "/api/projects", b'{"title": ', id="malformed-json"),
        pytest.param("GET", "/api/projects/%00", None, id="nul-in-path"),
        pytest.param("GET", "/api/projects?page_token=%00", None, id="nul-in-query"),
        pytest.param("POST", "/mcp", b'{"jsonrpc": "2.0", "method": "a\\u0000"}', id="mcp"),
    ],
)
async def test_without_the_token_a_bad_request_is_told_only_that(
    fakes: Fakes, method: str, path: str, body: bytes | None
) -> None:
    """As a WebSocket is: a caller without the token learns nothing about what else is wrong."""
    json_type = {"Content-Type": "application/json"}
    async with serve(fakes, TOKEN) as http:
        refused = await http.request(method, path, content=body, headers=json_type)
        authorized = await http.request(
            method, path, content=body, headers={**json_type, "Authorization": f"Bearer {TOKEN}"}
        )

    assert_problem(refused, 401, "UNAUTHORIZED")
    assert refused.headers["www-authenticate"] == "Bearer"
    # With the token, the request's own fault is named.
    assert authorized.status_code == 400, authorized.text
    assert fakes.calls() == []


async def test_a_bad_request_to_an_open_path_is_a_400_without_the_token(fakes: Fakes) -> None:
    async with serve(fakes, TOKEN) as http:
        response = await http.get("/healthz?probe=%00")

    assert_problem(response, 400, "VALIDATION_FAILED")


def test_the_paths_that_need_the_token_are_the_routes_that_check_it(fakes: Fakes) -> None:
    """``auth.requires_token`` (what the input guard asks) agrees with the routes themselves: the
    document marks each operation behind ``require_token`` with its security, and every WebSocket
    checks the token itself."""
    _, app = build_app(fakes, TOKEN)
    documented = {
        path: any("security" in operation for operation in operations.values())
        for path, operations in app.openapi()["paths"].items()
    }
    sockets = [r.path for module in (chat, runs, snapshots, sprints) for r in module.ws_router.routes]

    assert any(documented.values())
    assert {path: requires_token(path) for path in documented} == documented
    assert len(sockets) == 4
    assert all(requires_token(path) for path in sockets)
    assert requires_token("/mcp")
    assert not any(requires_token(p) for p in ("/api/docs", "/api/docs/assets/swagger-ui.css", "/healthz", "/"))
