"""Complete with an idempotency key: a key whose call succeeded is answered from it, never paid twice."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError

from crucible_agent.adapters.providers.pool import ProviderPool
from crucible_agent.domain.errors import IdempotencyKeyReused, ProviderUnavailable
from crucible_agent.domain.model import (
    ChatMessage,
    Correlation,
    LlmCallStatus,
    LlmRequest,
    ModelRef,
    ProviderResponse,
    Role,
)
from crucible_agent.domain.pricing import DEFAULT_PRICES, PriceTable
from crucible_agent.service_layer import commands as c
from crucible_agent.service_layer import handlers as h
from crucible_agent.service_layer.call_log import CallLog
from crucible_agent.service_layer.llm import LlmService
from crucible_common.errors import DatabaseUnavailable, ValidationFailed
from tests.unit.agent.fakes import FakeProvider, FakeUnitOfWork, FakeUowFactory, answer

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def setup(script: list[object]) -> tuple[LlmService, FakeProvider, FakeUowFactory]:
    provider = FakeProvider("openai", script)  # type: ignore[arg-type]
    pool = ProviderPool({"openai": provider}, concurrency=4, max_retries=0, retry_base_seconds=0)
    uow = FakeUowFactory()
    return LlmService(pool, PriceTable(DEFAULT_PRICES), uow, structured_retries=1, capture_prompts=False), provider, uow


def complete(text: str = "How many?", key: str = "run-1:evaluation:a:b") -> c.Complete:
    return c.Complete("openai", "gpt-4o-mini", (ChatMessage(Role.USER, text),), SCHEMA, "count", idempotency_key=key)


async def test_a_key_whose_call_succeeded_is_answered_from_it_without_a_provider_call() -> None:
    llm, provider, uow = setup([answer(json.dumps({"n": 3}))])

    first = await h.complete(complete(), llm, CallLog(uow))
    again = await h.complete(complete(), llm, CallLog(uow))

    assert len(provider.requests) == 1
    assert (first.structured, again.structured) == ({"n": 3}, {"n": 3})
    assert not first.idempotent_replay
    assert again.idempotent_replay
    assert again.final_call.id == first.final_call.id
    # One call stored, carrying the key; the replay stored nothing.
    assert [(x.status, x.idempotency_key) for x in uow.state.llm_calls] == [
        (LlmCallStatus.SUCCEEDED, "run-1:evaluation:a:b")
    ]


async def test_a_key_whose_call_failed_is_tried_again() -> None:
    llm, provider, uow = setup([ProviderUnavailable("openai", "503"), answer(json.dumps({"n": 4}))])

    with pytest.raises(ProviderUnavailable):
        await h.complete(complete(), llm, CallLog(uow))
    result = await h.complete(complete(), llm, CallLog(uow))

    assert result.structured == {"n": 4}
    assert len(provider.requests) == 2
    assert [x.status for x in uow.state.llm_calls] == [LlmCallStatus.FAILED, LlmCallStatus.SUCCEEDED]


async def test_a_key_names_one_request() -> None:
    llm, provider, uow = setup([answer(json.dumps({"n": 3}))])
    await h.complete(complete("How many?"), llm, CallLog(uow))

    with pytest.raises(IdempotencyKeyReused) as info:
        await h.complete(complete("How many now?"), llm, CallLog(uow))

    assert info.value.reason == "IDEMPOTENCY_KEY_REUSED"
    assert len(provider.requests) == 1


async def test_without_a_key_every_call_is_made() -> None:
    llm, provider, uow = setup([answer(json.dumps({"n": 1})), answer(json.dumps({"n": 2}))])

    await h.complete(complete(key=""), llm, CallLog(uow))
    await h.complete(complete(key=""), llm, CallLog(uow))

    assert len(provider.requests) == 2


async def test_a_too_long_key_is_a_bad_request() -> None:
    llm, _, uow = setup([])
    with pytest.raises(ValidationFailed) as info:
        await h.complete(complete(key="k" * 201), llm, CallLog(uow))
    assert [v.field for v in info.value.violations] == ["idempotency_key"]


def test_model_prices_say_unpriced_rather_than_free() -> None:
    prices = h.model_prices(
        c.GetModelPrices((ModelRef("openai", "gpt-4o-mini-2024-07-18"), ModelRef("openai", "my-finetune"))),
        PriceTable(DEFAULT_PRICES),
    )
    assert prices[0].price == DEFAULT_PRICES["gpt-4o-mini"]
    assert prices[1].price is None
    with pytest.raises(ValidationFailed):
        h.model_prices(c.GetModelPrices((ModelRef("openai", " "),)), PriceTable(DEFAULT_PRICES))


class SlowProvider(FakeProvider):
    """Answers after ``delay`` seconds, as a provider does while the caller may give up."""

    def __init__(self, delay: float, script: list[object]) -> None:
        super().__init__("openai", script)  # type: ignore[arg-type]
        self.delay = delay
        # Requests sent, answered or not (a cancelled one was paid for all the same).
        self.sent = 0

    async def complete(self, request: LlmRequest) -> ProviderResponse:
        self.sent += 1
        await asyncio.sleep(self.delay)
        return await super().complete(request)


def slow_setup(delay: float) -> tuple[LlmService, SlowProvider, FakeUowFactory]:
    provider = SlowProvider(delay, [answer(json.dumps({"n": 5}))])
    pool = ProviderPool({"openai": provider}, concurrency=4, max_retries=0, retry_base_seconds=0)
    uow = FakeUowFactory()
    return LlmService(pool, PriceTable(DEFAULT_PRICES), uow, structured_retries=1, capture_prompts=False), provider, uow


async def test_a_keyed_call_whose_caller_leaves_is_still_stored_and_its_retry_pays_nothing() -> None:
    llm, provider, uow = slow_setup(0.05)
    log = CallLog(uow)

    caller = asyncio.create_task(h.complete(complete(), llm, log))
    await asyncio.sleep(0.01)
    caller.cancel()  # the run service died, or its deadline passed
    with pytest.raises(asyncio.CancelledError):
        await caller
    retry = await h.complete(complete(), llm, log)  # arrives while the first call is in flight

    assert retry.structured == {"n": 5}
    assert provider.sent == 1
    assert [x.status for x in uow.state.llm_calls] == [LlmCallStatus.SUCCEEDED]
    assert (await h.complete(complete(), llm, log)).idempotent_replay


# ---------------------------------------------------------------- replicas: one claim a key in flight


class GatedProvider(FakeProvider):
    """Answers only once ``gate`` is set: a call that stays in flight while the test looks."""

    def __init__(self, script: list[object]) -> None:
        super().__init__("openai", script)  # type: ignore[arg-type]
        self.gate = asyncio.Event()
        self.asked = asyncio.Event()
        self.started = 0

    async def complete(self, request: LlmRequest) -> ProviderResponse:
        self.started += 1
        self.asked.set()
        await self.gate.wait()
        return await super().complete(request)


def replicas(script: list[object]) -> tuple[LlmService, GatedProvider, FakeUowFactory]:
    provider = GatedProvider(script)
    pool = ProviderPool({"openai": provider}, concurrency=4, max_retries=0, retry_base_seconds=0)
    uow = FakeUowFactory()
    return LlmService(pool, PriceTable(DEFAULT_PRICES), uow, structured_retries=1, capture_prompts=False), provider, uow


async def test_a_key_in_flight_in_one_replica_is_waited_for_by_another_not_paid_again() -> None:
    llm, provider, uow = replicas([answer(json.dumps({"n": 5}))])
    here, there = CallLog(uow, owner="replica-a"), CallLog(uow, owner="replica-b")

    first = asyncio.create_task(h.complete(complete(), llm, here))
    await provider.asked.wait()
    # The run's re-ask reaches the other replica while the first call is still in flight.
    second = asyncio.create_task(h.complete(complete(), llm, there))
    await asyncio.sleep(0.3)
    assert not second.done()
    provider.gate.set()
    answered, replayed = await first, await second

    assert len(provider.requests) == 1
    assert (answered.structured, replayed.structured) == ({"n": 5}, {"n": 5})
    assert replayed.idempotent_replay
    assert replayed.final_call.id == answered.final_call.id


async def test_a_runs_usage_says_how_many_of_its_keyed_calls_are_still_in_flight() -> None:
    llm, provider, uow = replicas([answer(json.dumps({"n": 7}))])
    asked = replace(complete(), correlation=Correlation(project_id="p", run_id="run-1"))
    usage = c.GetUsage(Correlation(run_id="run-1"))

    call = asyncio.create_task(h.complete(asked, llm, CallLog(uow)))
    await provider.asked.wait()
    during = await h.get_usage(usage, uow)
    provider.gate.set()
    await call
    after = await h.get_usage(usage, uow)
    another_run = await h.get_usage(c.GetUsage(Correlation(run_id="run-2")), uow)

    # A continued run waits for that count to reach 0 before it reads what it spent.
    assert (during.calls_in_flight, during.total.calls) == (1, 0)
    assert (after.calls_in_flight, after.total.calls) == (0, 1)
    assert another_run.calls_in_flight == 0


async def test_when_the_call_in_flight_fails_the_waiting_replica_makes_it() -> None:
    llm, provider, uow = replicas([ProviderUnavailable("openai", "503"), answer(json.dumps({"n": 6}))])
    here, there = CallLog(uow, owner="replica-a"), CallLog(uow, owner="replica-b")

    first = asyncio.create_task(h.complete(complete(), llm, here))
    await provider.asked.wait()
    second = asyncio.create_task(h.complete(complete(), llm, there))
    provider.gate.set()

    with pytest.raises(ProviderUnavailable):
        await first
    assert (await second).structured == {"n": 6}
    assert len(provider.requests) == 2
    # The failed call's claim went with its attempts; the key is the second call's now.
    assert [owner for owner, _ in uow.state.claims.values()] == ["replica-b:1"]


async def test_a_claim_whose_process_died_is_taken_over() -> None:
    llm, provider, uow = replicas([answer(json.dumps({"n": 7}))])
    provider.gate.set()
    # Claimed by a process that died mid-call: its claim lapsed a moment ago.
    uow.state.claims["run-1:evaluation:a:b"] = ("dead-host:1:abc:1", datetime.now(UTC) - timedelta(seconds=1))

    result = await asyncio.wait_for(h.complete(complete(), llm, CallLog(uow)), 5)

    assert result.structured == {"n": 7}
    assert len(provider.requests) == 1


async def test_a_cancelled_stream_releases_its_claim_and_a_second_stream_of_the_key_in_one_process_waits() -> None:
    llm, provider, uow = replicas([answer(json.dumps({"n": 8})), answer(json.dumps({"n": 9}))])
    log = CallLog(uow)
    pieces: list[object] = []

    async def on_delta(delta: object) -> None:
        pieces.append(delta)

    # Streams bypass the process's single flight (each lives with its caller); the claim still
    # makes a second stream of the key wait for the first.
    first = asyncio.create_task(h.complete(complete(), llm, log, on_delta=on_delta))
    await provider.asked.wait()
    second = asyncio.create_task(h.complete(complete(), llm, log, on_delta=on_delta))
    await asyncio.sleep(0.3)
    assert not second.done()
    assert provider.started == 1
    first.cancel()  # its caller left: the claim goes, and the waiting stream makes the call
    provider.gate.set()

    assert (await asyncio.wait_for(second, 5)).structured == {"n": 8}
    assert provider.started == 2


async def test_claims_in_flight_are_renewed_and_released_at_close() -> None:
    llm, provider, uow = replicas([answer(json.dumps({"n": 1}))])
    log = CallLog(uow, claim_seconds=1.0, heartbeat_seconds=0.1)
    renewing = asyncio.create_task(log.renew_forever())
    call = asyncio.create_task(h.complete(complete(), llm, log))
    await provider.asked.wait()
    try:
        await asyncio.sleep(1.5)  # past the claim's own second: only its renewals keep it
        ((_, expires),) = uow.state.claims.values()
        assert expires > datetime.now(UTC)
        # Another replica still waits for it.
        other = asyncio.create_task(h.complete(complete(), llm, CallLog(uow)))
        await asyncio.sleep(0.3)
        assert not other.done()
        # The service stops: the call in flight here is stopped first (it would never be answered
        # here), then its claim goes, so that the other replica need not wait it out.
        await log.close()
        assert call.done()
        provider.gate.set()
        assert (await asyncio.wait_for(other, 5)).structured == {"n": 1}
        assert provider.started == 2
    finally:
        renewing.cancel()
        call.cancel()


class FlakyUow(FakeUowFactory):
    """A database that refuses every unit of work while ``down``, and ends the next ``deadlocks``
    ones as Postgres ends one of two transactions waiting on each other."""

    down = False
    deadlocks = 0

    def __call__(self, **kw: Any) -> FakeUnitOfWork:
        if self.down:
            raise DatabaseUnavailable("the database is unavailable: connection refused")
        if self.deadlocks:
            self.deadlocks -= 1
            raise DBAPIError("INSERT INTO agent.llm_call_claims ...", None, Deadlock())
        return super().__call__(**kw)


class Deadlock(Exception):
    sqlstate = "40P01"


async def test_a_claim_round_ended_by_a_deadlock_is_run_again() -> None:
    provider = GatedProvider([answer(json.dumps({"n": 4}))])
    provider.gate.set()
    uow = FlakyUow()
    uow.deadlocks = 1
    pool = ProviderPool({"openai": provider}, concurrency=4, max_retries=0, retry_base_seconds=0)
    llm = LlmService(pool, PriceTable(DEFAULT_PRICES), uow, structured_retries=1, capture_prompts=False)

    assert (await h.complete(complete(), llm, CallLog(uow))).structured == {"n": 4}
    assert uow.deadlocks == 0


async def test_the_renewals_outlive_a_database_away() -> None:
    provider = GatedProvider([answer(json.dumps({"n": 2}))])
    uow = FlakyUow()
    pool = ProviderPool({"openai": provider}, concurrency=4, max_retries=0, retry_base_seconds=0)
    llm = LlmService(pool, PriceTable(DEFAULT_PRICES), uow, structured_retries=1, capture_prompts=False)
    log = CallLog(uow, claim_seconds=1.0, heartbeat_seconds=0.1)
    renewing = asyncio.create_task(log.renew_forever())
    call = asyncio.create_task(h.complete(complete(), llm, log))
    await provider.asked.wait()
    try:
        uow.down = True
        await asyncio.sleep(0.5)  # a few beats fail
        uow.down = False
        await asyncio.sleep(0.3)
        assert not renewing.done()
        ((_, expires),) = uow.state.claims.values()
        assert expires > datetime.now(UTC) + timedelta(seconds=0.7)  # renewed since
    finally:
        renewing.cancel()
        provider.gate.set()
        await call


async def test_a_claim_won_for_an_asker_that_left_is_let_go() -> None:
    llm, provider, uow = replicas([answer(json.dumps({"n": 3}))])
    provider.gate.set()
    log = CallLog(uow)
    leaving = asyncio.create_task(log.claim("run-1:evaluation:a:b"))
    await asyncio.sleep(0)  # in the round's wait for company
    leaving.cancel()
    await asyncio.sleep(0.1)  # the round goes on without it, and wins the key

    assert uow.state.claims == {}
    # So the key's next ask, here or elsewhere, makes the call at once.
    result = await asyncio.wait_for(h.complete(complete(), llm, CallLog(uow)), 0.5)
    assert result.structured == {"n": 3}
