"""The agent service's use cases through the real SDKs, the offline emulator and Postgres."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from grpc_status import rpc_status
from sqlalchemy.ext.asyncio import AsyncEngine

from crucible.agent.v1 import agent_service_pb2 as pb
from crucible.agent.v1 import agent_service_pb2_grpc as pb_grpc
from crucible_agent import bootstrap
from crucible_agent.bootstrap import AgentCore
from crucible_agent.domain.errors import ProviderUnavailable, ReplayMiss, StructuredOutputInvalid
from crucible_agent.domain.model import (
    ChatMessage,
    Correlation,
    JudgeConfig,
    LlmCallStatus,
    Recording,
    RecordingMode,
    Role,
    SubagentConfig,
)
from crucible_agent.domain.pricing import DEFAULT_PRICES
from crucible_agent.service_layer import commands as c
from crucible_agent.service_layer import handlers as h
from crucible_common.database import create_engine, migrate
from crucible_common.errors import InvalidArgument, decode_status
from crucible_common.protobuf import struct, struct_to_dict
from tests.integration.agent_fixtures import (
    CODING_TOOLS,
    QUESTIONS_SCHEMA,
    TASK,
    Emulator,
    agent_core,
    agent_settings,
    agent_stub,
    serve_emulator,
)

pytestmark = pytest.mark.integration

TWO_PROVIDERS = (
    SubagentConfig("openai", "openai", "gpt-4o-mini"),
    SubagentConfig("anthropic", "anthropic", "claude-haiku-4-5"),
)
JUDGE = JudgeConfig("openai", "gpt-4o-mini")


@pytest.fixture(scope="module")
async def agent_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=8)
    await migrate(engine, schema="agent", script_location=bootstrap.MIGRATIONS)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
async def emulator() -> AsyncIterator[Emulator]:
    async with serve_emulator() as running:
        yield running


@pytest.fixture
async def core(agent_engine: AsyncEngine, emulator: Emulator) -> AsyncIterator[AgentCore]:
    await emulator.configure()  # no faults, no latency
    async with agent_core(agent_engine, agent_settings(emulator)) as built:
        yield built


def _ids() -> Correlation:
    return Correlation(project_id=str(uuid.uuid4()), purpose="test")


def _complete(provider: str, model: str, correlation: Correlation, **kw: object) -> c.Complete:
    return c.Complete(
        provider=provider,
        model=model,
        messages=(ChatMessage(Role.USER, TASK),),
        correlation=correlation,
        **kw,  # type: ignore[arg-type]
    )


async def _calls(core: AgentCore, correlation: Correlation) -> list[tuple[str, int]]:
    calls, _ = await h.list_llm_calls(c.ListLlmCalls(correlation, page_size=100), core.uow)
    return [(x.status.value, x.attempt) for x in reversed(calls)]


# ---------------------------------------------------------------- adapters over HTTP


@pytest.mark.parametrize(("provider", "model"), [("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5")])
async def test_both_sdk_adapters_answer_text_structured_and_tool_calls(
    core: AgentCore, provider: str, model: str
) -> None:
    ids = _ids()
    text = await h.complete(_complete(provider, model, ids), core.llm, core.calls)
    assert text.text
    assert text.input_tokens > 0
    assert text.output_tokens > 0

    structured = await h.complete(
        _complete(provider, model, ids, json_schema=QUESTIONS_SCHEMA, schema_name="planning_questions"),
        core.llm,
        core.calls,
    )
    assert structured.structured is not None
    questions = structured.structured["questions"]
    assert 1 <= len(questions) <= 3
    assert all(q["question"] and q["rationale"] for q in questions)

    coding = await h.complete(_complete(provider, model, ids, tools=CODING_TOOLS), core.llm, core.calls)
    assert coding.tool_calls, coding.text
    write = coding.tool_calls[0]
    assert write.name == "fs_write_file"
    assert write.arguments["path"].endswith(".py")
    assert "hello world" in write.arguments["content"]

    usage = await h.get_usage(c.GetUsage(ids), core.uow)
    assert usage.total.calls == 3
    assert usage.total.input_tokens == text.input_tokens + structured.input_tokens + coding.input_tokens
    assert usage.total.usd > 0


async def test_usage_groups_by_project_and_run_the_most_expensive_first(core: AgentCore) -> None:
    purpose = f"grouping {uuid.uuid4()}"
    big, small = str(uuid.uuid4()), str(uuid.uuid4())
    runs = [str(uuid.uuid4()) for _ in range(3)]
    for project, run in [(big, runs[0]), (big, runs[1]), (big, runs[1]), (small, runs[2])]:
        ids = Correlation(project_id=project, run_id=run, purpose=purpose)
        await h.complete(_complete("openai", "gpt-4o-mini", ids), core.llm, core.calls)
    await h.complete(_complete("openai", "gpt-4o-mini", Correlation(purpose=purpose)), core.llm, core.calls)

    async with agent_stub(core) as stub:
        report = await stub.GetUsage(
            pb.GetUsageRequest(
                filter=pb.Correlation(purpose=purpose),
                group_by=[pb.USAGE_DIMENSION_PROJECT, pb.USAGE_DIMENSION_RUN],
                group_limit=2,
            )
        )
        bad = [
            await _refused(stub.GetUsage(pb.GetUsageRequest(group_by=[pb.USAGE_DIMENSION_UNSPECIFIED]))),
            await _refused(stub.GetUsage(pb.GetUsageRequest(group_limit=1001))),
        ]

    projects, by_run = report.groups
    assert projects.dimension == pb.USAGE_DIMENSION_PROJECT
    # The project of three calls first, then one of those with one call (the other one is cut).
    first, second = projects.groups
    assert (first.key, first.usage.calls) == (big, 3)
    assert (second.key in (small, ""), second.usage.calls) == (True, 1)
    assert projects.truncated
    assert by_run.dimension == pb.USAGE_DIMENSION_RUN
    assert (by_run.groups[0].key, by_run.groups[0].usage.calls) == (runs[1], 2)
    assert by_run.truncated
    assert sum(g.usage.usd for g in projects.groups) <= report.total.usd
    assert report.total.calls == 5
    assert [(code, v) for code, v in bad] == [
        (grpc.StatusCode.INVALID_ARGUMENT, "group_by[0]"),
        (grpc.StatusCode.INVALID_ARGUMENT, "group_limit"),
    ]


async def _refused(call: Any) -> tuple[grpc.StatusCode, str]:
    """The code of a refused unary call and the first field it names."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    error = info.value
    details = decode_status(error.code(), error.details() or "", rpc_status.from_call(error))
    return details.code, details.field_violations[0].field


