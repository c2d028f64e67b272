"""The shapes the OpenAPI document adds for what FastAPI cannot see (``schemas.documented``) match
what the services and the gateway really send: clients generate their types from these."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
from google.protobuf import struct_pb2, timestamp_pb2

from crucible.agent.v1 import sprint_service_pb2 as sprint_pb
from crucible.run.v1 import run_service_pb2 as run_pb
from crucible_gateway import errors
from crucible_gateway.schemas import chat, documented, runs, sprints
from crucible_gateway.schemas.runs import RunParameters
from crucible_run.domain import preflight as rules
from crucible_run.domain.model import CandidateLabel, ConstraintViolation, RankedCandidate, RunCounts, RunStatus
from crucible_run.domain.summary import run_rejections, run_summary, summary_metadata
from crucible_spec.domain.architect import Blocker, Preflight, RecommendationSource, RunWish, recommend
from crucible_spec.domain.model import InterviewMode, PlanningQuestion, RunMode
from crucible_spec.service_layer.planning import (
    CandidateRecord,
    InterviewError,
    InterviewMetadata,
    JudgeRecord,
    SelectedCandidate,
)
from tests.unit.gateway.fakes import turn_events
from tests.unit.run.runs import AT, a_run

NOW = datetime(2026, 11, 26, tzinfo=UTC)


async def test_the_openapi_document_names_every_documented_shape(http: httpx.AsyncClient) -> None:
    schemas = (await http.get("/api/openapi.json")).json()["components"]["schemas"]

    for name in ("Problem", "ChatMessageMetadata", "RecommendedRunConfig", "RunSummary", "InterviewRecord"):
        assert name in schemas, name
    for name in ("RunEventFrame", "SprintEventFrame", "ChatFrame", "SuiteFrame", "ErrorFrame"):
        assert name in schemas, name
    # Refs resolve, and a model the routes use too (ChatMessage) is the routes' own rendering.
    text = json.dumps(schemas)
    for ref in {part.split('"')[0] for part in text.split("#/components/schemas/")[1:]}:
        assert ref in schemas, ref
    assert schemas["ChatFrame"]["anyOf"][0] == {"$ref": "#/components/schemas/ChatMessageFrame"}


def test_a_recommendation_as_the_architect_writes_it_matches() -> None:
    source = RecommendationSource("r", "p", "s", "m", NOW)
    wish = RunWish(RunMode.FULL_SEARCH, 5, 8, "a first look")
    preflight = Preflight(
        ready=False,
        blockers=(Blocker("missing_problem_spec", "Describe the problem first.", ""),),
        warnings=("large_candidate_count",),
        mode=RunMode.FULL_SEARCH,
        parameters={
            "num_candidates": 5,
            "num_scenarios": 8,
            "seed_candidate_ids": [],
            "budget_tokens": None,
            "budget_usd": 0.5,
            "max_runtime_s": None,
        },
        prerequisites={"problem_spec": False, "world_model": True, "seed_candidates": False},
        notes=("note",),
        estimated_tokens=100,
        estimated_usd=None,
        estimated_calls=42,
    )

    for recommendation in (recommend(source, wish, preflight), recommend(source, wish, None)):
        metadata = documented.ChatMessageMetadata.model_validate(
            {"recommended_run_config": recommendation.to_json(), "architect": {"intent": "run"}}
        )
        assert metadata.recommended_run_config is not None


def test_a_run_summary_as_the_run_service_writes_it_matches() -> None:
    ranked = RankedCandidate("c1", "Arch bridge", 1, CandidateLabel.PROMISING, 1.5, 0.6, 0.4, (), 4, 0)
    broken = (ConstraintViolation("budget", 100, 2),)
    rejected = RankedCandidate("c2", "Gold bridge", 2, CandidateLabel.REJECTED, 2.0, 0.8, 0.4, broken, 2, 0)
    run = a_run(RunStatus.COMPLETED, started_at=AT)

    summary = run_summary(run, RunCounts(2, 2, 4), [ranked, rejected], AT)
    metadata = documented.ChatMessageMetadata.model_validate(
        summary_metadata(summary, run_rejections([ranked, rejected]))
    )

    assert metadata.run_summary is not None
    assert [c.I for c in metadata.run_summary.top_candidates] == [1.5]
    assert metadata.run_rejections is not None
    assert [(r.title, r.violated_constraints[0].scenarios) for r in metadata.run_rejections] == [("Gold bridge", 2)]


def test_the_interview_record_matches() -> None:
    question = PlanningQuestion("What counts as success?", "to test it")
    record = InterviewMetadata(
        mode=InterviewMode.DUAL_SUBAGENT,
        agent_run_id="a",
        candidates=(CandidateRecord("openai", "openai", "gpt-4o-mini", (question,), {"duration_ms": 3}),),
        judge=JudgeRecord("openai", "gpt-4o-mini", "sharper", False, ""),
        selected_candidate=SelectedCandidate("openai", "openai", "gpt-4o-mini"),
        errors=(InterviewError("anthropic", "anthropic", "claude", "UNAVAILABLE", "down"),),
    )

    assert documented.InterviewRecord.model_validate(record.to_json()).judge is not None


def test_problem_bodies_match() -> None:
    response = errors.problem(
        400, "bad", reason="VALIDATION_FAILED", field_violations=[{"field": "x", "description": "y"}]
    )

    problem = documented.Problem.model_validate_json(bytes(response.body))
    assert problem.field_violations[0].field == "x"


def test_the_websocket_frames_match() -> None:
    time = timestamp_pb2.Timestamp()
    time.FromDatetime(NOW)
    data = struct_pb2.Struct()
    data.update({"done": 1, "total": 4})
    run_event = run_pb.RunEvent(
        sequence=3, run_id="r", type=run_pb.RUN_EVENT_TYPE_EVALUATION_COMPLETED, data=data, time=time
    )
    sprint_event = sprint_pb.SprintEvent(
        sequence=1, sprint_id="s", type=sprint_pb.SPRINT_EVENT_TYPE_PHASE_STARTED, data=data, time=time
    )

    documented.RunEventFrame.model_validate(runs.event_json(run_event))
    documented.SprintEventFrame.model_validate(sprints.event_json(sprint_event))
    for event in turn_events("Hel", "lo"):
        documented.ChatFrame.model_validate(chat.turn_event_json(event))
    documented.ChatFrame.model_validate(
        {"type": "error", "problem": json.loads(bytes(errors.problem(404, "x", reason="NOT_FOUND").body))}
    )


def test_the_run_parameters_document_the_preflight_s_bounds() -> None:
    """Written in the gateway's words (it imports no service), checked here against the run
    service's own, so that the document cannot drift from what the preflight refuses."""
    said = {name: field.description or "" for name, field in RunParameters.model_fields.items()}

    assert f"1 to {rules.MAX_CANDIDATES}" in said["num_candidates"]
    assert f"1 to {rules.MAX_SCENARIOS}" in said["num_scenarios"]
    assert f"at most {rules.MAX_EVALUATIONS} pairs" in said["num_scenarios"]
    assert f"at most {rules.MAX_SEEDS}" in said["seed_candidate_ids"]
    assert f"At least {rules.MIN_BUDGET_TOKENS}" in said["budget_tokens"]
    assert f"at most {rules.MAX_BUDGET_USD:g}" in said["budget_usd"]
    assert f"{rules.MIN_RUNTIME_S} to {rules.MAX_RUNTIME_S}" in said["max_runtime_s"]
