"""/api/snapshots, /api/snapshot-reports and /api/runs/{id}/snapshot over the fake snapshot service."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import httpx
import pytest
from starlette.websockets import WebSocketDisconnect

from crucible.run.v1 import run_service_pb2 as run_pb
from crucible.snapshot.v1 import snapshot_service_pb2 as snap_pb
from crucible_common.errors import AlreadyExists, FieldViolation, NotFound, ValidationFailed
from crucible_common.protobuf import struct_to_dict
from crucible_gateway.schemas import snapshots as schemas
from tests.unit.gateway.conftest import TOKEN, assert_problem, assert_refused, serve, starlette_client
from tests.unit.gateway.fakes import (
    OTHER_SNAPSHOT_ID,
    PROJECT_ID,
    REPLAY_RUN_ID,
    REPORT_ID,
    RUN_ID,
    SNAPSHOT_ID,
    Fakes,
    FakeSuite,
    plain_error,
    rpc_error,
    run,
    snapshot,
    snapshot_data,
    suite_events,
    suite_report,
    suite_result,
    watch_events,
)

SNAPSHOTS = "/api/snapshots"
SNAPSHOT = f"/api/snapshots/{SNAPSHOT_ID}"
RUN_TESTS = "/api/snapshots/run-tests"
WS = f"/api/ws/snapshot-reports/{REPORT_ID}"
DOMAIN = "snapshot.crucible"
CREATED_AT = "2025-01-02T03:04:05Z"

METRICS_JSON: dict[str, Any] = {
    "run_id": RUN_ID,
    "status": "COMPLETED",
    "candidates": 3,
    "scenarios": 5,
    "evaluations": 15,
    "failed_evaluations": 0,
    "coverage": 1.0,
    "hard_constraint_violations": 0,
    "duration_seconds": 42.5,
    "input_tokens": 1200,
    "output_tokens": 800,
    "usd": 0.42,
    "llm_calls": 17,
    "unpriced_calls": 0,
    "error_summary": "",
    "top_i": 2.5,
    "top_p": 0.75,
    "top_r": 0.3,
    "top_candidate_id": "6b6dc024-e3bb-4fe4-93a9-9fa2abef8067",
    "failure_reason": "",
}


def passed_json(kind: str, value: object) -> dict[str, Any]:
    """A passed invariant result as the API writes it (``fakes.invariant_result`` in JSON)."""
    return {
        "type": kind,
        "description": f"{kind} {value}",
        "status": "passed",
        "expected": value,
        "actual": value,
        "pass_rate": 1.0,
        "message": "",
    }


SNAPSHOT_JSON: dict[str, Any] = {
    "id": SNAPSHOT_ID,
    "name": "Grid baseline",
    "description": "a completed run of the grid study",
    "tags": ["grid", "baseline"],
    "project_id": PROJECT_ID,
    "run_id": RUN_ID,
    "snapshot_data": snapshot_data(),
    "reference_metrics": METRICS_JSON,
    # Whole numbers stay whole: a count reads 3, not 3.0.
    "invariants": [
        {"type": "min_candidates", "value": 3, "description": "min_candidates 3"},
        {"type": "run_status", "value": "COMPLETED", "description": "run_status COMPLETED"},
    ],
    "reference_results": [passed_json("min_candidates", 3), passed_json("run_status", "COMPLETED")],
    "version": "2.0",
    "parent_id": "",
    "created_at": CREATED_AT,
    "updated_at": CREATED_AT,
}


def requests_of(fakes: Fakes, method: str) -> list[Any]:
    return [c.request for c in fakes.snapshots.calls if c.method == method]


# ---------------------------------------------------------------- snapshots


async def test_an_import_forwards_the_data_and_reference_metrics(fakes: Fakes, http: httpx.AsyncClient) -> None:
    data = {"version": "1.0", "problem_spec": {"constraints": [], "goals": ["g"]}, "world_model": {"model_data": {}}}
    metrics = SNAPSHOT_JSON["reference_metrics"]

    response = await http.post(
        SNAPSHOTS, json={"name": "imported", "snapshot_data": data, "reference_metrics": metrics}
    )
    unknown = await http.post(
        SNAPSHOTS, json={"name": "x", "snapshot_data": data, "reference_metrics": {**metrics, "extra": 1}}
    )

    assert response.status_code == 201, response.text
    (request,) = requests_of(fakes, "CreateSnapshot")
    assert struct_to_dict(request.snapshot_data) == data
    assert request.reference_metrics.run_id == metrics["run_id"]
    assert request.reference_metrics.top_i == metrics["top_i"]
    assert unknown.status_code == 400


async def test_create_forwards_the_seed_body_and_reads_the_whole_snapshot(
    fakes: Fakes, http: httpx.AsyncClient
) -> None:
    body = {
        "project_id": PROJECT_ID,
        "run_id": RUN_ID,
        "name": "Grid baseline",
        "description": "a completed run of the grid study",
        "tags": ["grid", "baseline"],
        "invariants": [
            {"type": "min_candidates", "value": 3, "description": "at least 3"},
            {"type": "custom", "value": "evaluations == candidates * scenarios"},
        ],
        "chat_context_messages": 5,
    }

    response = await http.post(SNAPSHOTS, json=body)

    assert response.status_code == 201, response.text
    assert response.json() == SNAPSHOT_JSON
    (request,) = requests_of(fakes, "CreateSnapshot")
    assert request.project_id == PROJECT_ID
    assert request.run_id == RUN_ID
    assert list(request.tags) == ["grid", "baseline"]
    assert request.chat_context_messages == 5
    assert [(i.type, schemas.from_value(i.value), i.description) for i in request.invariants] == [
        ("min_candidates", 3, "at least 3"),
        ("custom", "evaluations == candidates * scenarios", ""),
    ]


async def test_a_snapshot_from_a_parent_names_it(fakes: Fakes, http: httpx.AsyncClient) -> None:
    body = {"name": "Grid, stricter", "parent_snapshot_id": SNAPSHOT_ID, "tags": ["strict"]}

    response = await http.post(SNAPSHOTS, json=body)

    assert response.status_code == 201, response.text
    (request,) = requests_of(fakes, "CreateSnapshot")
    assert (request.parent_snapshot_id, request.project_id, request.name) == (SNAPSHOT_ID, "", "Grid, stricter")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "project_id": PROJECT_ID, "colour": "red"}, "colour"),
        ({"name": "x", "project_id": PROJECT_ID, "invariants": [{"value": 3}]}, "invariants[0].type"),
        ({"name": "x", "project_id": PROJECT_ID, "tags": "a,b"}, "tags"),
    ],
)
async def test_a_body_that_is_not_a_snapshot_is_refused_before_the_service(
    fakes: Fakes, http: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    assert_refused(await http.post(SNAPSHOTS, json=body), fakes, field)


async def test_the_service_judges_invariants_and_names_the_field(fakes: Fakes, http: httpx.AsyncClient) -> None:
    refusal = ValidationFailed([FieldViolation("invariants[0].type", "unknown invariant type 'min_cats'")], "snapshot")
    fakes.snapshots.fail("CreateSnapshot", rpc_error(refusal, DOMAIN))

    response = await http.post(
        SNAPSHOTS, json={"name": "x", "project_id": PROJECT_ID, "invariants": [{"type": "min_cats", "value": 3}]}
    )

    body = assert_problem(response, 400, "VALIDATION_FAILED")
    assert body["field_violations"] == [
        {"field": "invariants[0].type", "description": "unknown invariant type 'min_cats'"}
    ]


async def test_list_takes_tags_repeated_or_comma_separated(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fakes.snapshots.answer(
        "ListSnapshots", snap_pb.ListSnapshotsResponse(snapshots=[snapshot(data=False)], next_page_token="p2")
    )

    response = await http.get(
        SNAPSHOTS,
        params=[
            ("tags", "grid, baseline"),
            ("tags", "failure"),
            ("project_id", PROJECT_ID),
            ("name", "grid"),
            ("page_size", "10"),
            ("page_token", "p1"),
        ],
    )

    assert response.status_code == 200, response.text
    page = response.json()
    assert page["next_page_token"] == "p2"
    # A list leaves the data out; GET one has it.
    assert page["snapshots"] == [{**SNAPSHOT_JSON, "snapshot_data": None}]
    assert requests_of(fakes, "ListSnapshots") == [
        snap_pb.ListSnapshotsRequest(
            tags=["grid", "baseline", "failure"], project_id=PROJECT_ID, name="grid", page_size=10, page_token="p1"
        )
    ]


async def test_get_reads_the_full_copies(fakes: Fakes, http: httpx.AsyncClient) -> None:
    response = await http.get(SNAPSHOT)

    assert response.json() == SNAPSHOT_JSON
    assert requests_of(fakes, "GetSnapshot") == [snap_pb.GetSnapshotRequest(snapshot_id=SNAPSHOT_ID)]


async def test_an_unknown_snapshot_is_404(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fakes.snapshots.fail(
        "GetSnapshot", rpc_error(NotFound("snapshot x not found", reason="SNAPSHOT_NOT_FOUND"), DOMAIN)
    )

    assert_problem(await http.get(f"/api/snapshots/{OTHER_SNAPSHOT_ID}"), 404, "SNAPSHOT_NOT_FOUND")


async def test_a_snapshot_without_a_run_has_no_reference(fakes: Fakes, http: httpx.AsyncClient) -> None:
    bare = snapshot(data=False)
    bare.ClearField("reference_metrics")
    bare.run_id = ""
    fakes.snapshots.answer("GetSnapshot", snap_pb.GetSnapshotResponse(snapshot=bare))

    found = (await http.get(SNAPSHOT)).json()

    assert (found["reference_metrics"], found["run_id"], found["snapshot_data"]) == (None, "", None)


async def test_delete_without_confirmation_is_the_services_412(fakes: Fakes, http: httpx.AsyncClient) -> None:
    response = await http.delete(SNAPSHOT)

    assert_problem(response, 412, "CONFIRMATION_REQUIRED")
    assert requests_of(fakes, "DeleteSnapshot") == [snap_pb.DeleteSnapshotRequest(snapshot_id=SNAPSHOT_ID)]


async def test_delete_with_confirmation(fakes: Fakes, http: httpx.AsyncClient) -> None:
    response = await http.delete(SNAPSHOT, params={"confirm": "true"})

    assert response.status_code == 204
    assert requests_of(fakes, "DeleteSnapshot") == [
        snap_pb.DeleteSnapshotRequest(snapshot_id=SNAPSHOT_ID, confirm=True)
    ]


# ---------------------------------------------------------------- replays


async def test_replay_waits_by_default_with_a_fresh_trigger(fakes: Fakes, http: httpx.AsyncClient) -> None:
    response = await http.post(f"{SNAPSHOT}/replay")

    assert response.status_code == 200, response.text
    assert response.json() == {
        "project_id": PROJECT_ID,
        "run_id": REPLAY_RUN_ID,
        "status": "COMPLETED",
        "metrics": {**METRICS_JSON, "run_id": REPLAY_RUN_ID},
        "invariants": [passed_json("min_candidates", 3)],
    }
    (call,) = fakes.snapshots.calls
    request = call.request
    assert isinstance(request, snap_pb.ReplaySnapshotRequest)
    assert uuid.UUID(request.ui_trigger_id)
    assert request.wait
    assert request.options == snap_pb.ReplayOptions(
        phases=snap_pb.REPLAY_PHASES_ALL, replay_mode=snap_pb.REPLAY_MODE_LIVE
    )
    # A replay waits for language models: the long deadline.
    assert call.timeout == 900.0


async def test_replay_options_are_forwarded_and_unset_overrides_stay_unset(
    fakes: Fakes, http: httpx.AsyncClient
) -> None:
    body = {
        "phases": "design",
        "num_candidates": 2,
        "reuse_project": True,
        "replay_mode": "recorded",
        "wait": False,
        "ui_trigger_id": "btn-7",
    }

    response = await http.post(f"{SNAPSHOT}/replay", json=body)

    assert response.json()["status"] == "RUNNING"
    assert response.json()["metrics"] is None
    (request,) = requests_of(fakes, "ReplaySnapshot")
    assert request.ui_trigger_id == "btn-7"
    assert not request.wait
    assert request.options == snap_pb.ReplayOptions(
        phases=snap_pb.REPLAY_PHASES_DESIGN,
        num_candidates=2,
        reuse_project=True,
        replay_mode=snap_pb.REPLAY_MODE_RECORDED,
    )
    assert not request.options.HasField("num_scenarios")


@pytest.mark.parametrize(("body", "field"), [({"phases": "rank"}, "phases"), ({"replay_mode": "fast"}, "replay_mode")])
async def test_an_unknown_phase_or_mode_is_refused(
    fakes: Fakes, http: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    assert_refused(await http.post(f"{SNAPSHOT}/replay", json=body), fakes, field)


# ---------------------------------------------------------------- suites


SEED_REPORT_KEYS = {"summary", "results", "total_cost_usd"}
SEED_RESULT_KEYS = {
    "snapshot_id",
    "snapshot_name",
    "status",
    "replay_run_id",
    "invariants",
    "metrics_delta",
    "cost_usd",
}


async def test_a_suite_answers_the_report_in_the_seeds_shape(fakes: Fakes, http: httpx.AsyncClient) -> None:
    failed = suite_result(snap_pb.RESULT_STATUS_FAILED, OTHER_SNAPSHOT_ID, "Heavy constraints")
    fakes.snapshots.suites.append(FakeSuite(events=suite_events(suite_report(suite_result(), failed))))
    body = {
        "snapshot_ids": None,
        "options": {
            "max_snapshots": 10,
            "phases": "full",
            "num_candidates": 3,
            "num_scenarios": 5,
            "stop_on_first_failure": False,
            "cost_limit_usd": 10.0,
        },
    }

    response = await http.post(RUN_TESTS, json=body)

    assert response.status_code == 200, response.text
    report = response.json()
    assert report.keys() >= SEED_REPORT_KEYS
    assert report["summary"] == {"total": 2, "passed": 1, "failed": 1, "skipped": 0, "errors": 0}
    assert report["status"] == "completed"
    assert report["total_cost_usd"] == pytest.approx(0.9)
    first, second = report["results"]
    assert first.keys() >= SEED_RESULT_KEYS
    assert (first["status"], second["status"]) == ("passed", "failed")
    assert second["invariants"][1] == {
        "type": "run_status",
        "description": "run_status COMPLETED",
        "status": "failed",
        "expected": "COMPLETED",
        "actual": "FAILED",
        "pass_rate": 0.0,
        "message": "expected COMPLETED, got FAILED",
    }
    assert first["metrics_delta"]["candidate_count"] == {
        "baseline": 3.0,
        "replay": 3.0,
        "delta": 0.0,
        "stdev": None,
        "ci_low": None,
        "ci_high": None,
        "flagged": False,
    }
    assert first["metrics_delta"]["duration_seconds"]["flagged"] is True
    assert report["options"]["phases"] == "full"
    (request,) = requests_of(fakes, "RunSnapshotTests")
    assert request.all
    assert not request.snapshot_ids
    assert uuid.UUID(request.ui_trigger_id)
    assert request.options == snap_pb.TestOptions(
        max_snapshots=10,
        phases=snap_pb.REPLAY_PHASES_FULL,
        num_candidates=3,
        num_scenarios=5,
        cost_limit_usd=10.0,
        replay_mode=snap_pb.REPLAY_MODE_LIVE,
        repetitions=1,
    )


async def test_named_snapshots_and_the_contracts_options(fakes: Fakes, http: httpx.AsyncClient) -> None:
    body = {
        "snapshot_ids": [SNAPSHOT_ID, OTHER_SNAPSHOT_ID],
        "options": {"concurrency": 4, "replay_mode": "recorded", "repetitions": 5, "min_pass_rate": 0.8},
        "ui_trigger_id": "ci-42",
    }

    assert (await http.post(RUN_TESTS, json=body)).status_code == 200

    (request,) = requests_of(fakes, "RunSnapshotTests")
    assert (list(request.snapshot_ids), request.all, request.ui_trigger_id) == (
        [SNAPSHOT_ID, OTHER_SNAPSHOT_ID],
        False,
        "ci-42",
    )
    assert request.options.concurrency == 4
    assert request.options.replay_mode == snap_pb.REPLAY_MODE_RECORDED
    assert (request.options.repetitions, request.options.min_pass_rate) == (5, 0.8)
    assert not request.options.HasField("cost_limit_usd")


async def test_without_wait_it_is_202_with_the_report_id_and_the_suite_goes_on(
    fakes: Fakes, http: httpx.AsyncClient
) -> None:
    suite = FakeSuite(hold=True)
    fakes.snapshots.suites.append(suite)

    response = await http.post(RUN_TESTS, json={"snapshot_ids": [SNAPSHOT_ID], "wait": False})

    assert response.status_code == 202, response.text
    assert response.json() == {"report_id": REPORT_ID, "snapshot_ids": [SNAPSHOT_ID], "repetitions": 1}
    assert response.headers["location"] == f"/api/snapshot-reports/{REPORT_ID}"
    # Only the first event was read, then the stream let go: the service keeps the suite running.
    assert (suite.read, suite.cancelled) == (1, True)


async def test_a_wait_that_runs_out_answers_202_not_504(fakes: Fakes, http: httpx.AsyncClient) -> None:
    deadline = plain_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
    fakes.snapshots.suites.append(FakeSuite(events=suite_events()[:2], failure=deadline))

    response = await http.post(RUN_TESTS, json={})

    assert response.status_code == 202
    assert response.json()["report_id"] == REPORT_ID


async def test_a_stream_that_ends_early_is_answered_from_the_stored_report(
    fakes: Fakes, http: httpx.AsyncClient
) -> None:
    fakes.snapshots.suites.append(FakeSuite(events=suite_events()[:1]))

    response = await http.post(RUN_TESTS, json={})

    assert response.status_code == 200
    assert response.json()["id"] == REPORT_ID
    assert requests_of(fakes, "GetTestReport") == [snap_pb.GetTestReportRequest(report_id=REPORT_ID)]


async def test_a_stream_that_never_starts_is_a_bad_gateway(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fakes.snapshots.suites.append(FakeSuite(events=[]))

    assert_problem(await http.post(RUN_TESTS, json={}), 502, "BAD_GATEWAY")


async def test_a_suite_the_service_refuses_is_its_problem(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fakes.snapshots.fail(
        "RunSnapshotTests", rpc_error(NotFound("snapshot x not found", reason="SNAPSHOT_NOT_FOUND"), DOMAIN)
    )

    assert_problem(await http.post(RUN_TESTS, json={"snapshot_ids": [OTHER_SNAPSHOT_ID]}), 404, "SNAPSHOT_NOT_FOUND")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"options": {"phases": "rank"}}, "options.phases"),
        ({"options": {"cost_limit_usd": "lots"}}, "options.cost_limit_usd"),
        ({"snapshot_ids": "all"}, "snapshot_ids"),
        ({"options": {"max_snapshots": 2**40}}, "options.max_snapshots"),
    ],
)
async def test_a_suite_body_that_does_not_validate_is_refused(
    fakes: Fakes, http: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    assert_refused(await http.post(RUN_TESTS, json=body), fakes, field)


async def test_a_failed_harness_and_skipped_snapshots_read_as_such(fakes: Fakes, http: httpx.AsyncClient) -> None:
    report = suite_report(
        suite_result(snap_pb.RESULT_STATUS_SKIPPED),
        suite_result(snap_pb.RESULT_STATUS_ERROR),
        status=snap_pb.REPORT_STATUS_FAILED,
    )
    fakes.snapshots.answer("GetTestReport", snap_pb.GetTestReportResponse(report=report))

    found = (await http.get(f"/api/snapshot-reports/{REPORT_ID}")).json()

    assert (found["status"], found["error"]) == ("failed", "the snapshot service lost its database")
    assert found["summary"] == {"total": 2, "passed": 0, "failed": 0, "skipped": 1, "errors": 1}
    assert [(r["status"], r["reason"]) for r in found["results"]] == [
        ("skipped", "cost limit: the estimate $0.40 would cross $0.50"),
        ("error", "the run service is unavailable"),
    ]


async def test_a_running_report_has_no_end(fakes: Fakes, http: httpx.AsyncClient) -> None:
    report = suite_report(status=snap_pb.REPORT_STATUS_RUNNING)
    fakes.snapshots.answer("GetTestReport", snap_pb.GetTestReportResponse(report=report))

    found = (await http.get(f"/api/snapshot-reports/{REPORT_ID}")).json()

    assert (found["status"], found["ended_at"]) == ("running", None)


async def test_reports_list_newest_first_a_page_at_a_time(fakes: Fakes, http: httpx.AsyncClient) -> None:
    page = (await http.get("/api/snapshot-reports", params={"page_size": 5, "page_token": "r1"})).json()

    assert [r["id"] for r in page["reports"]] == [REPORT_ID]
    assert page["next_page_token"] == "r2"
    assert requests_of(fakes, "ListTestReports") == [snap_pb.ListTestReportsRequest(page_size=5, page_token="r1")]


# ---------------------------------------------------------------- a run in one call


async def test_a_failed_run_is_snapshotted_with_the_failure_tag_and_its_words(
    fakes: Fakes, http: httpx.AsyncClient
) -> None:
    failed = run(run_pb.RUN_STATUS_FAILED)
    failed.failure_reason = "budget_usd reached"
    fakes.runs.answer("GetRun", run_pb.GetRunResponse(run=failed))

    response = await http.post(f"/api/runs/{RUN_ID}/snapshot", json={"tags": ["grid", "failure"]})

    assert response.status_code == 201, response.text
    (request,) = requests_of(fakes, "CreateSnapshot")
    assert (request.project_id, request.run_id) == (PROJECT_ID, RUN_ID)
    assert list(request.tags) == ["failure", "grid"]
    # Left to the snapshot service, which names it after the project and the run as it stores it.
    assert request.name == ""
    assert request.description == (
        f"Run {RUN_ID} (full_search: 5 candidates × 3 scenarios, 14 evaluations) ended FAILED. budget_usd reached"
    )


async def test_a_name_the_client_gave_that_is_taken_stays_a_409(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fakes.runs.answer("GetRun", run_pb.GetRunResponse(run=run(run_pb.RUN_STATUS_COMPLETED)))
    taken = rpc_error(AlreadyExists("a snapshot named 'Mine' exists already", reason="SNAPSHOT_NAME_TAKEN"))
    fakes.snapshots.fail("CreateSnapshot", taken)

    assert_problem(await http.post(f"/api/runs/{RUN_ID}/snapshot", json={"name": "Mine"}), 409, "SNAPSHOT_NAME_TAKEN")
    assert len(requests_of(fakes, "CreateSnapshot")) == 1


async def test_a_completed_run_keeps_the_names_given_and_no_failure_tag(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fakes.runs.answer("GetRun", run_pb.GetRunResponse(run=run(run_pb.RUN_STATUS_COMPLETED)))
    body = {"name": "Grid ok", "description": "good", "invariants": [{"type": "run_status", "value": "COMPLETED"}]}

    assert (await http.post(f"/api/runs/{RUN_ID}/snapshot", json=body)).status_code == 201

    (request,) = requests_of(fakes, "CreateSnapshot")
    assert (request.name, request.description, list(request.tags)) == ("Grid ok", "good", [])
    assert [i.type for i in request.invariants] == ["run_status"]


async def test_snapshotting_an_unknown_run_is_404(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fakes.runs.fail("GetRun", rpc_error(NotFound("run x not found", reason="RUN_NOT_FOUND"), "run.crucible"))

    assert_problem(await http.post(f"/api/runs/{REPLAY_RUN_ID}/snapshot"), 404, "RUN_NOT_FOUND")
    assert requests_of(fakes, "CreateSnapshot") == []


# ---------------------------------------------------------------- the WebSocket


def test_the_websocket_relays_started_each_replay_each_result_and_the_report(fakes: Fakes) -> None:
    failed = suite_result(snap_pb.RESULT_STATUS_FAILED, OTHER_SNAPSHOT_ID, "Heavy constraints")
    report = suite_report(suite_result(), failed)
    fakes.snapshots.watch_events = watch_events(report)
    moves = sum(len(r.replay_run_ids[:1]) for r in report.results) * 2

    with starlette_client(fakes) as client, client.websocket_connect(WS) as ws:
        frames = [ws.receive_json() for _ in range(4 + moves)]
        closed = ws.receive()

    assert frames[0] == {
        "type": "started",
        "report_id": REPORT_ID,
        "snapshot_ids": [SNAPSHOT_ID, OTHER_SNAPSHOT_ID],
        "repetitions": 1,
    }
    replays = [f["replay"] for f in frames[1 : 1 + moves]]
    assert moves > 0
    assert {f["type"] for f in frames[1 : 1 + moves]} == {"replay"}
    assert [(r["repetition"], r["state"]) for r in replays[:2]] == [(1, "running"), (1, "ended")]
    assert replays[0]["run_id"] == report.results[0].replay_run_ids[0]
    assert replays[0]["snapshot_name"] == report.results[0].snapshot_name
    results = frames[1 + moves : 3 + moves]
    assert [(f["type"], f["result"]["status"]) for f in results] == [("result", "passed"), ("result", "failed")]
    assert frames[-1]["type"] == "report"
    assert frames[-1]["report"]["summary"]["failed"] == 1
    assert closed["type"] == "websocket.close"
    assert [c.request for c in fakes.snapshots.calls] == [snap_pb.WatchTestReportRequest(report_id=REPORT_ID)]


def test_an_unknown_report_is_an_error_frame(fakes: Fakes) -> None:
    fakes.snapshots.fail("WatchTestReport", rpc_error(NotFound("no report", reason="TEST_REPORT_NOT_FOUND"), DOMAIN))

    with starlette_client(fakes) as client, client.websocket_connect(WS) as ws:
        frame = ws.receive_json()

    assert frame["type"] == "error"
    assert (frame["problem"]["status"], frame["problem"]["reason"]) == (404, "TEST_REPORT_NOT_FOUND")


def test_the_websocket_needs_the_token_when_one_is_set(fakes: Fakes) -> None:
    with starlette_client(fakes, TOKEN) as client, client.websocket_connect(WS) as ws:
        error = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as refused:
            ws.receive_json()
    assert error["problem"]["status"] == 401
    assert refused.value.code == 4401
    assert fakes.snapshots.calls == []


async def test_the_rest_routes_need_the_token_when_one_is_set(fakes: Fakes) -> None:
    async with serve(fakes, TOKEN) as http:
        assert_problem(await http.get(SNAPSHOTS), 401, "UNAUTHORIZED")
        assert_problem(await http.post(RUN_TESTS, json={}), 401, "UNAUTHORIZED")
        authorized = await http.get(SNAPSHOTS, headers={"Authorization": f"Bearer {TOKEN}"})
    assert authorized.status_code == 200
    assert len(fakes.snapshots.calls) == 1


def test_the_rest_names_are_the_ones_clients_know() -> None:
    assert schemas.REPLAY_PHASES.names == ("all", "full", "design", "evaluate")
    assert schemas.REPLAY_MODE.names == ("live", "recorded")
    assert schemas.RESULT_STATUS.names == ("passed", "failed", "skipped", "error")
    assert schemas.REPORT_STATUS.names == ("running", "completed", "failed")


@pytest.mark.parametrize("value", [3, 2.5, "COMPLETED", True, None, ["a", 1], {"k": [1, 2]}])
def test_invariant_values_keep_their_json_type(value: object) -> None:
    assert schemas.from_value(schemas.to_value(value)) == value
