"""/api/specs over the fake spec service."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from crucible.spec.v1 import spec_service_pb2 as spec_pb
from tests.unit.gateway.conftest import assert_refused
from tests.unit.gateway.fakes import SPEC_ID, Fakes

SPECS = "/api/specs"

INVALID = [
    pytest.param("POST", SPECS, {"json": {}}, "task", id="create-without-task"),
    pytest.param("POST", SPECS, {"json": {"task": "x", "mode": "dual"}}, "mode", id="create-unknown-mode"),
    pytest.param("POST", SPECS, {"json": {"task": "x", "max_questions": 2**31}}, "max_questions", id="questions-int32"),
    pytest.param("POST", SPECS, {"json": {"task": "x", "max_questions": "many"}}, "max_questions", id="questions-text"),
    pytest.param("POST", SPECS, {"json": {"task": "x", "owner": "y"}}, "owner", id="create-unknown-field"),
    pytest.param("GET", f"{SPECS}?page_size=-1", {}, "query.page_size", id="list-negative-page-size"),
    pytest.param("POST", f"{SPECS}/{SPEC_ID}/answers", {"json": {}}, "answers", id="answers-missing"),
    pytest.param(
        "POST",
        f"{SPECS}/{SPEC_ID}/answers",
        {"json": {"answers": [{"question": "q"}]}},
        "answers[0].answer",
        id="no-answer",
    ),
    pytest.param("POST", f"{SPECS}/{SPEC_ID}/answers", {"json": {"answers": "all"}}, "answers", id="answers-text"),
]


@pytest.mark.parametrize(("method", "url", "kwargs", "field"), INVALID)
async def test_invalid_input_is_refused_before_the_service(
    fakes: Fakes, http: httpx.AsyncClient, method: str, url: str, kwargs: dict[str, Any], field: str | None
) -> None:
    assert_refused(await http.request(method, url, **kwargs), fakes, field)


@pytest.mark.parametrize(
    ("mode", "number"),
    [
        ("dual_subagent", spec_pb.INTERVIEW_MODE_DUAL_SUBAGENT),
        ("single", spec_pb.INTERVIEW_MODE_SINGLE),
        ("stub", spec_pb.INTERVIEW_MODE_STUB),
    ],
)
async def test_create_runs_the_interview_with_the_mode_asked(
    fakes: Fakes, http: httpx.AsyncClient, mode: str, number: spec_pb.InterviewMode.ValueType
) -> None:
    response = await http.post(SPECS, json={"task": "Print hello", "title": "Hello", "max_questions": 3, "mode": mode})

    assert response.status_code == 201
    call = fakes.spec.only_call()
    # The interview waits for models: the longer deadline.
    assert call.timeout == 900.0
    assert call.request == spec_pb.CreateSpecWithPlanningRequest(
        task="Print hello", title="Hello", max_questions=3, mode=number
    )


async def test_the_interview_mode_defaults_to_two_subagents(fakes: Fakes, http: httpx.AsyncClient) -> None:
    await http.post(SPECS, json={"task": "Print hello"})

    assert fakes.spec.only_call().request == spec_pb.CreateSpecWithPlanningRequest(
        task="Print hello", mode=spec_pb.INTERVIEW_MODE_DUAL_SUBAGENT
    )


async def test_a_spec_reads_in_the_seeds_shape(fakes: Fakes, http: httpx.AsyncClient) -> None:
    body = (await http.get(f"{SPECS}/{SPEC_ID}")).json()

    assert set(body) == {"id", "status", "task", "title", "artifacts", "created_at", "updated_at"}
    assert body["status"] == "draft"
    assert body["artifacts"]["planning"] == {
        "status": "needs_answers",
        "questions": [{"question": "Which language?", "rationale": "it matters"}],
        "answers": [{"question": "Which language?", "answer": "Python"}],
        "metadata": {"mode": "stub"},
    }
    assert fakes.spec.only_call().request == spec_pb.GetSpecRequest(spec_id=SPEC_ID)


async def test_list(fakes: Fakes, http: httpx.AsyncClient) -> None:
    body = (await http.get(SPECS, params={"page_size": 1, "page_token": "t"})).json()

    assert [s["id"] for s in body["specs"]] == [SPEC_ID]
    assert fakes.spec.only_call().request == spec_pb.ListSpecsRequest(page_size=1, page_token="t")


async def test_save_answers(fakes: Fakes, http: httpx.AsyncClient) -> None:
    response = await http.post(
        f"{SPECS}/{SPEC_ID}/answers", json={"answers": [{"question": "Which language?", "answer": "Python"}]}
    )

    body = response.json()
    assert (body["spec"]["artifacts"]["planning"]["status"], body["unanswered_questions"]) == ("answered", [])
    assert fakes.spec.only_call().request == spec_pb.SavePlanningAnswersRequest(
        spec_id=SPEC_ID, answers=[spec_pb.PlanningAnswer(question="Which language?", answer="Python")]
    )
