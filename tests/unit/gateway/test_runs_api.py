"""/api/runs over the fake run service: the run advisor contract as the gateway forwards it."""

from __future__ import annotations

from typing import Any, cast

import httpx
import pytest
from starlette.websockets import WebSocketDisconnect

from crucible.run.v1 import run_service_pb2 as run_pb
from crucible_common.enums import dotted
from crucible_common.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PreconditionViolation,
)
from crucible_common.protobuf import struct, timestamp
from crucible_gateway.schemas import runs as schemas
from crucible_gateway.schemas.common import RestEnum
from tests.unit.gateway.conftest import (
    TOKEN,
    assert_problem,
    assert_refused,
    assert_websocket_refused,
    serve,
    starlette_client,
)
from tests.unit.gateway.fakes import (
    AGENT_RUN_ID,
    CANDIDATE_ID,
    CREATED,
    EVALUATION_ID,
    MESSAGE_ID,
    PROJECT_ID,
    REPLAYED_RUN_ID,
    RUN_ID,
    SCENARIO_ID,
    SESSION_ID,
    TRIGGER_ID,
    Fakes,
    preflight,
    rpc_error,
    run_event,
    run_statistics,
)

RUN = f"/api/runs/{RUN_ID}"
PREFLIGHT = f"/api/projects/{PROJECT_ID}/runs/preflight"
RUNS = f"/api/projects/{PROJECT_ID}/runs"
WS = f"/api/ws/runs/{RUN_ID}"
CREATED_AT = "2025-01-02T03:04:05Z"
UPDATED_AT = "2025-01-02T03:05:06Z"
DOMAIN = "run.crucible"

CREATE = {"project_id": PROJECT_ID, "mode": "full_search", "ui_trigger_id": "btn-1"}

RUN_JSON: dict[str, Any] = {
    "id": RUN_ID,
    "project_id": PROJECT_ID,
    "mode": "full_search",
    "parameters": {
        "num_candidates": 5,
        "num_scenarios": 3,
        "seed_candidate_ids": [],
        "budget_tokens": None,
        "budget_usd": 2.5,
        "max_runtime_s": None,
        "seed_candidates": [],
    },
    "status": "RUNNING",
    "phases": ["design", "scenarios", "evaluate", "rank"],
    "trigger": {"id": TRIGGER_ID, "source": "run_config_panel", "metadata": {"browser": "firefox"}, "at": CREATED_AT},
    "ui_trigger_id": TRIGGER_ID,
    "ui_trigger_source": "run_config_panel",
    "ui_trigger_metadata": {"browser": "firefox"},
    "ui_triggered_at": CREATED_AT,
    "chat_session_id": SESSION_ID,
    "recommended_message_id": MESSAGE_ID,
    "recommended_config_snapshot": {"mode": "full_search", "status": "ready"},
    "run_summary_message_id": "",
    "counts": {"candidates": 5, "scenarios": 3, "evaluations": 14, "failed_evaluations": 1},
    "usage": {
        "input_tokens": 1000,
        "output_tokens": 500,
        "usd": 0.25,
        "calls": 22,
        "unpriced_calls": 0,
        "failed_calls": 0,
    },
    "failure_reason": "",
    "error_summary": "",
    "created_at": CREATED_AT,
    "started_at": UPDATED_AT,
    "ended_at": None,
    "duration_seconds": 61.0,
    "trace_id": "0af7651916cd43dd8448eb211c80319c",
    "replay_of_run_id": REPLAYED_RUN_ID,
    "snapshot_test_id": "suite-1",
}


def trigger_required() -> InvalidArgument:
    """What the run service answers to a CreateRun without a trigger id."""
    return InvalidArgument(
        "a run is created only by an explicit action: give ui_trigger_id",
        violations=[FieldViolation("ui_trigger_id", "required")],
        reason="TRIGGER_REQUIRED",
    )


def run_blocked() -> FailedPrecondition:
    """What the run service answers to a CreateRun whose preflight is not ready."""
    return FailedPrecondition(
        "the run cannot start: missing_problem_spec, validation_error",
        violations=[
            PreconditionViolation("missing_problem_spec", PROJECT_ID, "The project has no ProblemSpec yet."),
            PreconditionViolation(
                "validation_error", "parameters.num_candidates", "parameters.num_candidates: 1 to 50"
            ),
        ],
        reason="RUN_BLOCKED",
    )


# ---------------------------------------------------------------- refused at the boundary