# ---------------------------------------------------------------- structured output


async def test_an_invalid_structured_answer_is_retried(core: AgentCore, emulator: Emulator) -> None:
    await emulator.configure(faults=[{"match": {"provider": "openai"}, "kind": "malformed", "count": 1}])
    ids = _ids()
    result = await h.complete(
        _complete("openai", "gpt-4o-mini", ids, json_schema=QUESTIONS_SCHEMA, schema_name="planning_questions"),
        core.llm,
        core.calls,
    )
    assert result.structured is not None
    assert await _calls(core, ids) == [("invalid_output", 1), ("succeeded", 2)]
    # Both attempts were answered, so both are billed.
    usage = await h.get_usage(c.GetUsage(ids), core.uow)
    assert usage.total.calls == 2
    assert usage.total.usd == pytest.approx(sum(x.usd or 0 for x in result.calls))


async def test_a_structured_answer_that_never_validates_fails_loudly(core: AgentCore, emulator: Emulator) -> None:
    await emulator.configure(faults=[{"match": {"provider": "anthropic"}, "kind": "malformed"}])
    ids = _ids()
    with pytest.raises(StructuredOutputInvalid) as info:
        await h.complete(
            _complete(
                "anthropic",
                "claude-haiku-4-5",
                ids,
                json_schema=QUESTIONS_SCHEMA,
                schema_name="planning_questions",
            ),
            core.llm,
            core.calls,
        )
    assert info.value.reason == "STRUCTURED_OUTPUT_INVALID"
    assert info.value.raw  # the raw answer is kept, never replaced by a default
    assert await _calls(core, ids) == [("invalid_output", 1), ("invalid_output", 2), ("invalid_output", 3)]
    calls, _ = await h.list_llm_calls(c.ListLlmCalls(ids), core.uow)
    assert calls[0].id == info.value.llm_call_id
    assert calls[0].response is not None
    assert calls[0].response["text"] == info.value.raw


# ---------------------------------------------------------------- retries, cost


async def test_rate_limits_are_retried_with_backoff(core: AgentCore, emulator: Emulator) -> None:
    await emulator.configure(faults=[{"match": {"provider": "openai"}, "kind": "rate_limit", "count": 2}])
    ids = _ids()
    result = await h.complete(_complete("openai", "gpt-4o-mini", ids), core.llm, core.calls)
    assert result.text
    assert await _calls(core, ids) == [("failed", 1), ("failed", 2), ("succeeded", 3)]
    usage = await h.get_usage(c.GetUsage(ids), core.uow)
    assert (usage.total.calls, usage.total.failed_calls) == (3, 2)


