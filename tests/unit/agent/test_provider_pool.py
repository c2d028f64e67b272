"""ProviderPool: the per-provider concurrency limit and the retry policy, on a fake provider."""

from __future__ import annotations

import asyncio

import pytest

from crucible_agent.adapters.providers.base import LlmProvider
from crucible_agent.adapters.providers.pool import ProviderPool
from crucible_agent.domain.errors import (
    ProviderError,
    ProviderNotConfigured,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
    UnknownProvider,
)
from crucible_agent.domain.model import ChatMessage, Delta, LlmRequest, ProviderResponse, Role, TextSink
from crucible_common.leases import Lease, LeaseLost
from tests.unit.agent.fakes import Deltas

REQUEST = LlmRequest("openai", "gpt-4o-mini", (ChatMessage(Role.USER, "hi"),))
ANSWER = ProviderResponse("hello", (), "stop", "gpt-4o-mini", 3, 1)


class FakeProvider(LlmProvider):
    name = "openai"

    def __init__(self, failures: list[ProviderError] | None = None, delay: float = 0.0) -> None:
        self.failures = list(failures or [])
        self.delay = delay
        self.in_flight = 0
        self.max_in_flight = 0
        self.calls = 0
        self.streamed = 0

    async def stream(self, request: LlmRequest, on_text: TextSink) -> ProviderResponse:
        # Half the answer is written before a failure shows, as when a stream breaks mid-way.
        self.streamed += 1
        await on_text(ANSWER.text[:2])
        response = await self.complete(request)
        await on_text(ANSWER.text[2:])
        return response

    async def complete(self, request: LlmRequest) -> ProviderResponse:
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            if self.failures:
                raise self.failures.pop(0)
            return ANSWER
        finally:
            self.in_flight -= 1

    async def close(self) -> None:
        return None


def pool(provider: FakeProvider, *, concurrency: int = 4, retries: int = 3) -> ProviderPool:
    return ProviderPool({"openai": provider}, concurrency=concurrency, max_retries=retries, retry_base_seconds=0.001)


async def test_the_concurrency_limit_holds_per_provider() -> None:
    provider = FakeProvider(delay=0.02)
    limited = pool(provider, concurrency=3)
    await asyncio.gather(*(limited.call(REQUEST) for _ in range(12)))
    assert provider.calls == 12
    assert provider.max_in_flight == 3


async def test_retryable_errors_are_retried_then_answered() -> None:
    provider = FakeProvider(
        [ProviderRateLimited("openai", "slow down", retry_after=0.001), ProviderUnavailable("openai", "502")]
    )
    attempts = await pool(provider).call(REQUEST)
    assert [a.error.reason if a.error else "ok" for a in attempts] == [
        "PROVIDER_RATE_LIMITED",
        "PROVIDER_UNAVAILABLE",
        "ok",
    ]
    assert attempts[-1].response == ANSWER


async def test_a_streamed_call_numbers_the_deltas_of_each_attempt() -> None:
    provider = FakeProvider([ProviderUnavailable("openai", "the stream broke")])
    deltas = Deltas()

    attempts = await pool(provider).call(REQUEST, deltas)

    assert [a.number for a in attempts] == [1, 2]
    assert attempts[-1].response == ANSWER
    assert deltas == [Delta("he", 1), Delta("he", 2), Delta("llo", 2)]
    assert (provider.streamed, provider.calls) == (2, 2)


async def test_without_a_sink_nothing_is_streamed() -> None:
    provider = FakeProvider()
    await pool(provider).call(REQUEST)
    assert (provider.streamed, provider.calls) == (0, 1)


async def test_retries_are_bounded() -> None:
    provider = FakeProvider([ProviderUnavailable("openai", "down")] * 10)
    attempts = await pool(provider, retries=2).call(REQUEST)
    assert len(attempts) == 3
    assert attempts[-1].error is not None


async def test_the_fence_is_asked_before_every_attempt_and_its_refusal_ends_the_call_unsent() -> None:
    provider = FakeProvider([ProviderRateLimited("openai", "slow down", retry_after=0.001)])
    asked = 0

    async def fence() -> None:
        nonlocal asked
        asked += 1
        if asked == 2:
            raise LeaseLost(Lease("sprint", "s1", "p1", 1))

    with pytest.raises(LeaseLost):
        await pool(provider).call(REQUEST, fence=fence)

    # The first attempt went out (and got a 429); its retry was refused before it was sent.
    assert (asked, provider.calls) == (2, 1)


async def test_a_rejected_request_is_not_retried() -> None:
    provider = FakeProvider([ProviderRejected("openai", "HTTP 400: unknown model")])
    attempts = await pool(provider).call(REQUEST)
    assert len(attempts) == 1
    assert attempts[0].error is not None
    assert attempts[0].error.reason == "PROVIDER_REJECTED_REQUEST"


def test_unknown_and_unconfigured_providers_are_clear_errors() -> None:
    p = pool(FakeProvider())
    with pytest.raises(UnknownProvider):
        p.check("mistral")
    with pytest.raises(ProviderNotConfigured):
        p.check("anthropic")


@pytest.mark.parametrize(
    ("retry_after", "waited"),
    [(0.0, "backoff"), (None, "backoff"), (0.3, 0.3), (30.0, 30.0), (600.0, "backoff")],
)
async def test_a_retry_waits_what_the_provider_asked_within_a_minute_else_backs_off(
    monkeypatch: pytest.MonkeyPatch, retry_after: float | None, waited: float | str
) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        if seconds:  # the fake provider's own sleep(0) is not a wait
            slept.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    provider = FakeProvider([ProviderRateLimited("openai", "slow down", retry_after=retry_after)])
    paced = ProviderPool({"openai": provider}, concurrency=4, max_retries=3, retry_base_seconds=1.0)

    await paced.call(REQUEST)

    if waited == "backoff":
        # The first retry's exponential backoff: the base, with jitter down to half of it.
        assert len(slept) == 1
        assert 0.5 <= slept[0] <= 1.0
    else:
        assert slept == [waited]