INVALID = [
    # preflight
    pytest.param("POST", PREFLIGHT, {"json": {}}, "mode", id="preflight-without-mode"),
    pytest.param("POST", PREFLIGHT, {"json": {"mode": "FULL_SEARCH"}}, "mode", id="preflight-mode-in-capitals"),
    pytest.param("POST", PREFLIGHT, {"json": {"mode": "quick"}}, "mode", id="preflight-unknown-mode"),
    pytest.param(
        "POST",
        PREFLIGHT,
        {"json": {"mode": "seeded", "parameters": {"num_candidates": 2**31}}},
        "parameters.num_candidates",
        id="preflight-candidates-over-int32",
    ),
    pytest.param(
        "POST",
        PREFLIGHT,
        {"json": {"mode": "seeded", "parameters": {"num_scenarios": "three"}}},
        "parameters.num_scenarios",
        id="preflight-scenarios-not-a-number",
    ),
    pytest.param(
        "POST",
        PREFLIGHT,
        {"json": {"mode": "seeded", "parameters": {"budget_tokens": 2**63}}},
        "parameters.budget_tokens",
        id="preflight-tokens-over-int64",
    ),
    pytest.param(
        "POST",
        PREFLIGHT,
        {"json": {"mode": "seeded", "parameters": {"budget_tokens": -1}}},
        "parameters.budget_tokens",
        id="preflight-negative-tokens",
    ),
    pytest.param(
        "POST",
        PREFLIGHT,
        {
            "content": b'{"mode": "seeded", "parameters": {"budget_usd": NaN}}',
            "headers": {"content-type": "application/json"},
        },
        "parameters.budget_usd",
        id="preflight-budget-nan",
    ),
    pytest.param(
        "POST",
        PREFLIGHT,
        {"json": {"mode": "seeded", "parameters": {"max_runtime_s": 2**31}}},
        "parameters.max_runtime_s",
        id="preflight-runtime-over-int32",
    ),
    pytest.param(
        "POST",
        PREFLIGHT,
        {"json": {"mode": "seeded", "parameters": {"seed_candidate_ids": CANDIDATE_ID}}},
        "parameters.seed_candidate_ids",
        id="preflight-seeds-not-a-list",
    ),
    pytest.param(
        "POST",
        PREFLIGHT,
        {"json": {"mode": "eval_only", "parameters": {"seed_candidates": [{"title": "t" * 201}]}}},
        "parameters.seed_candidates[0].title",
        id="preflight-seed-title-too-long",
    ),
    pytest.param(
        "POST",
        PREFLIGHT,
        {"json": {"mode": "seeded", "parameters": {"num_candidate": 3}}},
        "parameters.num_candidate",
        id="preflight-unknown-parameter",
    ),
    pytest.param(
        "POST", PREFLIGHT, {"json": {"mode": "seeded", "run_now": True}}, "run_now", id="preflight-unknown-field"
    ),
    pytest.param(
        "POST",
        PREFLIGHT,
        {"json": {"mode": "seeded", "recommended_message_id": 7}},
        "recommended_message_id",
        id="preflight-message-id-number",
    ),
    # create
    pytest.param("POST", "/api/runs", {"json": {"mode": "full_search"}}, "project_id", id="create-without-project"),
    pytest.param("POST", "/api/runs", {"json": {"project_id": PROJECT_ID}}, "mode", id="create-without-mode"),
    pytest.param(
        "POST",
        "/api/runs",
        {"json": {**CREATE, "ui_trigger_source": "cli"}},
        "ui_trigger_source",
        id="create-unknown-source",
    ),
    pytest.param(
        "POST",
        "/api/runs",
        {"json": {**CREATE, "ui_trigger_source": "CLI_TOOL"}},
        "ui_trigger_source",
        id="create-source-in-capitals",
    ),
    pytest.param(
        "POST",
        "/api/runs",
        {"json": {**CREATE, "ui_trigger_metadata": ["firefox"]}},
        "ui_trigger_metadata",
        id="create-metadata-not-an-object",
    ),
    pytest.param("POST", "/api/runs", {"json": {**CREATE, "ui_trigger_id": 1}}, "ui_trigger_id", id="create-id-int"),
    pytest.param(
        "POST",
        "/api/runs",
        {"json": {**CREATE, "parameters": {"num_scenarios": -(2**31) - 1}}},
        "parameters.num_scenarios",
        id="create-scenarios-under-int32",
    ),
    pytest.param("POST", "/api/runs", {"json": {**CREATE, "execute": True}}, "execute", id="create-unknown-field"),
    # execute
    pytest.param("POST", f"{RUN}/execute", {"json": {"phases": "some"}}, "phases", id="execute-phases-word"),
    pytest.param("POST", f"{RUN}/execute", {"json": {"phases": []}}, "phases", id="execute-no-phases"),
    pytest.param(
        "POST", f"{RUN}/execute", {"json": {"phases": ["design", "deploy"]}}, "phases", id="execute-bad-phase"
    ),
    pytest.param("POST", f"{RUN}/execute", {"json": {"phases": ["DESIGN"]}}, "phases", id="execute-phase-in-capitals"),
    pytest.param("POST", f"{RUN}/execute", {"json": {"phases": ["all", "rank"]}}, "phases", id="execute-all-and-more"),
    pytest.param("POST", f"{RUN}/execute", {"json": {"force": True}}, "force", id="execute-unknown-field"),
    # list
    pytest.param("GET", f"{RUNS}?status=completed", {}, "query.status", id="list-status-lower-case"),
    pytest.param("GET", f"{RUNS}?status=DONE", {}, "query.status", id="list-unknown-status"),
    pytest.param("GET", f"{RUNS}?page_size=1001", {}, "query.page_size", id="list-page-size"),
    pytest.param("GET", f"{RUNS}?page_token={'t' * 1025}", {}, "query.page_token", id="list-page-token"),
    # cancel
    pytest.param("POST", f"{RUN}/cancel", {"json": {"reason": 1}}, "reason", id="cancel-reason-number"),
    pytest.param("POST", f"{RUN}/cancel", {"json": {"why": "x"}}, "why", id="cancel-unknown-field"),
    # what a run produced
    pytest.param("GET", f"{RUN}/candidates?page_size=-1", {}, "query.page_size", id="candidates-page-size"),
    pytest.param("GET", f"{RUN}/scenarios?page_token={'t' * 1025}", {}, "query.page_token", id="scenarios-token"),
    pytest.param(
        "GET", f"{RUN}/evaluations?candidate_id={'c' * 101}", {}, "query.candidate_id", id="evaluations-long-candidate"
    ),
    pytest.param("GET", f"{RUN}/evaluations?page_size=x", {}, "query.page_size", id="evaluations-page-size"),
]


