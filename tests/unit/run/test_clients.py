"""The run service's clients of the agent and snapshot services on fake stubs: what they send, what errors mean."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from grpc_status import rpc_status

from crucible.agent.v1 import agent_service_pb2 as agent_pb
from crucible.snapshot.v1 import snapshot_service_pb2 as snap_pb
from crucible.spec.v1 import spec_service_pb2 as spec_pb
from crucible_common.errors import AlreadyExists, CrucibleError, FailedPrecondition, NotFound, Unavailable, to_status
from crucible_common.protobuf import struct
from crucible_run.adapters.agent_client import AgentModels
from crucible_run.adapters.snapshot_client import SnapshotClient
from crucible_run.adapters.spec_client import SpecClient
from crucible_run.domain.budget import CallAllowance
from crucible_run.domain.estimates import STRUCTURED_ATTEMPTS, UNPRICED, ModelPrice, Pricing
from crucible_run.domain.failure_snapshot import FailureSnapshot
from crucible_run.service_layer.ports import (
    CallNotRecorded,
    ChatTarget,
    ModelCall,
    ModelCallFailed,
    ModelsUnavailable,
    SnapshotRefused,
    SummaryRefused,
)

CALL = ModelCall(
    "evaluation", "openai", "gpt-4o-mini", "Judge.", "Evaluate.", "evaluation", {"type": "object"}, "run:r:e", "p", "r"
)
SNAPSHOT = FailureSnapshot("p", "r", "failed run r", "Run r failed: why")


def rpc_error(error: CrucibleError) -> grpc.aio.AioRpcError:
    status = rpc_status.to_status(to_status(error, "test.crucible"))
    return grpc.aio.AioRpcError(
        status.code, grpc.aio.Metadata(), grpc.aio.Metadata(*status.trailing_metadata), status.details
    )


class Stub:
    """Answers every method with ``answer``, or raises ``error``; keeps what it was sent."""

    def __init__(self, answer: Any = None, error: grpc.aio.AioRpcError | None = None) -> None:
        self.answer = answer
        self.error = error
        self.requests: list[Any] = []

    async def _respond(self, request: Any, timeout: float | None = None) -> Any:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        return self.answer

    Complete = CreateSnapshot = GetUsage = GetModelPrices = GetLlmCall = _respond


def models(stub: Stub) -> AgentModels:
    return AgentModels(stub, call_timeout=5, wait_seconds=0)  # type: ignore[arg-type]


async def test_a_replayed_call_names_its_run_as_the_recording_and_carries_the_suite() -> None:
    stub = Stub(agent_pb.CompleteResponse(structured=struct({"n": 1}), usage=agent_pb.Usage(input_tokens=3)))

    await models(stub).complete(CALL)
    await models(stub).complete(
        ModelCall(**{**CALL.__dict__, "replay_of_run_id": "source-run", "snapshot_test_id": "suite-1"})
    )

    live, replayed = stub.requests
    assert not live.HasField("recording")
    assert live.correlation == agent_pb.Correlation(project_id="p", run_id="r", purpose="evaluation")
    assert replayed.recording == agent_pb.Recording(mode=agent_pb.RECORDING_MODE_REPLAY, recording_key="run:source-run")
    assert replayed.correlation.snapshot_test_id == "suite-1"
    # The replaying run's own key: a call it already made is answered from its own log.
    assert replayed.idempotency_key == CALL.idempotency_key


async def test_a_calls_allowance_is_sent_with_the_limits_it_has() -> None:
    stub = Stub(agent_pb.CompleteResponse(structured=struct({"n": 1})))

    await models(stub).complete(CALL)
    await models(stub).complete(ModelCall(**{**CALL.__dict__, "allowance": CallAllowance(usd=0.002)}))
    await models(stub).complete(ModelCall(**{**CALL.__dict__, "allowance": CallAllowance(usd=0.0, tokens=900)}))

    unlimited, usd_only, both = stub.requests
    assert not unlimited.HasField("allowance")
    assert usd_only.allowance.usd == 0.002
    assert not usd_only.allowance.HasField("tokens")
    # A limit of 0 is a limit, not an unset field.
    assert both.allowance.HasField("usd")
    assert (both.allowance.usd, both.allowance.tokens) == (0.0, 900)


async def test_a_replay_miss_is_a_call_not_recorded_and_other_failures_stay_failures() -> None:
    miss = FailedPrecondition("no such call", reason="REPLAY_MISS", metadata={"request_hash": "ab" * 32})
    replaying = ModelCall(**{**CALL.__dict__, "replay_of_run_id": "source-run"})

    with pytest.raises(CallNotRecorded) as not_recorded:
        await models(Stub(error=rpc_error(miss))).complete(replaying)
    with pytest.raises(ModelCallFailed) as failed:
        await models(Stub(error=rpc_error(FailedPrecondition("x", reason="STRUCTURED_OUTPUT_INVALID")))).complete(
            replaying
        )

    assert not_recorded.value.request_hash == "ab" * 32
    assert not isinstance(failed.value, CallNotRecorded)
    assert failed.value.reason == "STRUCTURED_OUTPUT_INVALID"
    assert (failed.value.tokens, failed.value.usd) == (0, 0.0)  # the error said nothing of a cost


async def test_a_failed_call_brings_what_its_attempts_cost() -> None:
    invalid = CrucibleError(
        "no valid answer in 3 attempts",
        reason="STRUCTURED_OUTPUT_INVALID",
        metadata={"spent_tokens": "1200", "spent_usd": "0.0042", "raw_answer": "{oops"},
    )

    with pytest.raises(ModelCallFailed) as failed:
        await models(Stub(error=rpc_error(invalid))).complete(CALL)

    assert (failed.value.tokens, failed.value.usd, failed.value.raw_answer) == (1200, 0.0042, "{oops")


async def test_an_answer_cut_short_in_the_error_is_had_whole_by_its_call() -> None:
    stub = Stub(agent_pb.GetLlmCallResponse(llm_call=agent_pb.LlmCall(id="c1", response_text="x" * 1200)))
    assert await models(stub).answer_text("c1") == "x" * 1200
    assert stub.requests == [agent_pb.GetLlmCallRequest(llm_call_id="c1")]
    # A nicety, not had rather than waited for or failed on: no such call, a call stored without
    # an answer, the service away, or one that does not know the method yet.
    not_found = rpc_error(NotFound("no call", reason="LLM_CALL_NOT_FOUND"))
    assert await models(Stub(error=not_found)).answer_text("c2") is None
    assert await models(Stub(agent_pb.GetLlmCallResponse(llm_call=agent_pb.LlmCall(id="c3")))).answer_text("c3") is None
    for code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.INTERNAL):
        error = grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "no")
        assert await models(Stub(error=error)).answer_text("c1") is None


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED])
async def test_no_answer_from_the_agent_service_is_not_a_failed_call(code: grpc.StatusCode) -> None:
    # Away past the run's patience, or past the call's deadline (the call may still be answered
    # and stored): the run waits and asks again under the same key; no evaluation fails for it.
    stub = Stub(error=grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "no answer"))

    with pytest.raises(ModelsUnavailable, match=f"the agent service did not answer the evaluation call \\({code.name}"):
        await models(stub).complete(CALL)


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED])
async def test_no_answer_for_usage_or_prices_is_the_agent_service_unavailable(code: grpc.StatusCode) -> None:
    # Asked at a run's start and end: a run goes on from what it stored once the service is back.
    stub = Stub(error=grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "no answer"))

    with pytest.raises(ModelsUnavailable, match="the usage of run r"):
        await models(stub).usage("r")
    with pytest.raises(ModelsUnavailable, match="its model prices"):
        await models(stub).prices([("openai", "gpt-4o-mini")])


async def test_prices_carry_how_many_times_the_agent_service_asks_a_structured_call() -> None:
    priced = agent_pb.ModelPrice(priced=True, input_usd_per_mtok=0.15, output_usd_per_mtok=0.6)
    told = Stub(agent_pb.GetModelPricesResponse(prices=[priced, agent_pb.ModelPrice()], structured_attempts=5))
    untold = Stub(agent_pb.GetModelPricesResponse(prices=[priced]))

    pricing = await models(told).prices([("openai", "gpt-4o-mini"), ("openai", "unknown")])
    older = await models(untold).prices([("openai", "gpt-4o-mini")])

    assert pricing == Pricing((ModelPrice(0.15, 0.6), UNPRICED), 5)
    # An agent service that does not say asks as the default does.
    assert older.structured_attempts == STRUCTURED_ATTEMPTS


async def test_a_settled_usage_is_read_once_the_runs_calls_in_flight_have_ended() -> None:
    # A runner that died left two calls in flight; the agent service records them when they end.
    readings = [
        agent_pb.GetUsageResponse(total=agent_pb.Usage(usd=0.01, calls=1), calls_in_flight=2),
        agent_pb.GetUsageResponse(total=agent_pb.Usage(usd=0.02, calls=2), calls_in_flight=1),
        agent_pb.GetUsageResponse(total=agent_pb.Usage(usd=0.03, calls=3)),
    ]

    class Readings(Stub):
        async def GetUsage(self, request: Any, timeout: float | None = None) -> Any:
            self.requests.append(request)
            return readings.pop(0)

    stub = Readings()
    usage = await models(stub).settled_usage("r")

    assert (usage.usd, usage.calls) == (0.03, 3)
    assert [r.filter.run_id for r in stub.requests] == ["r"] * 3


async def test_a_refusal_of_usage_stays_an_error_of_its_own() -> None:
    refused = grpc.aio.AioRpcError(grpc.StatusCode.INVALID_ARGUMENT, grpc.aio.Metadata(), grpc.aio.Metadata(), "no")

    with pytest.raises(grpc.aio.AioRpcError):
        await models(Stub(error=refused)).usage("r")


async def test_a_provider_away_is_still_the_calls_failure() -> None:
    # The agent service answered: the provider behind it failed after its retries.
    away = rpc_error(Unavailable("provider down after 3 attempts", reason="PROVIDER_UNAVAILABLE"))

    with pytest.raises(ModelCallFailed) as failed:
        await models(Stub(error=away)).complete(CALL)
    assert not isinstance(failed.value, ModelsUnavailable)


async def test_a_failure_snapshot_is_asked_with_its_name_tags_and_description() -> None:
    stub = Stub(snap_pb.CreateSnapshotResponse())

    await SnapshotClient(stub, timeout=5, wait_seconds=0).create(SNAPSHOT)  # type: ignore[arg-type]

    assert stub.requests == [
        snap_pb.CreateSnapshotRequest(
            project_id="p", run_id="r", name="failed run r", description="Run r failed: why", tags=["failure", "auto"]
        )
    ]


async def test_a_name_already_taken_is_done() -> None:
    stub = Stub(error=rpc_error(AlreadyExists("snapshot name taken", reason="SNAPSHOT_NAME_TAKEN")))

    await SnapshotClient(stub, timeout=5, wait_seconds=0).create(SNAPSHOT)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED]
)
async def test_a_service_away_is_an_os_error_to_retry_later(code: grpc.StatusCode) -> None:
    stub = Stub(error=grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "away"))

    with pytest.raises(ConnectionError):
        await SnapshotClient(stub, timeout=5, wait_seconds=0).create(SNAPSHOT)  # type: ignore[arg-type]


async def test_any_other_answer_is_a_refusal_with_its_reason() -> None:
    stub = Stub(error=rpc_error(NotFound("no project p", reason="PROJECT_NOT_FOUND")))

    with pytest.raises(SnapshotRefused) as refused:
        await SnapshotClient(stub, timeout=5, wait_seconds=0).create(SNAPSHOT)  # type: ignore[arg-type]

    assert str(refused.value) == "PROJECT_NOT_FOUND: no project p"


class SpecStub:
    """The spec service for a summary into an existing session: CreateChatMessage answers ``error``."""

    def __init__(self, error: grpc.aio.AioRpcError) -> None:
        self.error = error

    async def GetChatSession(self, request: Any, timeout: float | None = None) -> Any:
        return spec_pb.GetChatSessionResponse(chat_session=spec_pb.ChatSession(id="s", project_id="p"))

    async def CreateChatMessage(self, request: Any, timeout: float | None = None) -> Any:
        raise self.error


def _status(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), code.name.lower())


async def _post(code: grpc.StatusCode) -> str:
    spec = SpecClient(SpecStub(_status(code)), timeout=1, wait_seconds=0)  # type: ignore[arg-type]
    return await spec.post_summary(ChatTarget("p", "s"), "m", "Run r summary", {"run_summary": {"run_id": "r"}})


async def test_a_summary_the_spec_service_did_not_answer_in_time_is_posted_later() -> None:
    with pytest.raises(OSError, match="the spec service is unavailable"):
        await _post(grpc.StatusCode.DEADLINE_EXCEEDED)


async def test_a_summary_whose_session_is_gone_has_nowhere_to_go() -> None:
    assert await _post(grpc.StatusCode.NOT_FOUND) == ""


async def test_a_summary_the_spec_service_refuses_is_refused_for_good() -> None:
    with pytest.raises(SummaryRefused, match="INVALID_ARGUMENT"):
        await _post(grpc.StatusCode.INVALID_ARGUMENT)
