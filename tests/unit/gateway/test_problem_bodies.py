"""Every canonical gRPC code a service answers with becomes its HTTP status and a JSON problem body."""

from __future__ import annotations

import grpc
import httpx
import pytest

from crucible.agent.v1 import sprint_service_pb2 as sprint_pb
from crucible.spec.v1 import spec_service_pb2 as spec_pb
from crucible_common.errors import (
    FailedPrecondition,
    FieldViolation,
    NotFound,
    PreconditionViolation,
    StatusDetails,
    ValidationFailed,
)
from tests.unit.gateway.conftest import assert_problem, assert_refused, starlette_client
from tests.unit.gateway.fakes import (
    PROJECT_ID,
    SPEC_ID,
    SPRINT_ID,
    Fakes,
    plain_error,
    rpc_error,
    sprint_event,
    status_error,
)

# Written out here rather than read from the gateway, so a change to the mapping is a visible one.
HTTP_STATUS = {
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 412,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}
SERVER_FAULTS = [grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.DATA_LOSS]


def test_the_table_covers_every_canonical_code() -> None:
    assert set(HTTP_STATUS) == set(grpc.StatusCode) - {grpc.StatusCode.OK}


@pytest.mark.parametrize("code", [c for c in HTTP_STATUS if c not in SERVER_FAULTS], ids=str)
async def test_a_client_side_code_keeps_its_reason_message_and_domain(
    fakes: Fakes, http: httpx.AsyncClient, code: grpc.StatusCode
) -> None:
    fakes.spec.fail(
        "GetProject",
        status_error(StatusDetails(code, "what the service said", reason="SOMETHING_SPECIFIC", metadata={"k": "v"})),
    )

    response = await http.get(f"/api/projects/{PROJECT_ID}")

    body = assert_problem(response, HTTP_STATUS[code], "SOMETHING_SPECIFIC")
    assert body["detail"] == "what the service said"
    assert (body["grpc_code"], body["domain"], body["metadata"]) == (code.name, "spec.crucible", {"k": "v"})
    assert "field_violations" not in body


@pytest.mark.parametrize("code", SERVER_FAULTS, ids=str)
async def test_a_server_fault_is_a_500_that_hides_its_message(
    fakes: Fakes, http: httpx.AsyncClient, code: grpc.StatusCode
) -> None:
    fakes.spec.fail("GetProject", status_error(StatusDetails(code, "secret stack detail", reason="INTERNAL")))

    response = await http.get(f"/api/projects/{PROJECT_ID}")

    body = assert_problem(response, 500, "INTERNAL")
    assert body["detail"] == "internal error"
    assert "secret" not in response.text


async def test_a_named_upstream_failure_is_a_bad_gateway(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fakes.agent.fail(
        "GetAgentRun",
        status_error(StatusDetails(grpc.StatusCode.INTERNAL, "the model's answer did not validate", "INVALID_OUTPUT")),
    )

    response = await http.get(f"/api/agent-runs/{PROJECT_ID}")

    body = assert_problem(response, 502, "INVALID_OUTPUT")
    assert body["detail"] == "the model's answer did not validate"


@pytest.mark.parametrize(
    ("code", "status"),
    [(grpc.StatusCode.DEADLINE_EXCEEDED, 504), (grpc.StatusCode.UNAVAILABLE, 503), (grpc.StatusCode.UNKNOWN, 500)],
    ids=lambda v: getattr(v, "name", str(v)),
)
async def test_a_status_without_details_is_named_by_its_code(
    fakes: Fakes, http: httpx.AsyncClient, code: grpc.StatusCode, status: int
) -> None:
    fakes.sprints.fail("GetSprint", plain_error(code, "no details"))

    response = await http.get(f"/api/sprints/{SPRINT_ID}")

    body = assert_problem(response, status, code.name)
    assert body["grpc_code"] == code.name


async def test_grpc_s_own_resource_exhausted_is_a_server_fault_not_a_rate_limit(
    fakes: Fakes, http: httpx.AsyncClient
) -> None:
    """A response over gRPC's message size limit comes with no reason: not a 429 (which tells the
    client to wait and try again, to the same end), but the system's own failure."""
    fakes.runs.fail(
        "ListRuns",
        plain_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "SERVER: Sent message larger than max (13301079 vs. 8388608)"),
    )

    response = await http.get(f"/api/projects/{PROJECT_ID}/runs")

    body = assert_problem(response, 500, "RESOURCE_EXHAUSTED")
    assert body["detail"] == "internal error"


