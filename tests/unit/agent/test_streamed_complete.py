"""Complete with a delta sink: the same call (validation, re-asks, idempotency, the call log), streamed."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import datetime
from typing import TypeVar

import pytest

from crucible_agent.adapters.providers.base import LlmProvider
from crucible_agent.adapters.providers.pool import ProviderPool
from crucible_agent.domain.errors import ProviderError, ProviderUnavailable, StructuredOutputInvalid
from crucible_agent.domain.model import (
    ChatMessage,
    Delta,
    LlmCall,
    LlmCallStatus,
    LlmRequest,
    LlmResult,
    ProviderResponse,
    Recording,
    RecordingMode,
    Role,
    TextSink,
)
from crucible_agent.domain.pricing import DEFAULT_PRICES, PriceTable
from crucible_agent.service_layer import commands as c
from crucible_agent.service_layer import handlers as h
from crucible_agent.service_layer.call_log import CallLog
from crucible_agent.service_layer.llm import LlmService
from crucible_common.errors import ValidationFailed
from crucible_common.streams import Emit, relay
from tests.unit.agent.fakes import CutShort, Deltas, FakeProvider, FakeUowFactory, answer, pieces

P = TypeVar("P", bound=LlmProvider)
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def setup(
    script: list[ProviderResponse | ProviderError | CutShort],
) -> tuple[LlmService, CallLog, FakeProvider, FakeUowFactory]:
    return setup_with(FakeProvider("openai", script))


def setup_with(provider: P) -> tuple[LlmService, CallLog, P, FakeUowFactory]:
    pool = ProviderPool({"openai": provider}, concurrency=4, max_retries=2, retry_base_seconds=0.0001)
    factory = FakeUowFactory()
    llm = LlmService(pool, PriceTable(DEFAULT_PRICES), factory, structured_retries=1, capture_prompts=True)
    return llm, CallLog(factory), provider, factory


def command(text: str = "How many?", **kwargs: object) -> c.Complete:
    base = c.Complete("openai", "gpt-4o-mini", (ChatMessage(Role.USER, text),))
    return replace(base, **kwargs)  # type: ignore[arg-type]


async def stream(cmd: c.Complete, llm: LlmService, log: CallLog) -> tuple[Deltas, LlmResult]:
    deltas = Deltas()
    result = await h.complete(cmd, llm, log, on_delta=deltas)
    return deltas, result


def text_of(deltas: list[Delta], attempt: int) -> str:
    return "".join(d.text for d in deltas if d.attempt == attempt)


def stored(calls: list[LlmCall]) -> list[LlmCall]:
    """The calls as stored, but for what differs between two runs of the same call."""
    return [replace(x, id="", created_at=datetime.min, latency_ms=0) for x in calls]


async def test_the_answer_streams_in_pieces_in_order() -> None:
    text = "Three apples and a pear, counted twice."
    llm, log, _, _ = setup([answer(text)])

    deltas, result = await stream(command(), llm, log)

    assert [d.text for d in deltas] == pieces(text)
    assert {d.attempt for d in deltas} == {1}
    assert result.text == text_of(deltas, 1) == text
    assert not result.idempotent_replay


async def test_the_call_log_is_the_one_complete_writes() -> None:
    script: list[ProviderResponse | ProviderError | CutShort] = [
        ProviderUnavailable("openai", "502"),
        answer("not json"),
        answer(json.dumps({"n": 3}), input_tokens=700, output_tokens=40),
    ]
    cmd = command(json_schema=SCHEMA, schema_name="count", idempotency_key="spec-1:architect:7")
    llm, log, _, streamed_uow = setup(list(script))
    _, streamed = await stream(cmd, llm, log)
    llm, log, _, completed_uow = setup(list(script))
    completed = await h.complete(cmd, llm, log)

    assert stored(streamed_uow.state.llm_calls) == stored(completed_uow.state.llm_calls)
    assert [(x.status, x.attempt) for x in streamed_uow.state.llm_calls] == [
        (LlmCallStatus.FAILED, 1),
        (LlmCallStatus.INVALID_OUTPUT, 2),
        (LlmCallStatus.SUCCEEDED, 3),
    ]
    assert (streamed.structured, streamed.usd) == (completed.structured, completed.usd)


async def test_a_structured_re_ask_streams_as_the_next_attempt() -> None:
    llm, log, provider, uow = setup([answer("not json"), answer(json.dumps({"n": 3}))])

    deltas, result = await stream(command(json_schema=SCHEMA, schema_name="count"), llm, log)

    assert [d.attempt for d in deltas] == sorted(d.attempt for d in deltas)
    assert text_of(deltas, 1) == "not json"
    assert text_of(deltas, 2) == result.text == '{"n": 3}'
    assert result.structured == {"n": 3}
    # The re-ask is Complete's: the model sees its answer and what was wrong with it.
    assert "That answer is not valid: not JSON" in provider.requests[1].messages[-1].content
    # A delta's attempt is the number of the call it is stored as.
    assert [x.attempt for x in uow.state.llm_calls] == [1, 2]


async def test_a_stream_cut_short_is_retried_as_a_new_attempt() -> None:
    llm, log, _, uow = setup(
        [CutShort("Three app", ProviderUnavailable("openai", "the stream broke")), answer("Three apples.")]
    )

    deltas, result = await stream(command(), llm, log)

    assert text_of(deltas, 1) == "Three app"
    assert text_of(deltas, 2) == result.text == "Three apples."
    assert [(x.status, x.attempt) for x in uow.state.llm_calls] == [
        (LlmCallStatus.FAILED, 1),
        (LlmCallStatus.SUCCEEDED, 2),
    ]


async def test_attempts_count_across_provider_retries_and_re_asks() -> None:
    llm, log, _, _ = setup(
        [
            CutShort("{", ProviderUnavailable("openai", "the stream broke")),
            answer('{"n": "three"}'),
            CutShort('{"n"', ProviderUnavailable("openai", "the stream broke")),
            answer('{"n": 3}'),
        ]
    )

    deltas, result = await stream(command(json_schema=SCHEMA), llm, log)

    assert [text_of(deltas, n) for n in (1, 2, 3, 4)] == ["{", '{"n": "three"}', '{"n"', '{"n": 3}']
    assert result.structured == {"n": 3}
    assert [x.attempt for x in result.calls] == [1, 2, 3, 4]


async def test_an_idempotent_replay_sends_only_the_result() -> None:
    llm, log, provider, uow = setup([answer(json.dumps({"n": 3}))])
    cmd = command(json_schema=SCHEMA, schema_name="count", idempotency_key="spec-1:architect:7")
    first_deltas, first = await stream(cmd, llm, log)

    deltas, again = await stream(cmd, llm, log)

    assert first_deltas
    assert deltas == []
    assert again.idempotent_replay
    assert (again.text, again.final_call.id) == (first.text, first.final_call.id)
    assert len(provider.requests) == 1
    assert len(uow.state.llm_calls) == 1


async def test_a_recording_replays_as_one_delta_and_is_free() -> None:
    key = "snapshot-1"
    llm, log, provider, _ = setup([answer("Recorded once.")])
    await h.complete(command(recording=Recording(RecordingMode.RECORD, key)), llm, log)

    deltas, result = await stream(command(recording=Recording(RecordingMode.REPLAY, key)), llm, log)

    assert deltas == [Delta("Recorded once.", 1)]
    assert result.text == "Recorded once."
    assert [x.status for x in result.calls] == [LlmCallStatus.REPLAYED]
    assert result.usd == 0
    assert len(provider.requests) == 1


async def test_a_bad_request_fails_before_any_delta() -> None:
    llm, log, provider, _ = setup([])
    deltas = Deltas()

    with pytest.raises(ValidationFailed):
        await h.complete(command(model=" "), llm, log, on_delta=deltas)

    assert deltas == []
    assert provider.requests == []


async def test_a_failed_call_raises_after_its_deltas_and_is_stored() -> None:
    llm, log, _, uow = setup([answer("no"), answer("still no")])
    deltas = Deltas()

    with pytest.raises(StructuredOutputInvalid) as info:
        await h.complete(command(json_schema=SCHEMA), llm, log, on_delta=deltas)

    assert [(text_of(deltas, 1), text_of(deltas, 2))] == [("no", "still no")]
    assert info.value.raw == "still no"
    assert [x.status for x in uow.state.llm_calls] == [LlmCallStatus.INVALID_OUTPUT] * 2


class Stalling(LlmProvider):
    """Writes a first piece, then waits for ever; says whether it was cancelled."""

    name = "openai"

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()

    async def complete(self, request: LlmRequest) -> ProviderResponse:
        raise AssertionError("only streamed here")

    async def stream(self, request: LlmRequest, on_text: TextSink) -> ProviderResponse:
        await on_text("Thinking")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        raise AssertionError("unreachable")

    async def close(self) -> None:
        return None


async def test_a_consumer_that_leaves_cancels_the_model_call_and_it_is_stored_cancelled() -> None:
    provider = Stalling()
    llm, log, _, uow = setup_with(provider)

    async def call(emit: Emit[Delta | LlmResult]) -> Delta | LlmResult:
        return await h.complete(command(), llm, log, on_delta=emit)

    # As StreamComplete serves it.
    events = relay(call)
    assert await anext(events) == Delta("Thinking", 1)
    await events.aclose()  # type: ignore[attr-defined]

    # Cancelled before aclose returned: the provider's connection is not left running.
    assert provider.cancelled.is_set()
    # What it began may be billed: stored, without the caller, at a cost unknown.
    await llm.drain()
    assert [(c.status, c.usd) for c in uow.state.llm_calls] == [(LlmCallStatus.CANCELLED, None)]