@pytest.mark.parametrize(
    ("query", "description"),
    [("page_size=-1", "must be 0 or more"), ("page_size=1.0", "must be a whole number written in digits")],
)
async def test_a_page_size_refused_says_why(
    fakes: Fakes, http: httpx.AsyncClient, query: str, description: str
) -> None:
    response = await http.get(f"{RUN}/candidates?{query}")

    assert_refused(response, fakes, "query.page_size")
    assert response.json()["field_violations"] == [{"field": "query.page_size", "description": description}]


async def test_phases_refused_say_what_is_taken_in_one_message(fakes: Fakes, http: httpx.AsyncClient) -> None:
    response = await http.post(f"{RUN}/execute", json={"phases": ["design", "deploy"]})

    assert_refused(response, fakes, "phases")
    assert response.json()["field_violations"] == [
        {"field": "phases", "description": '"all", or a list of some of: design, scenarios, evaluate, rank'}
    ]


@pytest.mark.parametrize(("method", "url", "kwargs", "field"), INVALID)
async def test_invalid_input_is_refused_before_the_service(
    fakes: Fakes, http: httpx.AsyncClient, method: str, url: str, kwargs: dict[str, Any], field: str | None
) -> None:
    assert_refused(await http.request(method, url, **kwargs), fakes, field)


# ---------------------------------------------------------------- preflight


async def test_preflight_sends_the_configuration_and_reads_codes_and_words(
    fakes: Fakes, http: httpx.AsyncClient
) -> None:
    fakes.runs.answer("PreflightRun", preflight(ready=False))
    response = await http.post(
        PREFLIGHT,
        json={
            "mode": "seeded",
            "parameters": {
                "num_candidates": 4,
                "num_scenarios": 2,
                "seed_candidate_ids": [CANDIDATE_ID],
                "budget_tokens": 50_000,
                "budget_usd": 1.5,
                "max_runtime_s": 600,
                "seed_candidates": [{"title": "Arch", "assumptions": ["dry"]}],
            },
            "chat_session_id": SESSION_ID,
            "recommended_message_id": MESSAGE_ID,
        },
    )

    assert response.status_code == 200, response.text
    call = fakes.runs.only_call()
    assert (call.method, call.timeout) == ("PreflightRun", 10.0)
    assert call.request == run_pb.PreflightRunRequest(
        project_id=PROJECT_ID,
        mode=run_pb.RUN_MODE_SEEDED,
        parameters=run_pb.RunParameters(
            num_candidates=4,
            num_scenarios=2,
            seed_candidate_ids=[CANDIDATE_ID],
            budget_tokens=50_000,
            budget_usd=1.5,
            max_runtime_s=600,
            seed_candidates=[run_pb.CandidateDraft(title="Arch", assumptions=["dry"])],
        ),
        chat_session_id=SESSION_ID,
        recommended_message_id=MESSAGE_ID,
    )
    assert response.json() == {
        "ready": False,
        "blockers": ["missing_world_model", "validation_error"],
        "blocker_details": [
            {
                "code": "missing_world_model",
                "message": "The project has no WorldModel yet: describe it.",
                "field": "",
            },
            {
                "code": "validation_error",
                "message": "parameters.num_candidates: 1 to 50",
                "field": "parameters.num_candidates",
            },
        ],
        "warnings": ["high_budget"],
        "warning_details": [{"code": "high_budget", "message": "about $1.20"}],
        "normalized_config": {
            "mode": "full_search",
            "parameters": {
                "num_candidates": 5,
                "num_scenarios": 3,
                "seed_candidate_ids": [],
                "budget_tokens": None,
                "budget_usd": 2.5,
                "max_runtime_s": None,
                "seed_candidates": [],
            },
        },
        "prerequisites": {"problem_spec": True, "world_model": False, "seed_candidates": True},
        "notes": ["5 candidates × 3 scenarios = 15 evaluations"],
        "estimated_cost": {"tokens": 120_000, "usd": None, "calls": 22},
    }


