"""Replay from a run's own call log (recording key ``run:<run id>``): its answers and its failures, at $0."""

from __future__ import annotations

import json

import pytest

from crucible_agent.adapters.providers.pool import ProviderPool
from crucible_agent.domain.errors import ProviderUnavailable, ReplayedFailure, ReplayMiss, StructuredOutputInvalid
from crucible_agent.domain.model import (
    ChatMessage,
    Correlation,
    LlmCallStatus,
    LlmResult,
    ProviderResponse,
    Recording,
    RecordingMode,
    Role,
)
from crucible_agent.domain.pricing import DEFAULT_PRICES, PriceTable
from crucible_agent.service_layer import commands as c
from crucible_agent.service_layer import handlers as h
from crucible_agent.service_layer.call_log import CallLog
from crucible_agent.service_layer.llm import LlmService
from crucible_common.errors import ValidationFailed
from tests.unit.agent.fakes import FakeProvider, FakeUowFactory, answer

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


class World:
    def __init__(self, script: list[ProviderResponse | ProviderUnavailable]) -> None:
        self.provider = FakeProvider("openai", list(script))
        pool = ProviderPool({"openai": self.provider}, concurrency=4, max_retries=0, retry_base_seconds=0)
        self.uow = FakeUowFactory()
        self.llm = LlmService(pool, PriceTable(DEFAULT_PRICES), self.uow, structured_retries=1, capture_prompts=False)
        self.log = CallLog(self.uow)

    async def complete(
        self, run_id: str, text: str = "How many?", *, replay_of: str = "", key: str = "", suite: str = ""
    ) -> LlmResult:
        recording = Recording(RecordingMode.REPLAY, f"run:{replay_of}") if replay_of else Recording()
        cmd = c.Complete(
            "openai",
            "gpt-4o-mini",
            (ChatMessage(Role.SYSTEM, "Count."), ChatMessage(Role.USER, text)),
            SCHEMA,
            "count",
            correlation=Correlation(project_id="p", run_id=run_id, snapshot_test_id=suite, purpose="evaluation"),
            recording=recording,
            idempotency_key=key or f"run:{run_id}:{text}",
        )
        return await h.complete(cmd, self.llm, self.log)

    def calls_of(self, run_id: str) -> list[tuple[LlmCallStatus, float | None, str]]:
        return [(x.status, x.usd, x.error) for x in self.uow.state.llm_calls if x.correlation.run_id == run_id]


async def test_a_run_is_replayed_from_its_own_calls_free_and_without_a_provider_call() -> None:
    world = World([answer(json.dumps({"n": 3}), input_tokens=100, output_tokens=20)])
    await world.complete("source")

    replayed = await world.complete("replay", replay_of="source", suite="suite-1")

    assert replayed.structured == {"n": 3}
    assert len(world.provider.requests) == 1
    assert world.calls_of("replay") == [(LlmCallStatus.REPLAYED, 0.0, "")]
    (call,) = [x for x in world.uow.state.llm_calls if x.correlation.run_id == "replay"]
    # The replaying run's own correlation, so its usage (and its suite's) shows the call.
    assert call.correlation.snapshot_test_id == "suite-1"
    async with world.uow(read_only=True) as uow:
        usage = await uow.repo.usage(Correlation(snapshot_test_id="suite-1"))
    assert (usage.total.calls, usage.total.replayed_calls, usage.total.usd) == (1, 1, 0.0)


async def test_a_request_the_run_never_made_is_a_replay_miss_that_says_it_diverged() -> None:
    world = World([answer(json.dumps({"n": 3}))])
    await world.complete("source", "How many?")

    with pytest.raises(ReplayMiss) as miss:
        await world.complete("replay", "How many now?", replay_of="source")

    assert miss.value.reason == "REPLAY_MISS"
    assert "diverged" in miss.value.message
    assert "source" in miss.value.message
    assert world.calls_of("replay") == []
    assert len(world.provider.requests) == 1


async def test_only_the_named_runs_calls_answer() -> None:
    world = World([answer(json.dumps({"n": 3}))])
    await world.complete("other")

    with pytest.raises(ReplayMiss):
        await world.complete("replay", replay_of="source")