async def test_cost_of_priced_and_unpriced_models(core: AgentCore) -> None:
    ids = _ids()
    priced = await h.complete(_complete("openai", "gpt-4o-mini", ids), core.llm, core.calls)
    expected = DEFAULT_PRICES["gpt-4o-mini"].cost(priced.input_tokens, priced.output_tokens)
    assert priced.usd == pytest.approx(expected)

    unpriced = await h.complete(_complete("openai", "acme-local-model", ids), core.llm, core.calls)
    assert unpriced.usd is None

    usage = await h.get_usage(c.GetUsage(ids), core.uow)
    by_model = {m.model: m for m in usage.by_model}
    assert by_model["gpt-4o-mini"].priced
    assert by_model["gpt-4o-mini"].usage.usd == pytest.approx(expected)
    assert not by_model["acme-local-model"].priced
    assert by_model["acme-local-model"].usage.unpriced_calls == 1
    assert by_model["acme-local-model"].usage.usd == 0
    assert usage.total.unpriced_calls == 1


# ---------------------------------------------------------------- agent runs


async def test_an_agent_run_with_two_providers_and_a_judge(core: AgentCore) -> None:
    result = await core.runner.execute(
        c.ExecuteAgentRun(TASK, subagents=TWO_PROVIDERS, judge=JUDGE, correlation=_ids())
    )
    assert result.run.status.value == "completed"
    assert {x.provider for x in result.candidates} == {"openai", "anthropic"}
    assert all(x.output and x.metrics.duration_ms >= 0 for x in result.candidates)
    assert result.candidates[0].output != result.candidates[1].output
    assert result.decision is not None
    assert not result.decision.fallback
    assert (result.decision.provider, result.decision.model) == ("openai", "gpt-4o-mini")
    assert result.decision.rationale
    assert result.decision.candidate_name in {"openai", "anthropic"}
    labels = [cp.label for cp in result.checkpoints]
    assert labels[0] == "start"
    assert sorted(labels[1:3]) == ["candidate:anthropic", "candidate:openai"]
    assert labels[3] == "decision"
    assert [cp.sequence for cp in result.checkpoints] == [1, 2, 3, 4]

    usage = await h.get_usage(c.GetUsage(Correlation(agent_run_id=result.run.id)), core.uow)
    assert usage.total.calls == 3  # two subagents and the judge
    assert {m.provider for m in usage.by_model} == {"openai", "anthropic"}


async def test_a_failing_provider_does_not_stop_the_others(core: AgentCore, emulator: Emulator) -> None:
    await emulator.configure(faults=[{"match": {"provider": "anthropic"}, "kind": "error"}])
    result = await core.runner.execute(c.ExecuteAgentRun(TASK, subagents=TWO_PROVIDERS, judge=JUDGE))
    assert [x.name for x in result.candidates] == ["openai"]
    assert [(e.name, e.reason) for e in result.errors] == [("anthropic", "PROVIDER_UNAVAILABLE")]
    assert result.decision is not None
    assert result.decision.candidate_name == "openai"
    assert (result.decision.fallback, result.decision.fallback_reason) == (True, "single_candidate")
    assert result.run.status.value == "completed"


async def test_when_every_subagent_fails_the_run_fails(core: AgentCore, emulator: Emulator) -> None:
    await emulator.configure(faults=[{"kind": "error"}])
    result = await core.runner.execute(c.ExecuteAgentRun(TASK, subagents=TWO_PROVIDERS, judge=JUDGE))
    assert result.run.status.value == "failed"
    assert "every subagent failed" in result.run.failure_reason
    assert result.decision is None


async def test_the_judge_fallback_is_explicit_and_recorded(core: AgentCore, emulator: Emulator) -> None:
    await emulator.configure(faults=[{"match": {"task": "judge_decision"}, "kind": "error"}])
    result = await core.runner.execute(c.ExecuteAgentRun(TASK, subagents=TWO_PROVIDERS, judge=JUDGE))
    assert result.decision is not None
    assert result.decision.fallback
    assert result.decision.fallback_reason.startswith("judge_failed: PROVIDER_UNAVAILABLE")
    # The rule: the first successful candidate in subagent order.
    assert result.decision.candidate_name == "openai"
    assert result.checkpoints[-1].label == "decision"
    assert result.checkpoints[-1].state["fallback"] is True