async def test_unset_limits_stay_unset_and_zero_is_a_value(fakes: Fakes, http: httpx.AsyncClient) -> None:
    await http.post(PREFLIGHT, json={"mode": "full_search"})
    await http.post(PREFLIGHT, json={"mode": "full_search", "parameters": {"budget_tokens": 0, "budget_usd": None}})

    unset, zero = (cast(run_pb.PreflightRunRequest, c.request).parameters for c in fakes.runs.calls)
    assert unset == run_pb.RunParameters()
    assert not any(unset.HasField(f) for f in ("budget_tokens", "budget_usd", "max_runtime_s"))
    assert zero.HasField("budget_tokens")
    assert zero.budget_tokens == 0
    assert not zero.HasField("budget_usd")


async def test_a_priced_estimate_reads_in_usd(fakes: Fakes, http: httpx.AsyncClient) -> None:
    answer = preflight()
    answer.estimated_cost.usd = 0.0
    fakes.runs.answer("PreflightRun", answer)

    body = (await http.post(PREFLIGHT, json={"mode": "full_search"})).json()

    # Zero dollars priced is not "unpriced": only an unset usd is null.
    assert (body["ready"], body["blockers"], body["estimated_cost"]["usd"]) == (True, [], 0.0)


# ---------------------------------------------------------------- create


async def test_create_forwards_the_trigger_and_the_recommendation(fakes: Fakes, http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/api/runs",
        json={
            "project_id": PROJECT_ID,
            "mode": "eval_only",
            "parameters": {"num_scenarios": 4, "seed_candidate_ids": [CANDIDATE_ID]},
            "chat_session_id": SESSION_ID,
            "recommended_message_id": MESSAGE_ID,
            "ui_trigger_id": TRIGGER_ID,
            "ui_trigger_source": "cli_tool",
            "ui_trigger_metadata": {"command": "run create", "nested": {"n": 1}},
        },
    )

    assert response.status_code == 201, response.text
    assert response.json() == {**RUN_JSON, "status": "CREATED"}
    assert fakes.runs.only_call().request == run_pb.CreateRunRequest(
        project_id=PROJECT_ID,
        mode=run_pb.RUN_MODE_EVAL_ONLY,
        parameters=run_pb.RunParameters(num_scenarios=4, seed_candidate_ids=[CANDIDATE_ID]),
        chat_session_id=SESSION_ID,
        recommended_message_id=MESSAGE_ID,
        ui_trigger_id=TRIGGER_ID,
        ui_trigger_source=run_pb.TRIGGER_SOURCE_CLI_TOOL,
        ui_trigger_metadata=struct({"command": "run create", "nested": {"n": 1}}),
    )


@pytest.mark.parametrize(
    "trigger", [{}, {"ui_trigger_id": None}, {"ui_trigger_id": ""}], ids=["absent", "null", "empty"]
)
async def test_a_create_without_a_trigger_reaches_the_service_which_refuses_it(
    fakes: Fakes, http: httpx.AsyncClient, trigger: dict[str, Any]
) -> None:
    fakes.runs.fail("CreateRun", rpc_error(trigger_required(), DOMAIN))

    response = await http.post("/api/runs", json={"project_id": PROJECT_ID, "mode": "full_search", **trigger})

    body = assert_problem(response, 400, "TRIGGER_REQUIRED")
    assert body["field_violations"] == [{"field": "ui_trigger_id", "description": "required"}]
    # The one rule lives in the run service: the gateway sent the request on, trigger empty.
    assert fakes.runs.only_call().request == run_pb.CreateRunRequest(
        project_id=PROJECT_ID,
        mode=run_pb.RUN_MODE_FULL_SEARCH,
        parameters=run_pb.RunParameters(),
        ui_trigger_metadata=struct({}),
    )


