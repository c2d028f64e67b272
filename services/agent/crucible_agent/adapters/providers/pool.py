"""Every provider behind one door: a concurrency limit each, and retries with backoff."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping

from crucible_agent.adapters.providers.base import LlmProvider
from crucible_agent.domain.errors import ProviderError, ProviderNotConfigured, UnknownProvider
from crucible_agent.domain.model import PROVIDERS, Delta, DeltaSink, Fence, LlmRequest, ProviderAttempt, TextSink

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 8.0
MAX_RETRY_AFTER_SECONDS = 60.0


class ProviderPool:
    def __init__(
        self,
        providers: Mapping[str, LlmProvider],
        *,
        concurrency: int,
        max_retries: int,
        retry_base_seconds: float,
    ) -> None:
        self._providers = dict(providers)
        self._limits = {name: asyncio.Semaphore(concurrency) for name in providers}
        self._max_retries = max_retries
        self._retry_base = retry_base_seconds
        self._random = random.Random()

    def check(self, provider: str, field: str = "provider") -> None:
        if provider not in PROVIDERS:
            raise UnknownProvider(provider, field)
        if provider not in self._providers:
            raise ProviderNotConfigured(provider)

    async def call(
        self,
        request: LlmRequest,
        on_delta: DeltaSink | None = None,
        *,
        fence: Fence | None = None,
        attempts: list[ProviderAttempt] | None = None,
    ) -> list[ProviderAttempt]:
        """Call until an answer or a final error; every attempt is returned, for the call log.

        The last attempt holds the answer, or the error that ended the retries. With ``on_delta``
        each attempt is streamed into it, numbered as the attempts are. ``fence`` is awaited
        before each attempt, once it holds a slot, and what it raises ends the call (the attempts
        before it all failed, so nothing paid for is lost with them). ``attempts``: see
        ``ModelProviders.call``.
        """
        self.check(request.provider)
        provider = self._providers[request.provider]
        attempts = [] if attempts is None else attempts
        for number in range(1, self._max_retries + 2):
            started = time.monotonic()
            # The limit covers the HTTP call only: a call waiting out its backoff holds no slot.
            async with self._limits[request.provider]:
                # As late as possible: a slot or a backoff can take long, and the work may have
                # been cancelled meanwhile. Nothing that can wait lies between this and the send.
                if fence is not None:
                    await fence()
                try:
                    if on_delta is None:
                        response = await provider.complete(request)
                    else:
                        response = await provider.stream(request, _numbered(on_delta, number))
                except ProviderError as exc:
                    attempts.append(ProviderAttempt(number, _ms(started), error=exc))
                except asyncio.CancelledError:
                    attempts.append(ProviderAttempt(number, _ms(started), cancelled=True))
                    raise
                else:
                    attempts.append(ProviderAttempt(number, _ms(started), response=response))
                    return attempts
            error = attempts[-1].error
            assert error is not None
            if not error.retryable or number > self._max_retries:
                return attempts
            delay = self._backoff(number, error.retry_after)
            logger.info("%s: %s; retry %d in %.2fs", request.provider, error.reason, number, delay)
            await asyncio.sleep(delay)
        return attempts

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        # As both SDKs do: a provider's Retry-After within a minute is waited out as asked; none, 0
        # or longer, the exponential backoff (a "0" does not send every retry at once, and a retry
        # sooner than asked would only meet the limit again).
        if retry_after is not None and 0 < retry_after <= MAX_RETRY_AFTER_SECONDS:
            return retry_after
        base = min(self._retry_base * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
        return float(base * (0.5 + self._random.random() / 2))

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self._providers.values()))


def _numbered(on_delta: DeltaSink, attempt: int) -> TextSink:
    async def write(text: str) -> None:
        await on_delta(Delta(text, attempt))

    return write


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