async def test_a_failed_attempt_then_an_answer_replays_the_answer() -> None:
    world = World([ProviderUnavailable("openai", "503"), answer(json.dumps({"n": 5}))])
    with pytest.raises(ProviderUnavailable):
        await world.complete("source")
    await world.complete("source")

    replayed = await world.complete("replay", replay_of="source")

    assert replayed.structured == {"n": 5}


async def test_a_call_that_never_validated_is_replayed_as_the_same_failure_with_its_raw_answer() -> None:
    world = World([answer("not json"), answer('{"n": "three"}')])
    with pytest.raises(StructuredOutputInvalid):
        await world.complete("source")

    with pytest.raises(ReplayedFailure) as failed:
        await world.complete("replay", replay_of="source")

    assert failed.value.reason == "STRUCTURED_OUTPUT_INVALID"
    assert failed.value.metadata["raw_answer"] == '{"n": "three"}'
    ((status, usd, error),) = world.calls_of("replay")
    assert (status, usd) == (LlmCallStatus.REPLAYED, 0.0)
    assert error.startswith("STRUCTURED_OUTPUT_INVALID: ")
    assert failed.value.metadata["llm_call_id"] == world.uow.state.llm_calls[-1].id
    assert len(world.provider.requests) == 2


async def test_a_replayed_failure_cuts_its_raw_answer_as_the_source_did_and_keeps_it_whole_on_its_call() -> None:
    long_answer = '{"n": "' + "three " * 200 + '"}'
    world = World([answer("not json"), answer(long_answer)])
    with pytest.raises(StructuredOutputInvalid):
        await world.complete("source")

    with pytest.raises(ReplayedFailure) as failed:
        await world.complete("replay", replay_of="source")

    assert failed.value.metadata["raw_answer"] == long_answer[:500]
    assert failed.value.metadata["raw_answer_chars"] == str(len(long_answer))
    replayed = await h.get_llm_call(c.GetLlmCall(failed.value.metadata["llm_call_id"]), world.uow)
    assert replayed.response is not None
    assert replayed.response["text"] == long_answer


async def test_a_provider_failure_is_replayed_with_its_reason_and_a_replay_of_the_replay_too() -> None:
    world = World([ProviderUnavailable("openai", "down")])
    with pytest.raises(ProviderUnavailable):
        await world.complete("source")

    with pytest.raises(ReplayedFailure) as first:
        await world.complete("replay", replay_of="source")
    with pytest.raises(ReplayedFailure) as second:
        await world.complete("replay-2", replay_of="replay")

    assert first.value.reason == second.value.reason == "PROVIDER_UNAVAILABLE"
    assert "openai: down" in second.value.message


async def test_a_replayed_run_can_itself_be_replayed() -> None:
    world = World([answer(json.dumps({"n": 7}))])
    await world.complete("source")
    await world.complete("replay", replay_of="source")

    again = await world.complete("replay-2", replay_of="replay")

    assert again.structured == {"n": 7}
    assert len(world.provider.requests) == 1


async def test_a_key_answered_by_a_replay_is_answered_from_it_again() -> None:
    world = World([answer(json.dumps({"n": 3}))])
    await world.complete("source")
    first = await world.complete("replay", replay_of="source", key="k")

    again = await world.complete("replay", replay_of="source", key="k")

    assert again.idempotent_replay
    assert again.final_call.id == first.final_call.id
    # A run continued after a crash counts its replayed calls once.
    assert world.calls_of("replay") == [(LlmCallStatus.REPLAYED, 0.0, "")]


@pytest.mark.parametrize(
    ("mode", "key", "problem"),
    [
        pytest.param(RecordingMode.RECORD, "run:abc", "never recorded", id="record-a-run"),
        pytest.param(RecordingMode.REPLAY, "run: ", "names no run", id="no-run"),
    ],
)
async def test_a_run_key_is_for_replay_and_names_a_run(mode: RecordingMode, key: str, problem: str) -> None:
    world = World([])
    cmd = c.Complete("openai", "gpt-4o-mini", (ChatMessage(Role.USER, "hi"),), recording=Recording(mode, key))

    with pytest.raises(ValidationFailed) as refused:
        await h.complete(cmd, world.llm, world.log)

    (violation,) = refused.value.violations
    assert violation.field == "recording.recording_key"
    assert problem in violation.description
    assert world.provider.requests == []
