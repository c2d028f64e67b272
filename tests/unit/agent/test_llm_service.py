"""LlmService on fake providers behind a real ProviderPool: cost, structured retries, errors, replay."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest

from crucible_agent.adapters.providers.pool import ProviderPool
from crucible_agent.domain.errors import (
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
    ReplayMiss,
    StructuredOutputInvalid,
)
from crucible_agent.domain.model import (
    CallAllowance,
    ChatMessage,
    Correlation,
    LlmCallStatus,
    LlmRequest,
    ProviderResponse,
    Recording,
    RecordingMode,
    Role,
)
from crucible_agent.domain.pricing import DEFAULT_PRICES, PriceTable
from crucible_agent.service_layer.llm import LlmService
from crucible_agent.service_layer.structured import hash_request
from crucible_common.leases import Lease, LeaseLost
from crucible_run.domain import estimates as est
from crucible_run.service_layer import prompts as run_prompts
from tests.unit.agent.fakes import FakeProvider, FakeUowFactory, answer

CORRELATION = Correlation(project_id="p1", purpose="test")
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "integer"}},
    "required": ["answer"],
    "additionalProperties": False,
}


def request(text: str = "What is 2 + 2?", model: str = "gpt-4o-mini", **kwargs: object) -> LlmRequest:
    base = LlmRequest("openai", model, (ChatMessage(Role.USER, text),))
    return replace(base, **kwargs)  # type: ignore[arg-type]


def service(
    script: list[ProviderResponse | ProviderError] | None = None,
    *,
    always: ProviderError | None = None,
    structured_retries: int = 1,
    max_retries: int = 2,
    uow: FakeUowFactory | None = None,
) -> tuple[LlmService, FakeProvider, FakeUowFactory]:
    provider = FakeProvider("openai", script or [], always=always)
    pool = ProviderPool({"openai": provider}, concurrency=4, max_retries=max_retries, retry_base_seconds=0.0001)
    factory = uow or FakeUowFactory()
    llm = LlmService(
        pool, PriceTable(DEFAULT_PRICES), factory, structured_retries=structured_retries, capture_prompts=True
    )
    return llm, provider, factory


async def test_a_text_call_is_one_succeeded_priced_call() -> None:
    llm, provider, _ = service([answer("4", input_tokens=1_000, output_tokens=500)])

    outcome = await llm.complete(request(), CORRELATION)

    result = outcome.unwrap()
    assert result.text == "4"
    assert result.structured is None
    assert [c.status for c in outcome.calls] == [LlmCallStatus.SUCCEEDED]
    call = outcome.calls[0]
    assert call.usd == pytest.approx((1_000 * 0.15 + 500 * 0.60) / 1e6)
    assert (call.input_tokens, call.output_tokens, call.attempt) == (1_000, 500, 1)
    assert call.correlation == CORRELATION
    assert call.request_hash == hash_request(request())
    assert result.usd == call.usd
    assert outcome.recording is None
    assert len(provider.requests) == 1


async def test_an_unpriced_model_costs_none_not_zero() -> None:
    llm, _, _ = service([answer("hi", model="my-local-model")])

    outcome = await llm.complete(request(model="my-local-model"), CORRELATION)

    assert outcome.error is None
    assert [c.usd for c in outcome.calls] == [None]
    assert outcome.unwrap().usd is None


async def test_an_answer_that_does_not_report_its_usage_costs_none_not_zero() -> None:
    llm, _, _ = service([replace(answer("hi"), input_tokens=0, output_tokens=0, usage_reported=False)])

    outcome = await llm.complete(request(), CORRELATION)

    assert [c.usd for c in outcome.calls] == [None]
    assert outcome.unwrap().usd is None


async def test_an_invalid_structured_answer_is_retried_with_the_problem_in_view() -> None:
    llm, provider, _ = service([answer("not json at all"), answer('{"answer": 4}')])

    outcome = await llm.complete(request(json_schema=SCHEMA, schema_name="sum"), CORRELATION)

    result = outcome.unwrap()
    assert result.structured == {"answer": 4}
    assert [c.status for c in outcome.calls] == [LlmCallStatus.INVALID_OUTPUT, LlmCallStatus.SUCCEEDED]
    assert [c.attempt for c in outcome.calls] == [1, 2]
    assert "not JSON" in outcome.calls[0].error
    # An invalid answer was still paid for.
    assert outcome.calls[0].usd is not None
    assert outcome.calls[0].usd > 0
    retry = provider.requests[1]
    assert retry.messages[0] == provider.requests[0].messages[0]
    assert retry.messages[-2] == ChatMessage(Role.ASSISTANT, "not json at all")
    assert retry.messages[-1].role is Role.USER
    assert "not valid: not JSON" in retry.messages[-1].content


async def test_a_fence_that_refuses_a_re_ask_returns_the_paid_attempts_with_lease_lost() -> None:
    llm, provider, _ = service([answer("not json at all"), answer('{"answer": 4}')])
    lease = Lease("sprint", "s1", "p1", 1)
    fenced = 0

    async def fence() -> None:
        nonlocal fenced
        fenced += 1
        if fenced > 1:
            raise LeaseLost(lease)

    outcome = await llm.complete(request(json_schema=SCHEMA, schema_name="sum"), CORRELATION, fence=fence)

    assert isinstance(outcome.error, LeaseLost)
    assert outcome.result is None
    # The invalid answer was paid for, so it goes back to be stored; the re-ask was never sent.
    assert [c.status for c in outcome.calls] == [LlmCallStatus.INVALID_OUTPUT]
    assert len(provider.requests) == 1


async def test_a_re_ask_past_the_calls_token_allowance_is_not_made() -> None:
    llm, provider, _ = service([answer("not json", input_tokens=100, output_tokens=50), answer('{"answer": 4}')])

    # 150 spent; the re-ask would read about 100 + 50 + the note, and answer about 50 more.
    outcome = await llm.complete(
        request(json_schema=SCHEMA, schema_name="sum"), CORRELATION, allowance=CallAllowance(tokens=330)
    )

    assert isinstance(outcome.error, StructuredOutputInvalid)
    assert "not asked again" in outcome.error.message
    assert "allowance of 330 tokens (150 spent)" in outcome.error.message
    assert outcome.error.raw == "not json"
    assert [c.status for c in outcome.calls] == [LlmCallStatus.INVALID_OUTPUT]
    assert len(provider.requests) == 1


async def test_a_re_ask_within_the_calls_allowance_is_made() -> None:
    llm, provider, _ = service([answer("not json", input_tokens=100, output_tokens=50), answer('{"answer": 4}')])

    outcome = await llm.complete(
        request(json_schema=SCHEMA, schema_name="sum"), CORRELATION, allowance=CallAllowance(usd=1.0, tokens=400)
    )

    assert outcome.unwrap().structured == {"answer": 4}
    assert len(provider.requests) == 2


async def test_a_re_ask_past_the_calls_usd_allowance_is_not_made_unless_its_cost_is_unknown() -> None:
    # gpt-4o-mini: 150 in + 50 out = $0.0000525 paid; the re-ask is about as much again and more.
    llm, provider, _ = service([answer("not json", input_tokens=150, output_tokens=50), answer('{"answer": 4}')])
    outcome = await llm.complete(
        request(json_schema=SCHEMA, schema_name="sum"), CORRELATION, allowance=CallAllowance(usd=0.0001)
    )
    assert isinstance(outcome.error, StructuredOutputInvalid)
    assert "allowance of $0.000100" in outcome.error.message
    assert len(provider.requests) == 1

    # An unpriced model's re-ask has no known cost: a usd allowance cannot refuse it.
    unpriced: list[ProviderResponse | ProviderError] = [
        answer("not json", "no-such-model"),
        answer('{"answer": 4}', "no-such-model"),
    ]
    llm, provider, _ = service(unpriced)
    outcome = await llm.complete(
        request(json_schema=SCHEMA, model="no-such-model"), CORRELATION, allowance=CallAllowance(usd=0.0)
    )
    assert outcome.unwrap().structured == {"answer": 4}
    assert len(provider.requests) == 2


async def test_answers_that_do_not_report_their_usage_still_count_against_the_allowance() -> None:
    def unreported(text: str) -> ProviderResponse:
        return replace(answer(text, input_tokens=0, output_tokens=0), usage_reported=False)

    llm, provider, _ = service([unreported("x" * 400) for _ in range(3)], structured_retries=2)

    # Estimated from characters: 100 + 100 tokens spent, a re-ask of about 100 + 100 + the note,
    # answering 100: it fits; after it, about 535 are spent and the next would not fit.
    outcome = await llm.complete(
        request("y" * 400, json_schema=SCHEMA), CORRELATION, allowance=CallAllowance(tokens=600)
    )

    assert isinstance(outcome.error, StructuredOutputInvalid)
    assert "allowance of 600 tokens" in outcome.error.message
    assert len(provider.requests) == 2
    # Stored as they were reported: at an unknown cost, not an estimated one; the error, for a
    # caller's budget, says what they cost as estimated (100 + 100, then about 235 + 100).
    assert [(c.input_tokens, c.output_tokens, c.usd) for c in outcome.calls] == [(0, 0, None)] * 2
    with pytest.raises(StructuredOutputInvalid) as raised:
        outcome.unwrap()
    assert 500 < int(raised.value.metadata["spent_tokens"]) < 600
    assert float(raised.value.metadata["spent_usd"]) > 0  # priced by the estimate, not $0


@pytest.mark.parametrize("retries", range(6))  # every setting CRUCIBLE_STRUCTURED_OUTPUT_RETRIES allows
async def test_the_room_a_run_holds_for_a_call_lets_the_agent_make_every_re_ask(retries: int) -> None:
    """The run's ``most`` (what a budget with room holds for a call, for the attempts this service
    says it makes) and this service's re-ask check agree: an evaluation whose answers run longer
    than the run estimated is still asked again as many times as the setting says."""
    price = est.ModelPrice(0.15, 0.60)  # gpt-4o-mini's, as the run reads it
    prompt = "Evaluate the candidate in the scenario. " * 50
    first = est.of_call(
        run_prompts.EVALUATOR_SYSTEM, prompt, run_prompts.EVALUATION_SCHEMA, est.EVALUATION_OUTPUT, price
    )
    long_answer = est.EVALUATION_OUTPUT * 3 // 2
    texts = [f"[{k}]" for k in range(retries)] + ['{"answer": 4}']
    script: list[ProviderResponse | ProviderError] = [
        answer(text, input_tokens=first.input_tokens + k * (long_answer + 40), output_tokens=long_answer)
        for k, text in enumerate(texts)
    ]
    llm, provider, _ = service(script, structured_retries=retries)
    most = est.most(first, price, llm.structured_attempts)

    outcome = await llm.complete(
        request(prompt, json_schema=SCHEMA), CORRELATION, allowance=CallAllowance(usd=most.usd, tokens=most.tokens)
    )

    assert outcome.unwrap().structured == {"answer": 4}
    assert len(provider.requests) == retries + 1


async def test_a_re_ask_the_provider_refuses_still_says_what_the_invalid_answer_before_it_cost() -> None:
    # An answer that reported no usage, then a re-ask the provider refuses.
    unreported = replace(answer("x" * 400, input_tokens=0, output_tokens=0), usage_reported=False)
    llm, _, _ = service([unreported, ProviderRejected("openai", "too long")])

    outcome = await llm.complete(request("y" * 400, json_schema=SCHEMA), CORRELATION)

    with pytest.raises(ProviderRejected) as raised:
        outcome.unwrap()
    # Stored at an unknown cost; for a caller's budget, estimated from its characters, not $0.
    assert raised.value.metadata["spent_tokens"] == "200"
    assert float(raised.value.metadata["spent_usd"]) == pytest.approx((100 * 0.15 + 100 * 0.60) / 1e6)


async def test_a_schema_violation_names_the_problem_to_the_model() -> None:
    llm, provider, _ = service([answer('{"answer": "four"}'), answer('{"answer": 4}')])

    outcome = await llm.complete(request(json_schema=SCHEMA), CORRELATION)

    assert outcome.unwrap().structured == {"answer": 4}
    assert "answer" in outcome.calls[0].error
    assert "answer: " in provider.requests[1].messages[-1].content


async def test_an_answer_never_valid_fails_loudly_with_the_raw_answer() -> None:
    retries = 2
    script: list[ProviderResponse | ProviderError] = [answer(f"[{i}]") for i in range(retries + 1)]
    llm, provider, _ = service(script, structured_retries=retries)

    outcome = await llm.complete(request(json_schema=SCHEMA, schema_name="sum"), CORRELATION)

    assert outcome.result is None
    assert isinstance(outcome.error, StructuredOutputInvalid)
    assert outcome.error.raw == f"[{retries}]"
    assert outcome.error.llm_call_id == outcome.calls[-1].id
    assert outcome.error.reason == "STRUCTURED_OUTPUT_INVALID"
    assert [c.status for c in outcome.calls] == [LlmCallStatus.INVALID_OUTPUT] * (retries + 1)
    assert len(provider.requests) == retries + 1
    with pytest.raises(StructuredOutputInvalid) as raised:
        outcome.unwrap()
    # Every attempt was paid: the error says what they cost, for a caller that keeps a budget.
    tokens = sum(c.input_tokens + c.output_tokens for c in outcome.calls)
    assert tokens > 0
    assert raised.value.metadata["spent_tokens"] == str(tokens)
    assert float(raised.value.metadata["spent_usd"]) == pytest.approx(sum(c.usd or 0.0 for c in outcome.calls))


async def test_a_provider_error_after_every_retry_is_the_outcome_error() -> None:
    max_retries = 2
    llm, provider, _ = service(always=ProviderUnavailable("openai", "down"), max_retries=max_retries)

    outcome = await llm.complete(request(), CORRELATION)

    assert outcome.result is None
    assert isinstance(outcome.error, ProviderUnavailable)
    assert len(provider.requests) == max_retries + 1
    assert [c.status for c in outcome.calls] == [LlmCallStatus.FAILED] * (max_retries + 1)
    assert [c.attempt for c in outcome.calls] == [1, 2, 3]
    assert all(c.usd == 0.0 for c in outcome.calls)
    assert all(c.error.startswith("PROVIDER_UNAVAILABLE") for c in outcome.calls)
    assert all(c.response is None for c in outcome.calls)


async def test_a_retryable_error_then_an_answer_keeps_the_failed_attempt() -> None:
    llm, _, _ = service([ProviderUnavailable("openai", "blip"), answer("4")])

    outcome = await llm.complete(request(), CORRELATION)

    assert outcome.unwrap().text == "4"
    assert [c.status for c in outcome.calls] == [LlmCallStatus.FAILED, LlmCallStatus.SUCCEEDED]


async def test_a_recorded_answer_replays_free_and_without_a_provider_call() -> None:
    llm, provider, uow_factory = service([answer("recorded 4", input_tokens=100, output_tokens=20)])
    record = Recording(RecordingMode.RECORD, "key-1")

    recorded = await llm.complete(request(), CORRELATION, record)
    assert recorded.recording is not None
    assert not recorded.single_statement
    async with uow_factory() as uow:
        await recorded.store(uow)
        await uow.commit()
    assert len(uow_factory.state.recordings) == 1
    assert len(uow_factory.state.llm_calls) == 1

    replayed = await llm.complete(request(), CORRELATION, Recording(RecordingMode.REPLAY, "key-1"))

    result = replayed.unwrap()
    assert result.text == "recorded 4"
    assert [c.status for c in replayed.calls] == [LlmCallStatus.REPLAYED]
    assert replayed.calls[0].usd == 0.0
    assert replayed.calls[0].input_tokens == 100
    assert replayed.recording is None
    assert len(provider.requests) == 1


async def test_a_structured_replay_parses_the_recorded_answer() -> None:
    llm, _, uow_factory = service([answer('{"answer": 4}')])
    structured = request(json_schema=SCHEMA)

    recorded = await llm.complete(structured, CORRELATION, Recording(RecordingMode.RECORD, "k"))
    async with uow_factory() as uow:
        await recorded.store(uow)
        await uow.commit()
    replayed = await llm.complete(structured, CORRELATION, Recording(RecordingMode.REPLAY, "k"))

    assert replayed.unwrap().structured == {"answer": 4}


async def test_an_uncommitted_recording_is_rolled_back() -> None:
    llm, _, uow_factory = service([answer("4")])

    recorded = await llm.complete(request(), CORRELATION, Recording(RecordingMode.RECORD, "k"))
    async with uow_factory() as uow:
        await recorded.store(uow)

    assert uow_factory.state.recordings == {}
    assert uow_factory.state.llm_calls == []


async def test_a_replay_with_nothing_recorded_is_a_replay_miss() -> None:
    llm, provider, _ = service()

    outcome = await llm.complete(request(), CORRELATION, Recording(RecordingMode.REPLAY, "empty"))

    assert outcome.result is None
    assert isinstance(outcome.error, ReplayMiss)
    assert outcome.error.metadata["request_hash"] == hash_request(request())
    assert outcome.calls == ()
    assert provider.requests == []


async def test_a_replay_of_another_request_misses() -> None:
    llm, _, uow_factory = service([answer("4")])
    recorded = await llm.complete(request("2 + 2?"), CORRELATION, Recording(RecordingMode.RECORD, "k"))
    async with uow_factory() as uow:
        await recorded.store(uow)
        await uow.commit()

    outcome = await llm.complete(request("3 + 3?"), CORRELATION, Recording(RecordingMode.REPLAY, "k"))

    assert isinstance(outcome.error, ReplayMiss)


async def test_stored_calls_add_up_in_usage() -> None:
    llm, _, uow_factory = service(
        [answer("a", input_tokens=1_000, output_tokens=0), ProviderUnavailable("openai", "x"), answer("b")]
    )
    for _ in range(2):
        outcome = await llm.complete(request(), CORRELATION)
        async with uow_factory(single_statement=True) as uow:
            await outcome.store(uow)
            await uow.commit()

    async with uow_factory(read_only=True) as uow:
        report = await uow.repo.usage(Correlation(project_id="p1"))

    assert report.total.calls == 3
    assert report.total.failed_calls == 1
    assert report.total.unpriced_calls == 0
    assert report.total.input_tokens == 1_010
    assert [(m.provider, m.model, m.priced) for m in report.by_model] == [("openai", "gpt-4o-mini", True)]


class _AnswersThenHangs(FakeProvider):
    """Answers its script, then never answers: the call in flight when its caller leaves."""

    def __init__(self, script: list[ProviderResponse]) -> None:
        super().__init__("openai", script)
        self.hanging = asyncio.Event()

    async def complete(self, request: LlmRequest) -> ProviderResponse:
        if len(self.requests) < len(self.script):
            return await super().complete(request)
        self.requests.append(request)
        self.hanging.set()
        await asyncio.Event().wait()
        raise AssertionError("never answered")


async def test_a_caller_cancelled_mid_call_leaves_its_attempts_stored_the_last_cancelled() -> None:
    """A stream closed, work cancelled: the provider may bill the attempt in flight (and billed the
    ones before), so they are stored without the caller, the last at an unknown cost."""
    provider = _AnswersThenHangs([answer("not json at all", input_tokens=100, output_tokens=10)])
    pool = ProviderPool({"openai": provider}, concurrency=4, max_retries=0, retry_base_seconds=0.0001)
    uow_factory = FakeUowFactory()
    llm = LlmService(pool, PriceTable(DEFAULT_PRICES), uow_factory, structured_retries=1, capture_prompts=False)

    call = asyncio.create_task(
        llm.complete(request(json_schema=SCHEMA, schema_name="sum"), CORRELATION, idempotency_key="k-1")
    )
    await asyncio.wait_for(provider.hanging.wait(), 1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await asyncio.wait_for(llm.drain(), 1)

    stored = uow_factory.state.llm_calls
    assert [(c.attempt, c.status) for c in stored] == [
        (1, LlmCallStatus.INVALID_OUTPUT),
        (2, LlmCallStatus.CANCELLED),
    ]
    cancelled = stored[1]
    assert (cancelled.usd, cancelled.input_tokens, cancelled.output_tokens) == (None, 0, 0)
    assert cancelled.error == "CANCELLED: the caller left before the answer"
    assert {c.idempotency_key for c in stored} == {"k-1"}
    async with uow_factory(read_only=True) as uow:
        report = await uow.repo.usage(Correlation(project_id="p1"))
    assert (report.total.calls, report.total.cancelled_calls, report.total.unpriced_calls) == (2, 1, 0)
    assert report.total.usd == pytest.approx(stored[0].usd)


async def test_a_caller_cancelled_out_of_flight_leaves_no_cancelled_call() -> None:
    """Cancelled while it waits out a backoff: nothing was in flight, so nothing may be billed but
    the failed attempt, stored as it would have been."""
    refused = asyncio.Event()

    class RateLimited(FakeProvider):
        async def complete(self, request: LlmRequest) -> ProviderResponse:
            refused.set()
            raise ProviderRateLimited("openai", "slow down", retry_after=5.0)

    provider = RateLimited("openai")
    pool = ProviderPool({"openai": provider}, concurrency=4, max_retries=2, retry_base_seconds=0.0001)
    uow_factory = FakeUowFactory()
    llm = LlmService(pool, PriceTable(DEFAULT_PRICES), uow_factory, structured_retries=1, capture_prompts=False)

    call = asyncio.create_task(llm.complete(request(), CORRELATION))
    await asyncio.wait_for(refused.wait(), 1)
    # Into its 5 s backoff.
    await asyncio.sleep(0.01)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await asyncio.wait_for(llm.drain(), 1)

    assert [(c.attempt, c.status, c.usd) for c in uow_factory.state.llm_calls] == [(1, LlmCallStatus.FAILED, 0.0)]


def test_the_request_hash_is_stable() -> None:
    assert hash_request(request()) == hash_request(request())
    same_schema = json.loads(json.dumps(SCHEMA))
    assert hash_request(request(json_schema=SCHEMA)) == hash_request(request(json_schema=same_schema))


def test_the_request_hash_changes_with_what_determines_the_answer() -> None:
    base = hash_request(request())
    assert hash_request(request("What is 3 + 3?")) != base
    assert hash_request(replace(request(), messages=(ChatMessage(Role.SYSTEM, "What is 2 + 2?"),))) != base
    assert hash_request(request(model="gpt-4o")) != base
    assert hash_request(request(json_schema=SCHEMA)) != base
    assert hash_request(request(temperature=0.5)) != base