async def test_forks_rerun_only_what_follows_the_checkpoint(core: AgentCore) -> None:
    source = await core.runner.execute(c.ExecuteAgentRun(TASK, subagents=TWO_PROVIDERS, judge=JUDGE))
    first = source.checkpoints[1]  # the first candidate to finish
    kept = first.label.removeprefix("candidate:")

    fork = await core.runner.fork(
        c.ForkAgentRun(source.run.id, checkpoint_label=first.label, label="retry", reason="try the other again")
    )
    assert fork.run.fork_of is not None
    assert (fork.run.fork_of.run_id, fork.run.fork_of.checkpoint_label) == (source.run.id, first.label)
    assert (fork.run.fork_of.label, fork.run.fork_of.reason) == ("retry", "try the other again")
    old = {x.name: x for x in source.candidates}
    new = {x.name: x for x in fork.candidates}
    assert new[kept].llm_call_id == old[kept].llm_call_id  # carried over, not paid again
    other = next(name for name in new if name != kept)
    assert new[other].llm_call_id != old[other].llm_call_id  # re-run
    usage = await h.get_usage(c.GetUsage(Correlation(agent_run_id=fork.run.id)), core.uow)
    assert usage.total.calls == 2  # the re-run subagent and the judge
    assert [cp.label for cp in fork.checkpoints][:2] == ["start", first.label]

    from_decision = await core.runner.fork(c.ForkAgentRun(source.run.id, checkpoint_label="decision"))
    assert from_decision.decision is not None
    assert source.decision is not None
    assert from_decision.decision.candidate_name == source.decision.candidate_name
    usage = await h.get_usage(c.GetUsage(Correlation(agent_run_id=from_decision.run.id)), core.uow)
    assert usage.total.calls == 0

    from_start = await core.runner.fork(c.ForkAgentRun(source.run.id, checkpoint_id=source.checkpoints[0].id))
    usage = await h.get_usage(c.GetUsage(Correlation(agent_run_id=from_start.run.id)), core.uow)
    assert usage.total.calls == 3


# ---------------------------------------------------------------- recording and replay


async def test_recorded_responses_replay_deterministically_and_free(core: AgentCore, emulator: Emulator) -> None:
    key = f"snapshot-{uuid.uuid4()}"
    ids = _ids()
    recorded = await h.complete(
        _complete("anthropic", "claude-haiku-4-5", ids, recording=Recording(RecordingMode.RECORD, key)),
        core.llm,
        core.calls,
    )
    # With the provider down, a replay still answers: it never calls the provider.
    await emulator.configure(faults=[{"kind": "error"}])
    replay_ids = _ids()
    replayed = await h.complete(
        _complete("anthropic", "claude-haiku-4-5", replay_ids, recording=Recording(RecordingMode.REPLAY, key)),
        core.llm,
        core.calls,
    )
    assert replayed.text == recorded.text
    assert replayed.usd == 0
    assert replayed.calls[0].status is LlmCallStatus.REPLAYED
    usage = await h.get_usage(c.GetUsage(replay_ids), core.uow)
    assert (usage.total.replayed_calls, usage.total.usd) == (1, 0)

    different = c.Complete(
        provider="anthropic",
        model="claude-haiku-4-5",
        messages=(ChatMessage(Role.USER, "something never recorded"),),
        recording=Recording(RecordingMode.REPLAY, key),
    )
    with pytest.raises(ReplayMiss) as info:
        await h.complete(different, core.llm, core.calls)
    assert info.value.reason == "REPLAY_MISS"


async def test_provider_errors_surface_as_domain_errors(core: AgentCore, emulator: Emulator) -> None:
    await emulator.configure(faults=[{"kind": "error"}])
    with pytest.raises(ProviderUnavailable):
        await h.complete(_complete("openai", "gpt-4o-mini", _ids()), core.llm, core.calls)


# ---------------------------------------------------------------- over gRPC


