"""Specs with a planning interview: the real spec service and the real agent service over gRPC.

The spec service (servicer, interceptors, repositories, the agent client) runs on a free port
against a real, migrated Postgres; it calls the real agent service (gRPC on a free port), whose
providers are the official SDKs talking to the in-process offline emulator.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast

import grpc
import pytest
from grpc_status import rpc_status
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from crucible.agent.v1 import agent_service_pb2 as agent_pb
from crucible.agent.v1 import agent_service_pb2_grpc as agent_pb_grpc
from crucible.spec.v1 import spec_service_pb2 as pb
from crucible.spec.v1 import spec_service_pb2_grpc as pb_grpc
from crucible_agent import bootstrap as agent_bootstrap
from crucible_agent.entrypoints.grpc_servicer import AgentServicer
from crucible_common.database import create_engine, migrate
from crucible_common.errors import StatusDetails, decode_status
from crucible_common.grpc_server import ServiceDefinition, create_server
from crucible_common.protobuf import struct_to_dict
from crucible_spec import bootstrap as spec_bootstrap
from crucible_spec.config import SpecSettings
from tests.conftest import free_port
from tests.integration.agent_fixtures import Emulator, agent_core, agent_settings, serve_emulator

if TYPE_CHECKING:  # the async stub types exist only in the generated .pyi
    from crucible.agent.v1.agent_service_pb2_grpc import AgentServiceAsyncStub
    from crucible.spec.v1.spec_service_pb2_grpc import SpecServiceAsyncStub

pytestmark = pytest.mark.integration

TASK = "Create a Python script that prints 'hello world' to stdout."
TITLE = "Hello World Integration Test"


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """Both schemas, migrated as the services migrate them at start-up."""
    engine = create_engine(database_url, pool_size=8)
    await migrate(engine, schema="agent", script_location=agent_bootstrap.MIGRATIONS)
    await migrate(engine, schema="spec", script_location=spec_bootstrap.MIGRATIONS)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
async def emulator() -> AsyncIterator[Emulator]:
    async with serve_emulator() as running:
        yield running


@pytest.fixture(scope="module")
async def agent_addr(engine: AsyncEngine, emulator: Emulator) -> AsyncIterator[str]:
    """The real agent service on a free loopback port, its providers pointed at the emulator."""
    async with agent_core(engine, agent_settings(emulator)) as core:
        servicer = AgentServicer(core.llm, core.runner, core.uow, core.calls)
        definition = ServiceDefinition(
            "crucible.agent.v1.AgentService",
            lambda server: agent_pb_grpc.add_AgentServiceServicer_to_server(servicer, server),
        )
        server, port, _ = create_server("127.0.0.1:0", [definition], domain="agent.crucible")
        await server.start()
        try:
            yield f"127.0.0.1:{port}"
        finally:
            await server.stop(None)


@contextlib.asynccontextmanager
async def spec_service(database_url: str, agent_addr: str) -> AsyncIterator[SpecServiceAsyncStub]:
    """The spec service as its composition root builds it, calling the agent service at ``agent_addr``."""
    settings = SpecSettings(database_url=database_url, spec_addr="127.0.0.1:0", agent_addr=agent_addr)
    process = spec_bootstrap.build(settings)
    server, port, _ = create_server(settings.spec_addr, process.definitions, domain="spec.crucible")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield pb_grpc.SpecServiceStub(channel)
    finally:
        await server.stop(None)
        for close in process.closers:
            await close()
        await process.engine.dispose()


@pytest.fixture(scope="module")
async def stub(database_url: str, engine: AsyncEngine, agent_addr: str) -> AsyncIterator[SpecServiceAsyncStub]:
    async with spec_service(database_url, agent_addr) as running:
        yield running


@pytest.fixture(scope="module")
async def agent(agent_addr: str) -> AsyncIterator[AgentServiceAsyncStub]:
    async with grpc.aio.insecure_channel(agent_addr) as channel:
        yield agent_pb_grpc.AgentServiceStub(channel)


@pytest.fixture
async def calm(emulator: Emulator) -> None:
    await emulator.configure()  # no faults, no latency


async def error_of(call: object) -> StatusDetails:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    error = info.value
    return decode_status(error.code(), error.details() or "", rpc_status.from_call(error))


async def spec_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM spec.specs")) or 0)


async def create(
    stub: SpecServiceAsyncStub, mode: pb.InterviewMode.ValueType, max_questions: int = 3, task: str = TASK
) -> pb.Spec:
    request = pb.CreateSpecWithPlanningRequest(task=task, title=TITLE, max_questions=max_questions, mode=mode)
    return (await stub.CreateSpecWithPlanning(request)).spec


def simple_answers(questions: list[dict[str, Any]]) -> list[pb.PlanningAnswer]:
    """The seed's answer factory (§6.2): deterministic answers by keyword."""
    answers = []
    for q in questions:
        question = q["question"]
        lowered = question.lower()
        if "user" in lowered or "audience" in lowered:
            answer = "The user is a developer testing the system."
        elif "success" in lowered:
            answer = "Success is when the script prints 'hello world' when executed."
        elif "scope" in lowered:
            answer = "Only printing 'hello world' is in scope."
        elif "constraint" in lowered:
            answer = "No constraints. Standard Python 3 only."
        else:
            answer = "Keep it simple - just print 'hello world'."
        answers.append(pb.PlanningAnswer(question=question, answer=answer))
    return answers


