"""/api/sprints over the fake spec and sprint services, and the sprint's event WebSocket."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from crucible.agent.v1 import sprint_service_pb2 as sprint_pb
from crucible.spec.v1 import spec_service_pb2 as spec_pb
from tests.unit.gateway.conftest import assert_refused, assert_websocket_refused, starlette_client
from tests.unit.gateway.fakes import AGENT_RUN_ID, SPEC_ID, SPRINT_ID, Fakes, sprint, sprint_event

SPRINT = f"/api/sprints/{SPRINT_ID}"
WS = f"/api/ws/sprints/{SPRINT_ID}"

INVALID = [
    pytest.param("POST", "/api/sprints", {"json": {"spec_id": SPEC_ID}}, "name", id="create-without-name"),
    pytest.param("POST", "/api/sprints", {"json": {"name": "x"}}, "spec_id", id="create-without-spec"),
    pytest.param(
        "POST", "/api/sprints", {"json": {"spec_id": SPEC_ID, "name": "x", "spec": {}}}, "spec", id="create-with-a-spec"
    ),
    pytest.param("GET", f"/api/sprints?spec_id={'s' * 101}", {}, "query.spec_id", id="list-long-spec-id"),
    pytest.param("GET", "/api/sprints?page_size=1001", {}, "query.page_size", id="list-page-size"),
    pytest.param("POST", f"{SPRINT}/start", {"json": {}}, "ui_trigger_id", id="start-without-trigger"),
    pytest.param(
        "POST", f"{SPRINT}/start", {"json": {"ui_trigger_id": "b"}}, "ui_trigger_source", id="start-no-source"
    ),
    pytest.param(
        "POST",
        f"{SPRINT}/start",
        {"json": {"ui_trigger_id": "b", "ui_trigger_source": "ui", "force": True}},
        "force",
        id="start-unknown-field",
    ),
    pytest.param("POST", f"{SPRINT}/cancel", {"json": {"reason": 1}}, "reason", id="cancel-reason-number"),
    pytest.param("GET", f"{SPRINT}/artifacts?page_size=-1", {}, "query.page_size", id="artifacts-page-size"),
    pytest.param("GET", f"{SPRINT}/artifacts?page_token={'t' * 1025}", {}, "query.page_token", id="artifacts-token"),
]


@pytest.mark.parametrize(("method", "url", "kwargs", "field"), INVALID)
async def test_invalid_input_is_refused_before_the_service(
    fakes: Fakes, http: httpx.AsyncClient, method: str, url: str, kwargs: dict[str, Any], field: str | None
) -> None:
    assert_refused(await http.request(method, url, **kwargs), fakes, field)


async def test_create_asks_the_spec_service_and_nothing_else(fakes: Fakes, http: httpx.AsyncClient) -> None:
    response = await http.post("/api/sprints", json={"spec_id": SPEC_ID, "name": "First", "goal": "hello"})

    assert response.status_code == 201, response.text
    assert response.json()["id"] == SPRINT_ID
    # No reading of the spec, no snapshot built here: the spec service owns that use case.
    assert [(c.method, c.request) for c in fakes.calls()] == [
        ("CreateSprint", spec_pb.CreateSprintRequest(spec_id=SPEC_ID, name="First", goal="hello"))
    ]


async def test_a_sprint_reads_with_enum_names(fakes: Fakes, http: httpx.AsyncClient) -> None:
    body = (await http.get(SPRINT)).json()

    assert (body["status"], body["current_phase"]) == ("active", "coding")
    assert body["trigger"] == {"id": "btn-1", "source": "ui", "at": "2025-01-02T03:04:05Z"}
    assert body["phases"] == [
        {
            "phase": "discovery",
            "attempt": 1,
            "status": "completed",
            "agent_run_id": AGENT_RUN_ID,
            "summary": "planned",
            "started_at": "2025-01-02T03:04:05Z",
            "finished_at": "2025-01-02T03:05:06Z",
        },
        {
            "phase": "coding",
            "attempt": 1,
            "status": "running",
            "agent_run_id": "",
            "summary": "",
            "started_at": "2025-01-02T03:05:06Z",
            "finished_at": None,
        },
    ]
    assert fakes.sprints.only_call().request == sprint_pb.GetSprintRequest(sprint_id=SPRINT_ID)


async def test_a_planned_sprint_has_no_current_phase(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fakes.sprints.answer(
        "GetSprint",
        sprint_pb.GetSprintResponse(sprint=sprint_pb.Sprint(id=SPRINT_ID, status=sprint_pb.SPRINT_STATUS_PLANNED)),
    )

    body = (await http.get(SPRINT)).json()

    assert (body["status"], body["current_phase"], body["trigger"], body["phases"]) == ("planned", None, None, [])


async def test_list_start_and_cancel(fakes: Fakes, http: httpx.AsyncClient) -> None:
    listed = await http.get("/api/sprints", params={"spec_id": SPEC_ID, "page_size": 4})
    started = await http.post(f"{SPRINT}/start", json={"ui_trigger_id": "btn-run-1", "ui_trigger_source": "ui"})
    cancelled = await http.post(f"{SPRINT}/cancel", json={"reason": "enough"})

    assert [s["id"] for s in listed.json()["sprints"]] == [SPRINT_ID]
    assert (started.status_code, cancelled.status_code) == (200, 200)
    assert [c.request for c in fakes.sprints.calls] == [
        sprint_pb.ListSprintsRequest(spec_id=SPEC_ID, page_size=4),
        sprint_pb.StartSprintRequest(sprint_id=SPRINT_ID, trigger=sprint_pb.Trigger(id="btn-run-1", source="ui")),
        sprint_pb.CancelSprintRequest(sprint_id=SPRINT_ID, reason="enough"),
    ]


async def test_a_cancelled_sprint_reads_cancelled_not_failed(fakes: Fakes, http: httpx.AsyncClient) -> None:
    answer = sprint_pb.CancelSprintResponse(sprint=sprint())
    answer.sprint.status = sprint_pb.SPRINT_STATUS_CANCELLED
    answer.sprint.phases[1].status = sprint_pb.PHASE_ATTEMPT_STATUS_CANCELLED
    fakes.sprints.answer("CancelSprint", answer)

    body = (await http.post(f"{SPRINT}/cancel", json={})).json()

    assert (body["status"], [p["status"] for p in body["phases"]]) == ("cancelled", ["completed", "cancelled"])


async def test_artifacts_are_listed_a_page_at_a_time(fakes: Fakes, http: httpx.AsyncClient) -> None:
    response = await http.get(f"{SPRINT}/artifacts", params={"page_size": 1, "page_token": "page-1"})

    assert response.json() == {"artifacts": [{"path": "hello.py", "size": 21}], "next_page_token": "page-2"}
    assert fakes.sprints.only_call().request == sprint_pb.ListArtifactsRequest(
        sprint_id=SPRINT_ID, page_size=1, page_token="page-1"
    )


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("src/hello.py", "text/plain; charset=utf-8"),
        ("notes.txt", "text/plain; charset=utf-8"),
        ("index.html", "application/octet-stream"),
        ("image.bin", "application/octet-stream"),
    ],
)
async def test_an_artifact_is_plain_text_or_a_download(
    fakes: Fakes, http: httpx.AsyncClient, path: str, media_type: str
) -> None:
    response = await http.get(f"{SPRINT}/artifacts/{path}")

    assert response.content == b"print('hello world')\n"
    assert response.headers["content-type"] == media_type
    assert response.headers["content-disposition"] == f'attachment; filename="{path.rsplit("/", 1)[-1]}"'
    assert response.headers["x-content-type-options"] == "nosniff"
    assert fakes.sprints.only_call().request == sprint_pb.GetArtifactRequest(sprint_id=SPRINT_ID, path=path)


def test_the_websocket_relays_each_event_with_its_dotted_type(fakes: Fakes) -> None:
    fakes.sprints.events = [
        sprint_event(3, sprint_pb.SPRINT_EVENT_TYPE_PHASE_STARTED),
        sprint_event(4, sprint_pb.SPRINT_EVENT_TYPE_TOOL_CALLED),
        sprint_event(5, sprint_pb.SPRINT_EVENT_TYPE_SPRINT_COMPLETED),
    ]

    with starlette_client(fakes) as client, client.websocket_connect(f"{WS}?after=2") as ws:
        events = [ws.receive_json() for _ in range(3)]
        closed = ws.receive()

    assert events[0] == {
        "sequence": 3,
        "sprint_id": SPRINT_ID,
        "type": "phase.started",
        "data": {"phase": "coding", "attempt": 1},
        "time": "2025-01-02T03:04:05+00:00",
    }
    assert [e["type"] for e in events] == ["phase.started", "tool.called", "sprint.completed"]
    assert closed["type"] == "websocket.close"
    assert fakes.sprints.only_call().request == sprint_pb.WatchSprintRequest(sprint_id=SPRINT_ID, after_sequence=2)


@pytest.mark.parametrize("after", ["-1", "x", str(2**63)])
def test_the_websocket_refuses_a_bad_position_without_calling_the_service(fakes: Fakes, after: str) -> None:
    with starlette_client(fakes) as client:
        assert_websocket_refused(client, f"{WS}?after={after}", "query.after")

    assert fakes.sprints.calls == []