async def test_get_llm_call_gives_the_raw_answer_an_error_carries_cut_short(
    agent_engine: AsyncEngine, emulator: Emulator
) -> None:
    # Never valid: the answer stays malformed through every re-ask.
    await emulator.configure(faults=[{"match": {"provider": "openai"}, "kind": "malformed"}])
    settings = agent_settings(emulator, anthropic_api_key=None, anthropic_base_url=None)
    long_schema = {
        "type": "object",
        "properties": {f"field_{i}": {"type": "string"} for i in range(40)},
        "required": [f"field_{i}" for i in range(40)],
        "additionalProperties": False,
    }
    try:
        async with agent_core(agent_engine, settings) as built, agent_stub(built) as stub:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.Complete(
                    pb.CompleteRequest(
                        model=pb.ModelRef(provider="openai", model_name="gpt-4o-mini"),
                        messages=[pb.Message(role=pb.ROLE_USER, content="Fill every field at length.")],
                        json_schema=struct(long_schema),
                        schema_name="long_answer",
                    )
                )
            error = info.value
            details = decode_status(error.code(), error.details() or "", rpc_status.from_call(error))
            assert details.reason == "STRUCTURED_OUTPUT_INVALID"
            call_id = details.metadata["llm_call_id"]
            got = (await stub.GetLlmCall(pb.GetLlmCallRequest(llm_call_id=call_id))).llm_call

            assert got.id == call_id
            assert got.status == pb.LLM_CALL_STATUS_INVALID_OUTPUT
            assert len(got.response_text) == int(details.metadata["raw_answer_chars"]) > 500
            assert details.metadata["raw_answer"] == got.response_text[:500]
            # A page of calls leaves the answers out.
            page = await stub.ListLlmCalls(pb.ListLlmCallsRequest(filter=pb.Correlation(), page_size=5))
            assert page.llm_calls
            assert all(not c.response_text for c in page.llm_calls)

            for llm_call_id, expected in (
                (str(uuid.uuid4()), (grpc.StatusCode.NOT_FOUND, "LLM_CALL_NOT_FOUND")),
                ("not-an-id", (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ID")),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as missing:
                    await stub.GetLlmCall(pb.GetLlmCallRequest(llm_call_id=llm_call_id))
                found = decode_status(
                    missing.value.code(), missing.value.details() or "", rpc_status.from_call(missing.value)
                )
                assert (found.code, found.reason) == expected
    finally:
        await emulator.configure()


async def test_model_prices_say_how_many_times_a_structured_call_is_asked(
    agent_engine: AsyncEngine, emulator: Emulator
) -> None:
    settings = agent_settings(emulator, structured_output_retries=4)
    request = pb.GetModelPricesRequest(
        models=[
            pb.ModelRef(provider="openai", model_name="gpt-4o-mini"),
            pb.ModelRef(provider="openai", model_name="no-such-model"),
        ]
    )
    async with agent_core(agent_engine, settings) as built, agent_stub(built) as stub:
        answer = await stub.GetModelPrices(request)

    assert answer.structured_attempts == 5
    assert [p.priced for p in answer.prices] == [True, False]


async def test_grpc_errors_are_canonical(agent_engine: AsyncEngine, emulator: Emulator) -> None:
    await emulator.configure()
    settings = agent_settings(emulator, anthropic_api_key=None, anthropic_base_url=None)
    async with agent_core(agent_engine, settings) as built, agent_stub(built) as stub:

        async def code_and_reason(call: object) -> tuple[grpc.StatusCode, str]:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call  # type: ignore[misc]
            status = rpc_status.from_call(info.value)
            details = decode_status(info.value.code(), info.value.details() or "", status)
            return details.code, details.reason

        user = pb.Message(role=pb.ROLE_USER, content="hi")
        assert await code_and_reason(
            stub.Complete(pb.CompleteRequest(model=pb.ModelRef(provider="mistral", model_name="x"), messages=[user]))
        ) == (grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_PROVIDER")
        assert await code_and_reason(
            stub.Complete(pb.CompleteRequest(model=pb.ModelRef(provider="anthropic", model_name="x"), messages=[user]))
        ) == (grpc.StatusCode.FAILED_PRECONDITION, "PROVIDER_NOT_CONFIGURED")
        assert await code_and_reason(
            stub.Complete(
                pb.CompleteRequest(
                    model=pb.ModelRef(provider="openai", model_name="gpt-4o-mini"),
                    messages=[user],
                    json_schema=struct({"type": "array"}),
                )
            )
        ) == (grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_FAILED")
        assert await code_and_reason(
            stub.Complete(
                pb.CompleteRequest(
                    model=pb.ModelRef(provider="openai", model_name="gpt-4o-mini"),
                    messages=[user],
                    recording=pb.Recording(mode=pb.RECORDING_MODE_REPLAY, recording_key="nothing-here"),
                )
            )
        ) == (grpc.StatusCode.FAILED_PRECONDITION, "REPLAY_MISS")
        assert await code_and_reason(
            stub.Complete(
                pb.CompleteRequest(
                    model=pb.ModelRef(provider="openai", model_name="gpt-4o-mini"),
                    messages=[user],
                    allowance=pb.CallAllowance(usd=-0.01),
                )
            )
        ) == (grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_FAILED")
        # An allowance that leaves no room for a re-ask: the malformed answer is the call's end.
        await emulator.configure(faults=[{"match": {"provider": "openai"}, "kind": "malformed", "count": 1}])
        schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
        _, reason = await code_and_reason(
            stub.Complete(
                pb.CompleteRequest(
                    model=pb.ModelRef(provider="openai", model_name="gpt-4o-mini"),
                    messages=[user],
                    json_schema=struct(schema),
                    schema_name="a",
                    allowance=pb.CallAllowance(tokens=1),
                )
            )
        )
        assert reason == "STRUCTURED_OUTPUT_INVALID"
        await emulator.configure()
        assert await code_and_reason(stub.GetAgentRun(pb.GetAgentRunRequest(agent_run_id=str(uuid.uuid4())))) == (
            grpc.StatusCode.NOT_FOUND,
            "AGENT_RUN_NOT_FOUND",
        )
        assert await code_and_reason(stub.ExecuteAgentRun(pb.ExecuteAgentRunRequest(message=" "))) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "VALIDATION_FAILED",
        )
        ok = await stub.Complete(
            pb.CompleteRequest(model=pb.ModelRef(provider="openai", model_name="gpt-4o-mini"), messages=[user])
        )
        assert ok.content
        assert ok.usage.usd > 0


# ---------------------------------------------------------------- streamed over gRPC


def _request(provider: str = "openai", correlation: Correlation | None = None, **kw: Any) -> pb.CompleteRequest:
    model = "gpt-4o-mini" if provider == "openai" else "claude-haiku-4-5"
    return pb.CompleteRequest(
        model=pb.ModelRef(provider=provider, model_name=model),
        messages=[pb.Message(role=pb.ROLE_USER, content=TASK)],
        correlation=pb.Correlation(project_id=(correlation or _ids()).project_id, purpose="test"),
        **kw,
    )


@dataclass
class Streamed:
    deltas: list[pb.CompleteDelta]
    response: pb.CompleteResponse
    # When the first delta and the response arrived.
    first_delta_at: float
    response_at: float

    def text(self, attempt: int) -> str:
        return "".join(d.text for d in self.deltas if d.attempt == attempt)


async def _stream(stub: pb_grpc.AgentServiceAsyncStub, request: pb.CompleteRequest) -> Streamed:
    """The events of one StreamComplete: deltas, then one response, which must be the last."""
    deltas: list[pb.CompleteDelta] = []
    arrivals: list[float] = []
    responses: list[pb.CompleteResponse] = []
    async for event in stub.StreamComplete(pb.StreamCompleteRequest(request=request)):
        assert not responses, "an event after the response"
        arrivals.append(time.monotonic())
        if event.HasField("delta"):
            deltas.append(event.delta)
        else:
            responses.append(event.response)
    assert len(responses) == 1
    return Streamed(deltas, responses[0], arrivals[0], arrivals[-1])


async def _status(events: AsyncIterable[object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in events:
            pass
    status = rpc_status.from_call(info.value)
    details = decode_status(info.value.code(), info.value.details() or "", status)
    return details.code, details.reason


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_stream_complete_sends_the_answer_as_it_is_written(
    core: AgentCore, emulator: Emulator, provider: str
) -> None:
    await emulator.configure(stream_chunk_delay_ms=20)
    ids = _ids()
    async with agent_stub(core) as stub:
        text = await _stream(stub, _request(provider, ids))
        await emulator.configure()
        structured = await _stream(
            stub, _request(provider, ids, json_schema=struct(QUESTIONS_SCHEMA), schema_name="planning_questions")
        )

    # Sent on as the model wrote them (20 ms apart), not all at the end.
    assert text.response_at - text.first_delta_at >= 0.02 * (len(text.deltas) - 1) * 0.5
    for streamed in (text, structured):
        assert len(streamed.deltas) >= 3
        assert {d.attempt for d in streamed.deltas} == {1}
        assert streamed.response.content == streamed.text(1)
        assert streamed.response.usage.usd > 0
        assert not streamed.response.idempotent_replay
    assert json.loads(structured.text(1))["questions"]
    assert struct_to_dict(structured.response.structured) == json.loads(structured.response.content)
    calls, _ = await h.list_llm_calls(c.ListLlmCalls(ids), core.uow)
    assert {x.id for x in calls} == {text.response.llm_call_id, structured.response.llm_call_id}
    assert await _calls(core, ids) == [("succeeded", 1), ("succeeded", 1)]


async def test_a_retried_stream_starts_again_with_the_next_attempt(core: AgentCore, emulator: Emulator) -> None:
    await emulator.configure(
        faults=[
            {"match": {"provider": "openai"}, "kind": "rate_limit", "count": 1},
            {"match": {"provider": "openai"}, "kind": "malformed", "count": 1},
        ]
    )
    ids = _ids()
    async with agent_stub(core) as stub:
        streamed = await _stream(
            stub, _request("openai", ids, json_schema=struct(QUESTIONS_SCHEMA), schema_name="planning_questions")
        )

    # 1: refused (429) before it streamed; 2: streamed an invalid answer; 3: the re-ask, valid.
    assert await _calls(core, ids) == [("failed", 1), ("invalid_output", 2), ("succeeded", 3)]
    assert [d.attempt for d in streamed.deltas] == sorted(d.attempt for d in streamed.deltas)
    assert {d.attempt for d in streamed.deltas} == {2, 3}
    assert streamed.response.content == streamed.text(3)
    calls, _ = await h.list_llm_calls(c.ListLlmCalls(ids), core.uow)
    invalid = next(x for x in calls if x.attempt == 2)
    assert invalid.response is not None
    assert streamed.text(2) == invalid.response["text"] != streamed.text(3)
    assert streamed.response.usage.calls == 3


async def test_a_streamed_call_replayed_for_its_key_sends_only_the_response_and_costs_nothing(
    core: AgentCore, emulator: Emulator
) -> None:
    ids = _ids()
    request = _request("anthropic", ids, idempotency_key=f"spec-{uuid.uuid4()}:architect:1")
    async with agent_stub(core) as stub:
        first = await _stream(stub, request)
        served = await emulator.requests_served()
        again = await _stream(stub, request)

    assert first.deltas
    assert not first.response.idempotent_replay
    assert again.deltas == []
    assert again.response.idempotent_replay
    assert (again.response.content, again.response.llm_call_id) == (first.response.content, first.response.llm_call_id)
    assert (again.response.usage.usd, again.response.usage.calls) == (0, 0)
    assert await emulator.requests_served() == served
    usage = await h.get_usage(c.GetUsage(ids), core.uow)
    assert usage.total.calls == 1


async def test_stream_complete_fails_with_completes_status(core: AgentCore, emulator: Emulator) -> None:
    unknown = _request("mistral")
    async with agent_stub(core) as stub:

        async def complete(request: pb.CompleteRequest) -> AsyncIterator[object]:
            yield await stub.Complete(request)

        too_long = _request(correlation=Correlation(project_id="p" * 101))
        for request, status in [
            (unknown, (grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_PROVIDER")),
            (too_long, (grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_FAILED")),
        ]:
            assert await _status(complete(request)) == status
            assert await _status(stub.StreamComplete(pb.StreamCompleteRequest(request=request))) == status

        await emulator.configure(faults=[{"kind": "error"}])
        down = (grpc.StatusCode.UNAVAILABLE, "PROVIDER_UNAVAILABLE")
        assert await _status(complete(_request())) == down
        assert await _status(stub.StreamComplete(pb.StreamCompleteRequest(request=_request()))) == down


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_cancelled_stream_cancels_the_model_call_and_counts_it_at_an_unknown_cost(
    core: AgentCore, emulator: Emulator, provider: str
) -> None:
    """The call stops with its stream; the provider may bill what it began, so it is stored
    ``cancelled``, counted apart in usage, with no tokens or USD of its own."""
    await emulator.configure(stream_chunk_delay_ms=100)
    ids = _ids()
    async with agent_stub(core) as stub:
        call = stub.StreamComplete(pb.StreamCompleteRequest(request=_request(provider, ids)))
        first = await anext(aiter(call))
        assert first.HasField("delta")
        call.cancel()
        # Long past the end of the answer (a dozen events 100 ms apart): a call still running would
        # be stored "succeeded".
        await asyncio.sleep(2.0)
        usage = await stub.GetUsage(pb.GetUsageRequest(filter=pb.Correlation(project_id=ids.project_id)))

    assert await _calls(core, ids) == [("cancelled", 1)]
    total = usage.total
    assert (total.calls, total.cancelled_calls, total.failed_calls, total.usd, total.input_tokens) == (1, 1, 0, 0, 0)


async def test_concurrent_completions_all_land(core: AgentCore) -> None:
    ids = _ids()
    results = await asyncio.gather(
        *(
            h.complete(
                c.Complete("openai", "gpt-4o-mini", (ChatMessage(Role.USER, f"question {i}"),), correlation=ids),
                core.llm,
                core.calls,
            )
            for i in range(20)
        )
    )
    assert len({r.final_call.id for r in results}) == 20
    usage = await h.get_usage(c.GetUsage(ids), core.uow)
    assert usage.total.calls == 20


async def test_a_key_asked_of_two_replicas_at_once_is_paid_once(
    core: AgentCore, agent_engine: AsyncEngine, emulator: Emulator
) -> None:
    await emulator.configure(latency_ms=800)
    ids = _ids()
    key = f"run:{ids.project_id}:evaluation:a:b"
    asked = _complete("openai", "gpt-4o-mini", ids, idempotency_key=key)
    # Another agent service on the same database: a run whose runner died re-asks the calls it had
    # in flight, and the re-ask may reach either replica.
    async with agent_core(agent_engine, agent_settings(emulator)) as replica:
        first = asyncio.create_task(h.complete(asked, core.llm, core.calls))
        await asyncio.sleep(0.3)  # in flight at the emulator
        answered, replayed = await asyncio.gather(first, h.complete(asked, replica.llm, replica.calls))

    assert await emulator.requests_served() == 1
    assert replayed.idempotent_replay
    assert replayed.text == answered.text
    assert replayed.final_call.id == answered.final_call.id
    assert await _calls(core, ids) == [("succeeded", 1)]


async def test_a_run_abandoned_by_a_dead_process_is_continued_not_repaid(
    core: AgentCore, agent_engine: AsyncEngine
) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from crucible_agent.adapters import tables

    # A run whose process died after its first candidate: its lease has lapsed.
    source = await core.runner.execute(c.ExecuteAgentRun(TASK, subagents=TWO_PROVIDERS, judge=JUDGE))
    crashed = await core.runner.fork(c.ForkAgentRun(source.run.id, checkpoint_label="decision"))
    first = source.checkpoints[1].label
    partial = await core.runner.fork(c.ForkAgentRun(source.run.id, checkpoint_label=first))
    assert crashed.run.status.value == "completed"
    async with agent_engine.begin() as conn:
        # Rewind the fork to "after its first candidate, before the rest", owned by a dead process.
        await conn.execute(
            tables.agent_candidates.delete().where(
                tables.agent_candidates.c.agent_run_id == partial.run.id,
                tables.agent_candidates.c.name != first.removeprefix("candidate:"),
            )
        )
        await conn.execute(
            tables.agent_checkpoints.delete().where(
                tables.agent_checkpoints.c.agent_run_id == partial.run.id, tables.agent_checkpoints.c.sequence > 2
            )
        )
        await conn.execute(
            tables.agent_decisions.delete().where(tables.agent_decisions.c.agent_run_id == partial.run.id)
        )
        await conn.execute(
            update(tables.agent_runs)
            .where(tables.agent_runs.c.id == partial.run.id)
            .values(
                status="running", lease_owner="dead-host:1", lease_expires_at=datetime.now(UTC) - timedelta(seconds=1)
            )
        )
    calls_before = (await h.get_usage(c.GetUsage(Correlation(agent_run_id=partial.run.id)), core.uow)).total.calls

    assert await core.runner.resume_stale() >= 1
    for _ in range(200):
        resumed = await core.runner.result(partial.run.id)
        if resumed.run.status.value != "running":
            break
        await asyncio.sleep(0.05)
    assert resumed.run.status.value == "completed"
    assert sorted(x.name for x in resumed.candidates) == ["anthropic", "openai"]
    assert resumed.decision is not None
    calls_after = (await h.get_usage(c.GetUsage(Correlation(agent_run_id=partial.run.id)), core.uow)).total.calls
    assert calls_after - calls_before == 2  # only the missing subagent and the judge
    # A run whose lease is alive is left to its owner.
    assert await core.runner.resume_stale() == 0


async def test_subagents_can_answer_with_structured_output(core: AgentCore) -> None:
    result = await core.runner.execute(
        c.ExecuteAgentRun(
            TASK, subagents=TWO_PROVIDERS, judge=JUDGE, json_schema=QUESTIONS_SCHEMA, schema_name="planning_questions"
        )
    )
    assert result.run.schema_name == "planning_questions"
    for candidate in result.candidates:
        assert candidate.structured is not None
        assert candidate.structured["questions"]
    assert result.decision is not None
    assert not result.decision.fallback


async def test_values_longer_than_their_columns_are_bad_requests_not_charges(core: AgentCore) -> None:
    too_long = Correlation(project_id="p" * 101)
    with pytest.raises(InvalidArgument) as info:
        await h.complete(_complete("openai", "gpt-4o-mini", too_long), core.llm, core.calls)
    assert [v.field for v in info.value.violations] == ["correlation.project_id"]
    with pytest.raises(InvalidArgument) as info:
        await core.runner.execute(
            c.ExecuteAgentRun(
                TASK, subagents=TWO_PROVIDERS, judge=JUDGE, recording=Recording(RecordingMode.RECORD, "k" * 201)
            )
        )
    assert [v.field for v in info.value.violations] == ["recording.recording_key"]
    usage = await h.get_usage(c.GetUsage(too_long.with_purpose("test")), core.uow)
    assert usage.total.calls == 0