def planning_of(spec: pb.Spec) -> dict[str, Any]:
    planning: dict[str, Any] = struct_to_dict(spec.artifacts)["planning"]
    return planning


# ---------------------------------------------------------------- the three modes


@pytest.mark.usefixtures("calm")
async def test_dual_subagent_interview_then_answers(stub: SpecServiceAsyncStub, agent: AgentServiceAsyncStub) -> None:
    spec = await create(stub, pb.INTERVIEW_MODE_UNSPECIFIED)

    assert (spec.status, spec.task, spec.title) == (pb.SPEC_STATUS_DRAFT, TASK, TITLE)
    planning = planning_of(spec)
    assert planning["status"] == "needs_answers"
    assert planning["answers"] == []
    assert 1 <= len(planning["questions"]) <= 3
    assert all(q["question"] and q["rationale"] for q in planning["questions"])
    assert spec.planning.status == pb.PLANNING_STATUS_NEEDS_ANSWERS
    assert [q.question for q in spec.planning.questions] == [q["question"] for q in planning["questions"]]

    # The seed's §7.1 assertions, verbatim in spirit.
    metadata = planning["metadata"]
    assert metadata["mode"] == "dual_subagent"
    assert len(metadata.get("candidates", [])) >= 2
    providers = [c.get("provider") for c in metadata.get("candidates", [])]
    assert "openai" in providers, "OpenAI candidate missing"
    assert "anthropic" in providers, "Anthropic candidate missing"
    judge = metadata.get("judge", {})
    assert judge.get("model_name") is not None, "Judge model not recorded"
    selected = metadata.get("selected_candidate", {})
    assert selected.get("provider") in ["openai", "anthropic"]

    assert judge["fallback"] is False
    assert judge["rationale"]
    for candidate in metadata["candidates"]:
        assert candidate["model_name"]
        assert "duration_ms" in candidate["metrics"]
        assert candidate["questions"]
    chosen = next(c for c in metadata["candidates"] if c["name"] == selected["name"])
    assert [q["question"] for q in planning["questions"]] == [q["question"].strip() for q in chosen["questions"]]
    assert metadata["errors"] == []

    run = (await agent.GetAgentRun(agent_pb.GetAgentRunRequest(agent_run_id=metadata["agent_run_id"]))).result
    assert run.run.correlation.purpose == "planning_interview"
    assert struct_to_dict(run.run.metadata)["spec_id"] == spec.id
    assert run.run.schema_name == "planning_questions"
    assert run.decision.candidate_name == selected["name"]
    labels = [cp.label for cp in run.checkpoints]
    assert labels[0] == "start"
    assert labels[-1] == "decision"

    saved = await stub.SavePlanningAnswers(
        pb.SavePlanningAnswersRequest(spec_id=spec.id, answers=simple_answers(planning["questions"]))
    )
    assert saved.spec.planning.status == pb.PLANNING_STATUS_ANSWERED
    assert planning_of(saved.spec)["status"] == "answered"
    assert list(saved.unanswered_questions) == []
    assert [a.question for a in saved.spec.planning.answers] == [q["question"] for q in planning["questions"]]
    fetched = (await stub.GetSpec(pb.GetSpecRequest(spec_id=spec.id))).spec
    assert fetched == saved.spec
    assert fetched.update_time.ToDatetime() >= fetched.create_time.ToDatetime()