async def test_field_violations_reach_the_body(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fakes.spec.fail("CreateProject", rpc_error(ValidationFailed([FieldViolation("title", "must not be empty")])))

    response = await http.post("/api/projects", json={"title": ""})

    body = assert_problem(response, 400, "VALIDATION_FAILED")
    assert body["field_violations"] == [{"field": "title", "description": "must not be empty"}]


@pytest.mark.parametrize(
    ("method", "url", "body", "field"),
    [
        ("GET", "/api/projects/not-a-uuid", None, "path.project_id"),
        ("GET", f"/api/projects/{PROJECT_ID}x/world-model", None, "path.project_id"),
        ("GET", "/api/usage?project_id=not-a-uuid", None, "query.project_id"),
        ("GET", "/api/llm-calls?run_id=123", None, "query.run_id"),
        ("GET", "/api/sprints?spec_id=%7B" + SPEC_ID + "%7D", None, "query.spec_id"),
        ("POST", "/api/sprints", {"spec_id": "x", "name": "n"}, "spec_id"),
        (
            "POST",
            "/api/runs",
            {"project_id": PROJECT_ID, "mode": "full_search", "chat_session_id": "x"},
            "chat_session_id",
        ),
        ("POST", "/api/snapshots/run-tests", {"snapshot_ids": [SPEC_ID, "x"]}, "snapshot_ids[1]"),
        ("POST", "/api/agent-runs", {"message": "m", "correlation": {"run_id": "r1"}}, "correlation.run_id"),
    ],
)
async def test_every_id_is_a_uuid_in_the_path_the_query_and_the_body(
    fakes: Fakes, http: httpx.AsyncClient, method: str, url: str, body: object, field: str
) -> None:
    response = await http.request(method, url, json=body)

    assert_refused(response, fakes, field)


async def test_an_id_is_forwarded_in_its_canonical_lower_case(fakes: Fakes, http: httpx.AsyncClient) -> None:
    await http.get(f"/api/projects/{PROJECT_ID.upper()}")

    assert fakes.spec.only_call().request == spec_pb.GetProjectRequest(project_id=PROJECT_ID)


async def test_precondition_violations_reach_the_body(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fakes.spec.fail(
        "CreateSprint",
        rpc_error(
            FailedPrecondition(
                "the spec has unanswered questions",
                violations=[PreconditionViolation("UNANSWERED_QUESTION", f"specs/{SPEC_ID}", "Which language?")],
                reason="SPEC_NOT_ANSWERED",
            )
        ),
    )

    response = await http.post("/api/sprints", json={"spec_id": SPEC_ID, "name": "Too early"})

    body = assert_problem(response, 412, "SPEC_NOT_ANSWERED")
    assert body["precondition_violations"] == [
        {"type": "UNANSWERED_QUESTION", "subject": f"specs/{SPEC_ID}", "description": "Which language?"}
    ]


async def test_unknown_routes_and_methods_are_problems_too(http: httpx.AsyncClient) -> None:
    assert_problem(await http.get("/api/nowhere"), 404, "NOT_FOUND")
    assert_problem(await http.put("/api/projects"), 405, "METHOD_NOT_ALLOWED")


def test_a_failed_stream_ends_the_websocket_with_a_problem(fakes: Fakes) -> None:
    fakes.sprints.events = [sprint_event(1, sprint_pb.SPRINT_EVENT_TYPE_SPRINT_CREATED)]
    fakes.sprints.stream_failure = plain_error(grpc.StatusCode.UNAVAILABLE, "agent went away")

    with starlette_client(fakes) as client, client.websocket_connect(f"/api/ws/sprints/{SPRINT_ID}") as ws:
        assert ws.receive_json()["type"] == "sprint.created"
        error = ws.receive_json()
        closed = ws.receive()

    assert error["type"] == "error"
    assert (error["problem"]["status"], error["problem"]["reason"]) == (503, "UNAVAILABLE")
    assert closed["type"] == "websocket.close"


def test_a_missing_sprint_is_a_problem_on_the_websocket(fakes: Fakes) -> None:
    fakes.sprints.fail("WatchSprint", rpc_error(NotFound("no sprint", reason="SPRINT_NOT_FOUND"), "agent.crucible"))

    with starlette_client(fakes) as client, client.websocket_connect(f"/api/ws/sprints/{SPRINT_ID}") as ws:
        error = ws.receive_json()

    assert (error["problem"]["status"], error["problem"]["reason"]) == (404, "SPRINT_NOT_FOUND")