async def test_a_blocked_run_is_412_with_each_blocker(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fakes.runs.fail("CreateRun", rpc_error(run_blocked(), DOMAIN))

    response = await http.post("/api/runs", json=CREATE)

    body = assert_problem(response, 412, "RUN_BLOCKED")
    assert body["grpc_code"] == "FAILED_PRECONDITION"
    assert body["precondition_violations"] == [
        {"type": "missing_problem_spec", "subject": PROJECT_ID, "description": "The project has no ProblemSpec yet."},
        {
            "type": "validation_error",
            "subject": "parameters.num_candidates",
            "description": "parameters.num_candidates: 1 to 50",
        },
    ]


# ---------------------------------------------------------------- execute, read, list, cancel


@pytest.mark.parametrize(
    ("path", "kwargs", "phases"),
    [
        pytest.param("execute", {}, [], id="no-body"),
        pytest.param("execute", {"json": {}}, [], id="empty-body"),
        pytest.param("execute", {"json": {"phases": "all"}}, [], id="all"),
        pytest.param("execute", {"json": {"phases": ["all"]}}, [], id="all-in-a-list"),
        pytest.param(
            "execute",
            {"json": {"phases": ["evaluate", "rank"]}},
            [run_pb.RUN_PHASE_EVALUATE, run_pb.RUN_PHASE_RANK],
            id="some",
        ),
        pytest.param("full-pipeline", {}, [], id="full-pipeline"),
    ],
)
async def test_execute_asks_for_the_phases(
    fakes: Fakes,
    http: httpx.AsyncClient,
    path: str,
    kwargs: dict[str, Any],
    phases: list[run_pb.RunPhase.ValueType],
) -> None:
    response = await http.post(f"{RUN}/{path}", **kwargs)

    assert response.status_code == 200, response.text
    assert response.json() == RUN_JSON
    assert fakes.runs.only_call().request == run_pb.ExecuteRunRequest(run_id=RUN_ID, phases=phases)


async def test_a_run_reads_with_every_audit_field(fakes: Fakes, http: httpx.AsyncClient) -> None:
    response = await http.get(RUN)

    assert response.json() == RUN_JSON
    assert fakes.runs.only_call().request == run_pb.GetRunRequest(run_id=RUN_ID)


async def test_what_a_fresh_run_has_not_got_reads_null(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fakes.runs.answer(
        "GetRun",
        run_pb.GetRunResponse(
            run=run_pb.Run(
                id=RUN_ID,
                project_id=PROJECT_ID,
                mode=run_pb.RUN_MODE_SEEDED,
                status=run_pb.RUN_STATUS_CREATED,
                parameters=run_pb.RunParameters(num_candidates=2, max_runtime_s=60),
            )
        ),
    )

    body = (await http.get(RUN)).json()

    assert body["parameters"]["max_runtime_s"] == 60
    nulls = ("trigger", "ui_trigger_source", "ui_triggered_at", "recommended_config_snapshot", "started_at", "ended_at")
    assert {key: body[key] for key in nulls} == dict.fromkeys(nulls)
    assert (body["status"], body["mode"], body["phases"], body["ui_trigger_id"]) == ("CREATED", "seeded", [], "")


async def test_an_unknown_run_is_404(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fakes.runs.fail("GetRun", rpc_error(NotFound(f"run {RUN_ID} not found", reason="RUN_NOT_FOUND"), DOMAIN))

    assert_problem(await http.get(RUN), 404, "RUN_NOT_FOUND")


async def test_list_filters_by_status_and_pages(fakes: Fakes, http: httpx.AsyncClient) -> None:
    response = await http.get(RUNS, params={"status": "COMPLETED", "page_size": 5, "page_token": "r1"})
    every = await http.get(RUNS)

    assert response.json() == {"runs": [RUN_JSON], "next_page_token": "r2"}
    assert every.status_code == 200
    assert [c.request for c in fakes.runs.calls] == [
        run_pb.ListRunsRequest(project_id=PROJECT_ID, status=run_pb.RUN_STATUS_COMPLETED, page_size=5, page_token="r1"),
        run_pb.ListRunsRequest(project_id=PROJECT_ID),
    ]


async def test_the_runs_of_a_project_that_does_not_exist_are_a_404(fakes: Fakes, http: httpx.AsyncClient) -> None:
    """As its chat sessions and its spec are: not an empty list for a project deleted or never made."""
    fakes.spec.fail("GetProject", rpc_error(NotFound(f"project {PROJECT_ID} not found", reason="PROJECT_NOT_FOUND")))

    assert_problem(await http.get(RUNS), 404, "PROJECT_NOT_FOUND")


async def test_cancel_passes_the_reason(fakes: Fakes, http: httpx.AsyncClient) -> None:
    with_reason = await http.post(f"{RUN}/cancel", json={"reason": "too dear"})
    without = await http.post(f"{RUN}/cancel")

    assert with_reason.json()["status"] == "CANCELLED"
    assert without.status_code == 200, without.text
    assert [c.request for c in fakes.runs.calls] == [
        run_pb.CancelRunRequest(run_id=RUN_ID, reason="too dear"),
        run_pb.CancelRunRequest(run_id=RUN_ID),
    ]


async def test_a_finished_run_cannot_be_executed_again(fakes: Fakes, http: httpx.AsyncClient) -> None:
    refusal = FailedPrecondition(
        f"run {RUN_ID} is completed; only a created run can be executed", reason="RUN_NOT_CREATED"
    )
    fakes.runs.fail("ExecuteRun", rpc_error(refusal, DOMAIN))

    assert_problem(await http.post(f"{RUN}/full-pipeline"), 412, "RUN_NOT_CREATED")


# ---------------------------------------------------------------- what a run produced


async def test_results_are_best_first_with_capital_scores(fakes: Fakes, http: httpx.AsyncClient) -> None:
    response = await http.get(f"{RUN}/results")

    assert response.json() == {
        "run_id": RUN_ID,
        "candidates": [
            {
                "candidate_id": CANDIDATE_ID,
                "title": "Battery buffer",
                "rank": 1,
                "I": 3.0,
                "P": 0.75,
                "R": 0.25,
                "label": "promising",
                "rejected": False,
                "violated_constraints": [],
                "evaluations": 3,
                "failed_evaluations": 0,
            },
            {
                "candidate_id": AGENT_RUN_ID,
                "title": "Diesel backup",
                "rank": 2,
                "I": None,
                "P": None,
                "R": None,
                "label": "rejected",
                "rejected": True,
                "violated_constraints": [{"constraint": "safety", "weight": 100, "scenarios": 2}],
                "evaluations": 2,
                "failed_evaluations": 1,
            },
        ],
    }
    assert fakes.runs.only_call().request == run_pb.GetRunResultsRequest(run_id=RUN_ID)


async def test_statistics(fakes: Fakes, http: httpx.AsyncClient) -> None:
    response = await http.get(f"{RUN}/statistics")

    assert response.json() == {
        "run_id": RUN_ID,
        "status": "COMPLETED",
        "counts": {"candidates": 2, "scenarios": 3, "evaluations": 3, "failed_evaluations": 3},
        "coverage": 0.5,
        "missing_pairs": [{"candidate_id": AGENT_RUN_ID, "scenario_id": SCENARIO_ID}],
        "duration_seconds": 61.5,
        "usage": {
            "input_tokens": 10,
            "output_tokens": 20,
            "usd": 0.5,
            "calls": 6,
            "unpriced_calls": 1,
            "failed_calls": 3,
        },
        "top_candidate": {"candidate_id": CANDIDATE_ID, "title": "Battery buffer", "I": 3.0, "P": 0.75, "R": 0.25},
        "hard_constraint_violations": 1,
        "error_summary": "3 evaluations failed",
        "failure_reason": "",
    }
    assert fakes.runs.only_call().request == run_pb.GetRunStatisticsRequest(run_id=RUN_ID)


async def test_statistics_without_a_ranked_candidate(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fakes.runs.answer("GetRunStatistics", run_pb.GetRunStatisticsResponse(statistics=run_statistics(ranked=False)))

    assert (await http.get(f"{RUN}/statistics")).json()["top_candidate"] is None


async def test_candidates_and_scenarios_page(fakes: Fakes, http: httpx.AsyncClient) -> None:
    candidates = await http.get(f"{RUN}/candidates", params={"page_size": 1, "page_token": "c1"})
    scenarios = await http.get(f"{RUN}/scenarios", params={"page_size": 2})

    assert candidates.json() == {
        "candidates": [
            {
                "id": CANDIDATE_ID,
                "run_id": RUN_ID,
                "title": "Battery buffer",
                "description": "store at night",
                "approach": "batteries",
                "assumptions": ["cheap cells"],
                "origin": "designed",
                "source_candidate_id": "",
                "created_at": CREATED_AT,
            }
        ],
        "next_page_token": "c2",
    }
    assert scenarios.json() == {
        "scenarios": [
            {
                "id": SCENARIO_ID,
                "run_id": RUN_ID,
                "title": "Heat wave",
                "description": "demand doubles",
                "conditions": ["40 C"],
                "severity": "high",
                "created_at": CREATED_AT,
            }
        ],
        "next_page_token": "s2",
    }
    assert [c.request for c in fakes.runs.calls] == [
        run_pb.ListCandidatesRequest(run_id=RUN_ID, page_size=1, page_token="c1"),
        run_pb.ListScenariosRequest(run_id=RUN_ID, page_size=2),
    ]


async def test_evaluations_of_one_candidate_keep_failures_without_scores(fakes: Fakes, http: httpx.AsyncClient) -> None:
    response = await http.get(f"{RUN}/evaluations", params={"candidate_id": CANDIDATE_ID, "page_token": "e1"})

    succeeded, failed = response.json()["evaluations"]
    assert succeeded == {
        "id": EVALUATION_ID,
        "run_id": RUN_ID,
        "candidate_id": CANDIDATE_ID,
        "scenario_id": SCENARIO_ID,
        "status": "succeeded",
        "P": {"overall": 0.75, "components": {"output": 0.5}},
        "R": {"overall": 0.25, "components": {}},
        "constraint_satisfaction": [
            {"constraint": "safety", "weight": 100, "satisfied": True, "score": 1.0, "note": "fine"}
        ],
        "explanation": "holds up",
        "failure_reason": "",
        "raw_answer": "{}",
        "llm_call_id": "call-1",
        "created_at": CREATED_AT,
    }
    assert (failed["status"], failed["P"], failed["R"]) == ("failed", None, None)
    assert (failed["failure_reason"], failed["raw_answer"]) == ("no valid JSON after 3 attempts", "I think it is fine")
    assert response.json()["next_page_token"] == "e2"
    assert fakes.runs.only_call().request == run_pb.ListEvaluationsRequest(
        run_id=RUN_ID, candidate_id=CANDIDATE_ID, page_token="e1"
    )


# ---------------------------------------------------------------- lineage

LINEAGE_JSON: dict[str, Any] = {
    "run_id": RUN_ID,
    "project_id": PROJECT_ID,
    "recommendation": {
        "message_id": MESSAGE_ID,
        "chat_session_id": SESSION_ID,
        "found": True,
        "label": "Run a full search",
        "created_at": CREATED_AT,
    },
    "recommended_config": {"mode": "full_search", "trace": {"trace_id": "a" * 32, "span_id": "1" * 16}},
    "trigger": {"id": TRIGGER_ID, "source": "run_config_panel", "metadata": {"browser": "firefox"}, "at": CREATED_AT},
    "trace_id": "c" * 32,
    "summary": {"message_id": "summary-1", "chat_session_id": "", "found": False, "label": "", "created_at": None},
    "spans": [
        {
            "role": "recommendation",
            "trace_id": "a" * 32,
            "span_id": "1" * 16,
            "found": False,
            "name": "",
            "service": "",
            "parent_span_id": "",
            "started_at": None,
            "ended_at": None,
            "links": [],
            "attributes": {},
        },
        {
            "role": "create_run",
            "trace_id": "b" * 32,
            "span_id": "2" * 16,
            "found": True,
            "name": "create run",
            "service": "crucible-run",
            "parent_span_id": "3" * 16,
            "started_at": CREATED_AT,
            "ended_at": UPDATED_AT,
            "links": [
                {
                    "trace_id": "a" * 32,
                    "span_id": "1" * 16,
                    "attributes": {"crucible.link": "recommendation", "crucible.recommendation_id": MESSAGE_ID},
                }
            ],
            "attributes": {"crucible.run_id": RUN_ID},
        },
    ],
    "spans_stored_locally": True,
    "spans_note": "spans read from .state/traces",
    "trace_span_count": 12,
    "trace_services": ["crucible-agent", "crucible-run"],
}


async def test_a_lineage_reads_the_chain_with_roles_and_links(fakes: Fakes, http: httpx.AsyncClient) -> None:
    response = await http.get(f"{RUN}/lineage")

    assert response.status_code == 200, response.text
    assert response.json() == LINEAGE_JSON
    assert fakes.runs.only_call().request == run_pb.GetRunLineageRequest(run_id=RUN_ID)


async def test_the_lineage_of_a_run_that_followed_no_recommendation_and_has_no_summary(
    fakes: Fakes, http: httpx.AsyncClient
) -> None:
    bare = run_pb.RunLineage(
        run_id=RUN_ID,
        project_id=PROJECT_ID,
        trigger=run_pb.Trigger(id=TRIGGER_ID, source=run_pb.TRIGGER_SOURCE_API_CLIENT, time=timestamp(CREATED)),
    )
    fakes.runs.answer("GetRunLineage", run_pb.GetRunLineageResponse(lineage=bare))

    body = (await http.get(f"{RUN}/lineage")).json()

    assert (body["recommendation"], body["recommended_config"], body["summary"]) == (None, None, None)
    assert (body["trace_id"], body["spans"], body["spans_stored_locally"]) == ("", [], False)


async def test_the_lineage_of_an_unknown_run_is_404(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fakes.runs.fail("GetRunLineage", rpc_error(NotFound(f"run {RUN_ID} not found", reason="RUN_NOT_FOUND"), DOMAIN))

    assert_problem(await http.get(f"{RUN}/lineage"), 404, "RUN_NOT_FOUND")


# ---------------------------------------------------------------- the names clients know


@pytest.mark.parametrize(
    ("enum", "names"),
    [
        (schemas.RUN_MODE, ("full_search", "eval_only", "seeded")),
        (schemas.RUN_STATUS, ("CREATED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED")),
        (schemas.RUN_PHASE, ("design", "scenarios", "evaluate", "rank")),
        (
            schemas.TRIGGER_SOURCE,
            ("run_config_panel", "api_client", "integration_test", "cli_tool", "snapshot_test"),
        ),
        (
            schemas.BLOCKER_CODE,
            ("missing_problem_spec", "missing_world_model", "insufficient_candidates", "validation_error"),
        ),
        (schemas.WARNING_CODE, ("high_budget", "large_candidate_count", "deprecated_mode")),
        (schemas.CANDIDATE_LABEL, ("promising", "under_test", "weak", "rejected")),
        (schemas.CANDIDATE_ORIGIN, ("designed", "seed")),
        (schemas.EVALUATION_STATUS, ("succeeded", "failed")),
        (schemas.LINEAGE_ROLE, ("recommendation", "create_run", "execution", "executor", "summary")),
    ],
    ids=repr,
)
def test_the_rest_names_are_the_ones_clients_know(enum: RestEnum[Any], names: tuple[str, ...]) -> None:
    assert enum.names == names


def test_event_types_are_dotted() -> None:
    assert schemas.EVENT_TYPE.names == tuple(
        dotted(n)
        for n in (
            "RUN_CREATED",
            "RUN_STARTED",
            "PHASE_STARTED",
            "PHASE_COMPLETED",
            "CANDIDATE_ADDED",
            "SCENARIO_ADDED",
            "EVALUATION_COMPLETED",
            "EVALUATION_FAILED",
            "RUN_RANKED",
            "RUN_COMPLETED",
            "RUN_FAILED",
            "RUN_CANCELLED",
            "SUMMARY_POSTED",
        )
    )
    assert schemas.EVENT_TYPE.name(run_pb.RUN_EVENT_TYPE_EVALUATION_COMPLETED) == "evaluation.completed"
    assert schemas.EVENT_TYPE.name(run_pb.RUN_EVENT_TYPE_SUMMARY_POSTED) == "summary.posted"


async def test_the_openapi_document_spells_scores_in_capitals(http: httpx.AsyncClient) -> None:
    components = (await http.get("/api/openapi.json")).json()["components"]["schemas"]

    assert {"I", "P", "R"} <= set(components["RankedCandidateRead"]["properties"])
    assert {"P", "R"} <= set(components["EvaluationRead"]["properties"])
    assert components["RunRead"]["properties"]["status"]["enum"] == list(schemas.RUN_STATUS.names)


# ---------------------------------------------------------------- the WebSocket


def test_the_websocket_relays_each_event_then_closes(fakes: Fakes) -> None:
    fakes.runs.events = [
        run_event(4, run_pb.RUN_EVENT_TYPE_PHASE_STARTED, {"phase": "evaluate"}),
        run_event(
            5,
            run_pb.RUN_EVENT_TYPE_EVALUATION_COMPLETED,
            {"candidate_id": CANDIDATE_ID, "scenario_id": SCENARIO_ID, "done": 1, "total": 6, "p": 0.5},
        ),
        run_event(6, run_pb.RUN_EVENT_TYPE_SUMMARY_POSTED, {"message_id": MESSAGE_ID}),
    ]

    with starlette_client(fakes) as client, client.websocket_connect(f"{WS}?after=3") as ws:
        events = [ws.receive_json() for _ in range(3)]
        closed = ws.receive()

    assert events[1] == {
        "sequence": 5,
        "run_id": RUN_ID,
        "type": "evaluation.completed",
        "data": {"candidate_id": CANDIDATE_ID, "scenario_id": SCENARIO_ID, "done": 1, "total": 6, "p": 0.5},
        "time": "2025-01-02T03:04:05+00:00",
    }
    assert [e["type"] for e in events] == ["phase.started", "evaluation.completed", "summary.posted"]
    assert closed["type"] == "websocket.close"
    assert fakes.runs.only_call().request == run_pb.WatchRunRequest(run_id=RUN_ID, after_sequence=3)


def test_a_failure_is_an_error_frame_with_the_problem(fakes: Fakes) -> None:
    fakes.runs.fail("WatchRun", rpc_error(NotFound(f"run {RUN_ID} not found", reason="RUN_NOT_FOUND"), DOMAIN))

    with starlette_client(fakes) as client, client.websocket_connect(WS) as ws:
        frame = ws.receive_json()
        closed = ws.receive()

    assert frame["type"] == "error"
    assert (frame["problem"]["status"], frame["problem"]["reason"]) == (404, "RUN_NOT_FOUND")
    assert closed["type"] == "websocket.close"


def test_a_stream_that_breaks_off_ends_with_an_error_frame(fakes: Fakes) -> None:
    fakes.runs.events = [run_event(1, run_pb.RUN_EVENT_TYPE_RUN_CREATED, {"mode": "full_search"})]
    fakes.runs.stream_failure = rpc_error(NotFound("gone", reason="RUN_NOT_FOUND"), DOMAIN)

    with starlette_client(fakes) as client, client.websocket_connect(WS) as ws:
        first, error = ws.receive_json(), ws.receive_json()

    assert (first["type"], error["type"]) == ("run.created", "error")


@pytest.mark.parametrize("after", ["-1", "x", str(2**63)])
def test_the_websocket_refuses_a_bad_position_without_calling_the_service(fakes: Fakes, after: str) -> None:
    with starlette_client(fakes) as client:
        assert_websocket_refused(client, f"{WS}?after={after}", "query.after")

    assert fakes.runs.calls == []


async def test_the_rest_routes_need_the_token_when_one_is_set(fakes: Fakes) -> None:
    async with serve(fakes, TOKEN) as http:
        refused = await http.post("/api/runs", json=CREATE)
        allowed = await http.post("/api/runs", json=CREATE, headers={"Authorization": f"Bearer {TOKEN}"})

    assert_problem(refused, 401, "UNAUTHORIZED")
    assert allowed.status_code == 201
    assert [c.method for c in fakes.calls()] == ["CreateRun"]


def test_the_websocket_needs_the_token_when_one_is_set(fakes: Fakes) -> None:
    with starlette_client(fakes, TOKEN) as client, client.websocket_connect(WS) as ws:
        error = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()

    assert error["problem"]["status"] == 401

    assert closed.value.code == 4401
    assert fakes.runs.calls == []

    with starlette_client(fakes, TOKEN) as client, client.websocket_connect(f"{WS}?token={TOKEN}") as ws:
        assert ws.receive()["type"] == "websocket.close"