@pytest.mark.usefixtures("calm")
async def test_single_interview_is_one_model_and_no_judge(stub: SpecServiceAsyncStub) -> None:
    spec = await create(stub, pb.INTERVIEW_MODE_SINGLE, max_questions=2)

    planning = planning_of(spec)
    assert 1 <= len(planning["questions"]) <= 2
    metadata = planning["metadata"]
    assert metadata["mode"] == "single"
    assert [(c["provider"], c["model_name"]) for c in metadata["candidates"]] == [("openai", "gpt-4o-mini")]
    assert "duration_ms" in metadata["candidates"][0]["metrics"]
    assert metadata["judge"] is None
    assert metadata["selected_candidate"] == {"name": "openai", "provider": "openai", "model_name": "gpt-4o-mini"}
    assert metadata["llm_call_id"]


async def test_stub_interview_calls_no_model(stub: SpecServiceAsyncStub, agent: AgentServiceAsyncStub) -> None:
    purpose = agent_pb.GetUsageRequest(filter=agent_pb.Correlation(purpose="planning_interview"))
    before = (await agent.GetUsage(purpose)).total.calls

    spec = await create(stub, pb.INTERVIEW_MODE_STUB, max_questions=4)

    assert (await agent.GetUsage(purpose)).total.calls == before
    planning = planning_of(spec)
    assert len(planning["questions"]) == 4
    assert planning["metadata"] == {
        "mode": "stub",
        "agent_run_id": None,
        "llm_call_id": None,
        "candidates": [],
        "judge": None,
        "selected_candidate": None,
        "errors": [],
    }


# ---------------------------------------------------------------- answers


