"""Specs and their planning interview: handlers on fakes, the agent client on a fake stub."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any, cast

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from crucible.agent.v1 import agent_service_pb2 as agent_pb
from crucible.spec.v1 import spec_service_pb2 as pb
from crucible_common.errors import CrucibleError, InvalidArgument, ValidationFailed
from crucible_common.protobuf import struct, struct_to_dict
from crucible_spec.adapters.agent_client import AgentPlanningInterviewer, PlanningModels, planning_schema
from crucible_spec.domain.errors import (
    PlanningInterviewFailed,
    PlanningInterviewUnavailable,
    SpecNotFound,
    SpecValidated,
    UnknownQuestions,
)
from crucible_spec.domain.model import (
    InterviewMode,
    PlanningAnswer,
    PlanningQuestion,
    PlanningStatus,
    SpecStatus,
)
from crucible_spec.domain.validation import MAX_TASK, MAX_TITLE
from crucible_spec.entrypoints.grpc_servicer import SpecServicer
from crucible_spec.service_layer import commands as c
from crucible_spec.service_layer import handlers as h
from crucible_spec.service_layer.planning import (
    CandidateRecord,
    InterviewMetadata,
    InterviewRequest,
    InterviewResult,
    JudgeRecord,
    PlanningInterviewer,
    SelectedCandidate,
    stub_interview,
)
from tests.unit.spec.fakes import FakeChanges, FakeSprintCreator, FakeUnitOfWork, turn_deps

TASK = "Create a Python script that prints 'hello world' to stdout."
QUESTIONS = (
    PlanningQuestion("Should it print exactly 'hello world'?", "The exact text decides the test."),
    PlanningQuestion("Which Python version?", "It limits the syntax."),
    PlanningQuestion("Where should the script live?", "The layout decides where tests go."),
)


class FakeInterviewer(PlanningInterviewer):
    def __init__(self, questions: tuple[PlanningQuestion, ...] = QUESTIONS, error: CrucibleError | None = None) -> None:
        self.questions = questions
        self.error = error
        self.requests: list[InterviewRequest] = []

    async def interview(self, request: InterviewRequest) -> InterviewResult:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        candidate = CandidateRecord("openai", "openai", "gpt-4o-mini", self.questions, {"duration_ms": 12})
        return InterviewResult(
            self.questions,
            InterviewMetadata(
                mode=request.mode,
                agent_run_id="run-1",
                candidates=(candidate,),
                judge=JudgeRecord("openai", "gpt-4o-mini", "the sharpest set", False, ""),
                selected_candidate=SelectedCandidate("openai", "openai", "gpt-4o-mini"),
            ),
        )


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


@pytest.fixture
def interviewer() -> FakeInterviewer:
    return FakeInterviewer()


def fields(error: CrucibleError) -> list[str]:
    assert isinstance(error, InvalidArgument)
    return [v.field for v in error.violations]


async def answer_all(uow: FakeUnitOfWork, spec_id: str) -> None:
    answers = tuple(PlanningAnswer(q.question, "yes") for q in QUESTIONS)
    await h.save_planning_answers(c.SavePlanningAnswers(spec_id, answers), uow)


# ---------------------------------------------------------------- create


async def test_create_stores_a_draft_that_needs_answers(uow: FakeUnitOfWork, interviewer: FakeInterviewer) -> None:
    spec = await h.create_spec_with_planning(c.CreateSpecWithPlanning(f"  {TASK}\n"), uow, interviewer)

    assert uow.committed
    assert (spec.status, spec.task) == (SpecStatus.DRAFT, TASK)
    assert spec.planning.status is PlanningStatus.NEEDS_ANSWERS
    assert spec.planning.questions == QUESTIONS
    assert spec.planning.answers == ()
    assert spec.planning.metadata["mode"] == "dual_subagent"
    assert spec.planning.metadata["selected_candidate"] == {
        "name": "openai",
        "provider": "openai",
        "model_name": "gpt-4o-mini",
    }
    [request] = interviewer.requests
    assert (request.spec_id, request.task, request.max_questions, request.mode) == (
        spec.id,
        TASK,
        5,
        InterviewMode.DUAL_SUBAGENT,
    )
    assert await h.get_spec(c.GetSpec(spec.id), uow) == spec
    assert spec.artifacts() == {
        "planning": {
            "status": "needs_answers",
            "questions": [{"question": q.question, "rationale": q.rationale} for q in QUESTIONS],
            "answers": [],
            "metadata": spec.planning.metadata,
        }
    }


async def test_the_title_defaults_to_the_first_words_of_the_task(
    uow: FakeUnitOfWork, interviewer: FakeInterviewer
) -> None:
    derived = await h.create_spec_with_planning(c.CreateSpecWithPlanning(TASK), uow, interviewer)
    given = await h.create_spec_with_planning(c.CreateSpecWithPlanning(TASK, title="  Hello  "), uow, interviewer)
    long_word = await h.create_spec_with_planning(c.CreateSpecWithPlanning("x" * 500), uow, interviewer)

    assert derived.title == "Create a Python script that prints 'hello world'..."
    assert given.title == "Hello"
    assert len(long_word.title) <= MAX_TITLE
    assert long_word.title.endswith("...")
    assert h.default_title("Add two numbers") == "Add two numbers"


async def test_create_lists_every_violation_and_asks_no_model(
    uow: FakeUnitOfWork, interviewer: FakeInterviewer
) -> None:
    with pytest.raises(ValidationFailed) as info:
        await h.create_spec_with_planning(
            c.CreateSpecWithPlanning(" ", title="t" * (MAX_TITLE + 1), max_questions=11), uow, interviewer
        )
    assert fields(info.value) == ["task", "title", "max_questions"]

    with pytest.raises(ValidationFailed) as too_long:
        await h.create_spec_with_planning(
            c.CreateSpecWithPlanning("x" * (MAX_TASK + 1), max_questions=-1), uow, interviewer
        )
    assert fields(too_long.value) == ["task", "max_questions"]
    assert interviewer.requests == []
    assert uow.repo.tables.specs == {}


@pytest.mark.parametrize(("given", "asked"), [(0, 5), (1, 1), (10, 10)])
async def test_max_questions_is_passed_on(
    uow: FakeUnitOfWork, interviewer: FakeInterviewer, given: int, asked: int
) -> None:
    await h.create_spec_with_planning(
        c.CreateSpecWithPlanning(TASK, max_questions=given, mode=InterviewMode.SINGLE), uow, interviewer
    )

    assert [(r.max_questions, r.mode) for r in interviewer.requests] == [(asked, InterviewMode.SINGLE)]


async def test_stub_mode_asks_no_model_and_is_deterministic(uow: FakeUnitOfWork, interviewer: FakeInterviewer) -> None:
    first = await h.create_spec_with_planning(
        c.CreateSpecWithPlanning(TASK, max_questions=4, mode=InterviewMode.STUB), uow, interviewer
    )
    second = await h.create_spec_with_planning(
        c.CreateSpecWithPlanning(TASK, max_questions=4, mode=InterviewMode.STUB), uow, interviewer
    )

    assert interviewer.requests == []
    assert len(first.planning.questions) == 4
    assert first.planning.questions == second.planning.questions
    assert all("Create a Python script" in q.question and q.rationale for q in first.planning.questions)
    assert first.planning.metadata == {
        "mode": "stub",
        "agent_run_id": None,
        "llm_call_id": None,
        "candidates": [],
        "judge": None,
        "selected_candidate": None,
        "errors": [],
    }


def test_stub_questions_are_distinct_up_to_ten() -> None:
    questions = stub_interview("Sort a list", 10).questions

    assert len({q.question for q in questions}) == 10
    assert len(stub_interview("Sort a list", 3).questions) == 3


async def test_a_failed_interview_stores_nothing(uow: FakeUnitOfWork) -> None:
    failing = FakeInterviewer(error=PlanningInterviewUnavailable("the agent service is down"))

    with pytest.raises(PlanningInterviewUnavailable) as info:
        await h.create_spec_with_planning(c.CreateSpecWithPlanning(TASK), uow, failing)

    assert info.value.reason == "PLANNING_INTERVIEW_FAILED"
    assert info.value.code is grpc.StatusCode.UNAVAILABLE
    assert uow.repo.tables.specs == {}


async def test_blank_and_repeated_questions_are_dropped_and_the_limit_kept(uow: FakeUnitOfWork) -> None:
    proposed = (
        PlanningQuestion("  Which Python version? ", " It limits the syntax. "),
        PlanningQuestion("Which Python version?", "again"),
        PlanningQuestion("   ", "blank"),
        *QUESTIONS,
    )
    spec = await h.create_spec_with_planning(
        c.CreateSpecWithPlanning(TASK, max_questions=2), uow, FakeInterviewer(proposed)
    )

    assert spec.planning.questions == (
        PlanningQuestion("Which Python version?", "It limits the syntax."),
        QUESTIONS[0],
    )

    with pytest.raises(PlanningInterviewFailed):
        await h.create_spec_with_planning(
            c.CreateSpecWithPlanning(TASK), uow, FakeInterviewer((PlanningQuestion(" ", "r"),))
        )


# ---------------------------------------------------------------- answers


async def test_answers_merge_and_planning_is_answered_when_every_question_is(
    uow: FakeUnitOfWork, interviewer: FakeInterviewer
) -> None:
    spec = await h.create_spec_with_planning(c.CreateSpecWithPlanning(TASK), uow, interviewer)
    q0, q1, q2 = (q.question for q in QUESTIONS)

    partial = await h.save_planning_answers(
        c.SavePlanningAnswers(spec.id, (PlanningAnswer(q2, "src/hello.py"), PlanningAnswer(q0, "yes"))), uow
    )
    assert partial.planning.status is PlanningStatus.NEEDS_ANSWERS
    assert partial.planning.unanswered() == (q1,)
    assert [a.question for a in partial.planning.answers] == [q0, q2]

    done = await h.save_planning_answers(
        c.SavePlanningAnswers(spec.id, (PlanningAnswer(q1, "3.12"), PlanningAnswer(q0, "yes, lower case"))), uow
    )
    assert done.planning.status is PlanningStatus.ANSWERED
    assert done.planning.unanswered() == ()
    assert done.planning.answers == (
        PlanningAnswer(q0, "yes, lower case"),
        PlanningAnswer(q1, "3.12"),
        PlanningAnswer(q2, "src/hello.py"),
    )
    assert done.updated_at >= spec.updated_at
    assert done.status is SpecStatus.DRAFT
    assert await h.get_spec(c.GetSpec(spec.id), uow) == done


async def test_unknown_questions_are_each_listed_and_nothing_changes(
    uow: FakeUnitOfWork, interviewer: FakeInterviewer
) -> None:
    spec = await h.create_spec_with_planning(c.CreateSpecWithPlanning(TASK), uow, interviewer)
    answers = (
        PlanningAnswer("Who is it for?", "me"),
        PlanningAnswer(QUESTIONS[0].question, "yes"),
        PlanningAnswer("which python version?", "3.12"),
    )

    with pytest.raises(UnknownQuestions) as info:
        await h.save_planning_answers(c.SavePlanningAnswers(spec.id, answers), uow)

    assert info.value.reason == "UNKNOWN_QUESTION"
    assert fields(info.value) == ["answers[0].question", "answers[2].question"]
    assert "Who is it for?" in info.value.violations[0].description
    assert await h.get_spec(c.GetSpec(spec.id), uow) == spec


async def test_answers_are_validated_before_anything_is_read(uow: FakeUnitOfWork) -> None:
    missing = str(uuid.uuid4())
    with pytest.raises(ValidationFailed) as info:
        await h.save_planning_answers(
            c.SavePlanningAnswers(
                missing,
                (PlanningAnswer("q", " "), PlanningAnswer("", "a"), PlanningAnswer("q", "again")),
            ),
            uow,
        )
    assert fields(info.value) == ["answers[0].answer", "answers[1].question", "answers[2].question"]

    with pytest.raises(ValidationFailed) as none:
        await h.save_planning_answers(c.SavePlanningAnswers(missing, ()), uow)
    assert fields(none.value) == ["answers"]

    with pytest.raises(SpecNotFound) as not_found:
        await h.save_planning_answers(c.SavePlanningAnswers(missing, (PlanningAnswer("q", "a"),)), uow)
    assert not_found.value.reason == "SPEC_NOT_FOUND"


async def test_a_validated_spec_refuses_answers(uow: FakeUnitOfWork, interviewer: FakeInterviewer) -> None:
    spec = await h.create_spec_with_planning(c.CreateSpecWithPlanning(TASK), uow, interviewer)
    await uow.repo.save_spec(replace(spec, status=SpecStatus.VALIDATED))

    with pytest.raises(SpecValidated) as info:
        await answer_all(uow, spec.id)

    assert (info.value.code, info.value.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "SPEC_VALIDATED")


# ---------------------------------------------------------------- get and list


async def test_get_spec_errors(uow: FakeUnitOfWork) -> None:
    with pytest.raises(SpecNotFound):
        await h.get_spec(c.GetSpec(str(uuid.uuid4())), uow)
    with pytest.raises(InvalidArgument) as info:
        await h.get_spec(c.GetSpec("not-a-uuid"), uow)
    assert info.value.reason == "INVALID_ID"


async def test_list_specs_pages_newest_first(uow: FakeUnitOfWork, interviewer: FakeInterviewer) -> None:
    created = [
        await h.create_spec_with_planning(c.CreateSpecWithPlanning(f"task {i}"), uow, interviewer) for i in range(5)
    ]
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await h.list_specs(c.ListSpecs(page_size=2, page_token=token), uow)
        seen.extend(s.id for s in page.items)
        pages += 1
        token = page.next_page_token
        if not token:
            break

    assert pages == 3
    newest_first = sorted(created, key=lambda s: (s.created_at, s.id), reverse=True)
    assert seen == [s.id for s in newest_first]
    with pytest.raises(InvalidArgument) as info:
        await h.list_specs(c.ListSpecs(page_token="garbage"), uow)
    assert info.value.reason == "INVALID_PAGE_TOKEN"


# ---------------------------------------------------------------- the thin servicer


async def test_servicer_maps_specs_both_typed_and_as_artifacts(
    uow: FakeUnitOfWork, interviewer: FakeInterviewer
) -> None:
    servicer = SpecServicer(
        lambda: uow,
        interviewer=interviewer,
        sprints=FakeSprintCreator(),
        turns=turn_deps(uow.repo),
        project_changes=FakeChanges(),
    )
    context: Any = None

    created = await servicer.CreateSpecWithPlanning(
        pb.CreateSpecWithPlanningRequest(task=TASK, max_questions=3, mode=pb.INTERVIEW_MODE_SINGLE), context
    )
    spec = created.spec
    assert spec.status == pb.SPEC_STATUS_DRAFT
    assert spec.planning.status == pb.PLANNING_STATUS_NEEDS_ANSWERS
    assert [q.question for q in spec.planning.questions] == [q.question for q in QUESTIONS]
    artifacts = struct_to_dict(spec.artifacts)
    assert artifacts["planning"]["status"] == "needs_answers"
    assert artifacts["planning"]["metadata"] == struct_to_dict(spec.planning.metadata)
    assert interviewer.requests[0].mode is InterviewMode.SINGLE

    answered = await servicer.SavePlanningAnswers(
        pb.SavePlanningAnswersRequest(
            spec_id=spec.id, answers=[pb.PlanningAnswer(question=QUESTIONS[0].question, answer="yes")]
        ),
        context,
    )
    assert list(answered.unanswered_questions) == [QUESTIONS[1].question, QUESTIONS[2].question]
    assert answered.spec.planning.status == pb.PLANNING_STATUS_NEEDS_ANSWERS

    with pytest.raises(InvalidArgument) as info:
        await servicer.CreateSpecWithPlanning(
            pb.CreateSpecWithPlanningRequest(task=TASK, mode=cast(pb.InterviewMode.ValueType, 99)), context
        )
    assert info.value.reason == "UNKNOWN_ENUM_VALUE"

    listed = await servicer.ListSpecs(pb.ListSpecsRequest(), context)
    assert [s.id for s in listed.specs] == [spec.id]
    assert (await servicer.GetSpec(pb.GetSpecRequest(spec_id=spec.id), context)).spec == answered.spec


# ---------------------------------------------------------------- the agent client


SCHEMA = "planning_questions"
MODELS = PlanningModels("gpt-4o-mini", "claude-haiku-4-5", "openai", "gpt-4o-mini")


def rpc_error(code: grpc.StatusCode, message: str, reason: str = "") -> grpc.aio.AioRpcError:
    trailing = grpc.aio.Metadata()
    if reason:
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.ErrorInfo(reason=reason, domain="agent.crucible"))
        status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
        trailing = grpc.aio.Metadata(("grpc-status-details-bin", status.SerializeToString()))
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details=message)


class FakeAgentStub:
    def __init__(self, answer: Any = None, error: grpc.aio.AioRpcError | None = None) -> None:
        self.answer = answer
        self.error = error
        self.calls: list[Any] = []

    async def _respond(self, request: Any, timeout: float | None = None) -> Any:
        self.calls.append(request)
        if self.error is not None:
            raise self.error
        return self.answer

    ExecuteAgentRun = _respond
    Complete = _respond


def questions_struct(*texts: str) -> Any:
    return struct({"questions": [{"question": t, "rationale": f"why {t}"} for t in texts]})


def run_response(
    status: int = agent_pb.AGENT_RUN_STATUS_COMPLETED, decided: str | None = "c-anthropic", fallback: bool = False
) -> agent_pb.ExecuteAgentRunResponse:
    result = agent_pb.AgentRunResult(
        run=agent_pb.AgentRun(
            id="run-7",
            status=cast(agent_pb.AgentRunStatus.ValueType, status),
            judge=agent_pb.JudgeConfig(provider="openai", model_name="gpt-4o-mini"),
            failure_reason="" if status == agent_pb.AGENT_RUN_STATUS_COMPLETED else "every subagent failed",
        ),
        candidates=[
            agent_pb.Candidate(
                id="c-openai",
                name="openai",
                provider="openai",
                model_name="gpt-4o-mini",
                structured=questions_struct("A?", "B?"),
                metrics=agent_pb.CandidateMetrics(duration_ms=5, attempts=1, response_model="gpt-4o-mini"),
            ),
            agent_pb.Candidate(
                id="c-anthropic",
                name="anthropic",
                provider="anthropic",
                model_name="claude-haiku-4-5",
                structured=questions_struct("C?"),
                metrics=agent_pb.CandidateMetrics(duration_ms=7, usd=0.001, attempts=2, response_model="claude"),
            ),
        ]
        if status == agent_pb.AGENT_RUN_STATUS_COMPLETED
        else [],
        errors=[]
        if status == agent_pb.AGENT_RUN_STATUS_COMPLETED
        else [
            agent_pb.SubagentError(name="openai", provider="openai", reason="PROVIDER_UNAVAILABLE", message="503"),
            agent_pb.SubagentError(name="anthropic", provider="anthropic", reason="PROVIDER_UNAVAILABLE"),
        ],
    )
    if decided is not None:
        result.decision.CopyFrom(
            agent_pb.Decision(
                candidate_id=decided,
                candidate_name=decided.removeprefix("c-"),
                provider="" if fallback else "openai",
                model_name="" if fallback else "gpt-4o-mini",
                rationale="C is sharper",
                fallback=fallback,
                fallback_reason="judge_failed: X" if fallback else "",
            )
        )
    return agent_pb.ExecuteAgentRunResponse(result=result)


def client(stub: FakeAgentStub) -> AgentPlanningInterviewer:
    return AgentPlanningInterviewer(cast(Any, stub), MODELS, timeout=30)


def request(mode: InterviewMode = InterviewMode.DUAL_SUBAGENT) -> InterviewRequest:
    return InterviewRequest("spec-1", TASK, 3, mode)


async def test_dual_interview_asks_two_providers_and_records_the_judges_choice() -> None:
    stub = FakeAgentStub(run_response())

    result = await client(stub).interview(request())

    [call] = stub.calls
    assert [(s.name, s.provider, s.model_name) for s in call.subagents] == [
        ("openai", "openai", "gpt-4o-mini"),
        ("anthropic", "anthropic", "claude-haiku-4-5"),
    ]
    assert all("at most 3" in s.system_prompt for s in call.subagents)
    assert (call.judge.provider, call.judge.model_name) == ("openai", "gpt-4o-mini")
    assert call.judge.instructions
    assert call.schema_name == "planning_questions"
    assert struct_to_dict(call.json_schema) == planning_schema(3)
    assert call.correlation.purpose == "planning_interview"
    assert struct_to_dict(call.metadata)["spec_id"] == "spec-1"
    assert TASK in call.message

    assert result.questions == (PlanningQuestion("C?", "why C?"),)
    meta = result.metadata.to_json()
    assert meta["mode"] == "dual_subagent"
    assert meta["agent_run_id"] == "run-7"
    assert [(x["provider"], x["questions"][0]["question"]) for x in meta["candidates"]] == [
        ("openai", "A?"),
        ("anthropic", "C?"),
    ]
    assert meta["candidates"][1]["metrics"] == {
        "duration_ms": 7,
        "input_tokens": 0,
        "output_tokens": 0,
        "usd": 0.001,
        "attempts": 2,
        "response_model": "claude",
    }
    # Unpriced is unknown, not free.
    assert meta["candidates"][0]["metrics"]["usd"] is None
    assert meta["judge"] == {
        "provider": "openai",
        "model_name": "gpt-4o-mini",
        "rationale": "C is sharper",
        "fallback": False,
        "fallback_reason": "",
    }
    assert meta["selected_candidate"] == {
        "name": "anthropic",
        "provider": "anthropic",
        "model_name": "claude-haiku-4-5",
    }
    assert meta["errors"] == []


async def test_a_fallback_decision_keeps_the_configured_judge_and_says_so() -> None:
    result = await client(FakeAgentStub(run_response(decided="c-openai", fallback=True))).interview(request())

    judge = result.metadata.to_json()["judge"]
    assert (judge["model_name"], judge["fallback"], judge["fallback_reason"]) == (
        "gpt-4o-mini",
        True,
        "judge_failed: X",
    )
    assert [q.question for q in result.questions] == ["A?", "B?"]


async def test_a_failed_agent_run_is_a_planning_failure() -> None:
    stub = FakeAgentStub(run_response(status=agent_pb.AGENT_RUN_STATUS_FAILED, decided=None))

    with pytest.raises(PlanningInterviewUnavailable) as info:
        await client(stub).interview(request())

    assert info.value.reason == "PLANNING_INTERVIEW_FAILED"
    assert "every subagent failed" in info.value.message
    assert info.value.metadata["agent_run_id"] == "run-7"


async def test_single_interview_is_one_structured_completion() -> None:
    answer = agent_pb.CompleteResponse(
        structured=questions_struct("A?"),
        llm_call_id="call-1",
        latency_ms=42,
        response_model="gpt-4o-mini-2024",
        usage=agent_pb.Usage(input_tokens=10, output_tokens=20, usd=0.001, calls=1),
    )
    stub = FakeAgentStub(answer)

    result = await client(stub).interview(request(InterviewMode.SINGLE))

    [call] = stub.calls
    assert (call.model.provider, call.model.model_name, call.schema_name) == ("openai", "gpt-4o-mini", SCHEMA)
    assert [m.role for m in call.messages] == [agent_pb.ROLE_SYSTEM, agent_pb.ROLE_USER]
    meta = result.metadata.to_json()
    assert (meta["mode"], meta["llm_call_id"], meta["judge"]) == ("single", "call-1", None)
    assert meta["selected_candidate"] == {"name": "openai", "provider": "openai", "model_name": "gpt-4o-mini"}
    assert meta["candidates"][0]["metrics"]["duration_ms"] == 42
    assert result.questions == (PlanningQuestion("A?", "why A?"),)


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        (grpc.StatusCode.UNAVAILABLE, "", PlanningInterviewUnavailable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "", PlanningInterviewUnavailable),
        (grpc.StatusCode.FAILED_PRECONDITION, "PROVIDER_NOT_CONFIGURED", PlanningInterviewFailed),
        (grpc.StatusCode.INTERNAL, "STRUCTURED_OUTPUT_INVALID", PlanningInterviewFailed),
    ],
)
async def test_agent_errors_become_planning_errors(
    code: grpc.StatusCode, reason: str, expected: type[CrucibleError]
) -> None:
    stub = FakeAgentStub(error=rpc_error(code, "it went wrong", reason))

    for mode in (InterviewMode.DUAL_SUBAGENT, InterviewMode.SINGLE):
        with pytest.raises(expected) as info:
            await client(stub).interview(request(mode))
        assert info.value.reason == "PLANNING_INTERVIEW_FAILED"
        assert info.value.metadata["agent_code"] == code.name
        assert info.value.metadata.get("agent_reason", "") == reason
        assert "it went wrong" in info.value.message


async def test_an_answer_without_questions_fails_loudly() -> None:
    stub = FakeAgentStub(agent_pb.CompleteResponse(structured=struct({"questions": "none"})))

    with pytest.raises(PlanningInterviewFailed):
        await client(stub).interview(request(InterviewMode.SINGLE))