async def test_answers_partial_unknown_empty_and_validated(stub: SpecServiceAsyncStub, engine: AsyncEngine) -> None:
    spec = await create(stub, pb.INTERVIEW_MODE_STUB)
    q1, q2, q3 = (q.question for q in spec.planning.questions)

    partial = await stub.SavePlanningAnswers(
        pb.SavePlanningAnswersRequest(spec_id=spec.id, answers=[pb.PlanningAnswer(question=q2, answer="stdout")])
    )
    assert partial.spec.planning.status == pb.PLANNING_STATUS_NEEDS_ANSWERS
    assert list(partial.unanswered_questions) == [q1, q3]

    unknown = await error_of(
        stub.SavePlanningAnswers(
            pb.SavePlanningAnswersRequest(
                spec_id=spec.id,
                answers=[
                    pb.PlanningAnswer(question=q1, answer="fine"),
                    pb.PlanningAnswer(question="What colour is it?", answer="blue"),
                ],
            )
        )
    )
    assert (unknown.code, unknown.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_QUESTION")
    assert [v.field for v in unknown.field_violations] == ["answers[1].question"]
    assert "What colour is it?" in unknown.field_violations[0].description

    empty = await error_of(
        stub.SavePlanningAnswers(
            pb.SavePlanningAnswersRequest(spec_id=spec.id, answers=[pb.PlanningAnswer(question=q1, answer="  ")])
        )
    )
    assert (empty.code, empty.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_FAILED")
    assert [v.field for v in empty.field_violations] == ["answers[0].answer"]

    unchanged = (await stub.GetSpec(pb.GetSpecRequest(spec_id=spec.id))).spec
    assert unchanged == partial.spec

    async with engine.begin() as conn:
        await conn.execute(text("UPDATE spec.specs SET status = 'validated' WHERE id = :id"), {"id": spec.id})
    validated = await error_of(
        stub.SavePlanningAnswers(
            pb.SavePlanningAnswersRequest(spec_id=spec.id, answers=[pb.PlanningAnswer(question=q1, answer="yes")])
        )
    )
    assert (validated.code, validated.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "SPEC_VALIDATED")
    assert (await stub.GetSpec(pb.GetSpecRequest(spec_id=spec.id))).spec.status == pb.SPEC_STATUS_VALIDATED


# ---------------------------------------------------------------- bad input, get, list


async def test_bad_input_and_unknown_ids(stub: SpecServiceAsyncStub) -> None:
    invalid = await error_of(
        stub.CreateSpecWithPlanning(pb.CreateSpecWithPlanningRequest(task=" ", title="t" * 201, max_questions=11))
    )
    assert (invalid.code, invalid.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_FAILED")
    assert [v.field for v in invalid.field_violations] == ["task", "title", "max_questions"]

    mode = await error_of(
        stub.CreateSpecWithPlanning(
            pb.CreateSpecWithPlanningRequest(task=TASK, mode=cast(pb.InterviewMode.ValueType, 42))
        )
    )
    assert (mode.code, mode.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_ENUM_VALUE")

    missing = await error_of(stub.GetSpec(pb.GetSpecRequest(spec_id=str(uuid.uuid4()))))
    assert (missing.code, missing.reason) == (grpc.StatusCode.NOT_FOUND, "SPEC_NOT_FOUND")
    malformed = await error_of(stub.GetSpec(pb.GetSpecRequest(spec_id="nope")))
    assert (malformed.code, malformed.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ID")
    answers = [pb.PlanningAnswer(question="q", answer="a")]
    gone = await error_of(
        stub.SavePlanningAnswers(pb.SavePlanningAnswersRequest(spec_id=str(uuid.uuid4()), answers=answers))
    )
    assert (gone.code, gone.reason) == (grpc.StatusCode.NOT_FOUND, "SPEC_NOT_FOUND")


async def test_list_specs_pages_newest_first(stub: SpecServiceAsyncStub) -> None:
    created = [(await create(stub, pb.INTERVIEW_MODE_STUB, task=f"Task number {i}")).id for i in range(5)]

    listed: list[pb.Spec] = []
    token = ""
    while True:
        page = await stub.ListSpecs(pb.ListSpecsRequest(page_size=2, page_token=token))
        assert len(page.specs) <= 2
        listed.extend(page.specs)
        token = page.next_page_token
        if not token:
            break

    ids = [s.id for s in listed]
    assert len(ids) == len(set(ids))
    assert [i for i in ids if i in created] == list(reversed(created))
    times = [s.create_time.ToDatetime() for s in listed]
    assert times == sorted(times, reverse=True)

    bad = await error_of(stub.ListSpecs(pb.ListSpecsRequest(page_token="not-a-token")))
    assert (bad.code, bad.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN")


# ---------------------------------------------------------------- failures store nothing


async def test_agent_down_is_a_clear_error_and_stores_nothing(database_url: str, engine: AsyncEngine) -> None:
    async with spec_service(database_url, f"127.0.0.1:{free_port()}") as down:
        before = await spec_count(engine)
        for mode in (pb.INTERVIEW_MODE_DUAL_SUBAGENT, pb.INTERVIEW_MODE_SINGLE):
            error = await error_of(down.CreateSpecWithPlanning(pb.CreateSpecWithPlanningRequest(task=TASK, mode=mode)))
            assert (error.code, error.reason) == (grpc.StatusCode.UNAVAILABLE, "PLANNING_INTERVIEW_FAILED")
            assert error.metadata["agent_code"] == "UNAVAILABLE"
            assert error.message.startswith("planning interview failed: the agent service answered UNAVAILABLE")
        assert await spec_count(engine) == before

        # The stub mode asks no model, so it works without the agent service.
        stubbed = await create(down, pb.INTERVIEW_MODE_STUB)
        assert await spec_count(engine) == before + 1
        assert stubbed.planning.questions


async def test_every_model_failing_is_a_clear_error_and_stores_nothing(
    stub: SpecServiceAsyncStub, engine: AsyncEngine, emulator: Emulator
) -> None:
    await emulator.configure(error_rate=1)
    try:
        before = await spec_count(engine)
        dual = await error_of(stub.CreateSpecWithPlanning(pb.CreateSpecWithPlanningRequest(task=TASK)))
        assert (dual.code, dual.reason) == (grpc.StatusCode.UNAVAILABLE, "PLANNING_INTERVIEW_FAILED")
        assert dual.metadata["agent_run_id"]
        assert "PROVIDER_UNAVAILABLE" in dual.message

        single = await error_of(
            stub.CreateSpecWithPlanning(pb.CreateSpecWithPlanningRequest(task=TASK, mode=pb.INTERVIEW_MODE_SINGLE))
        )
        assert single.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.FAILED_PRECONDITION)
        assert single.reason == "PLANNING_INTERVIEW_FAILED"
        assert await spec_count(engine) == before
    finally:
        await emulator.configure()
