"""Calling another service that may be restarting: wait for it, a while, instead of failing the work."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from crucible_common.errors import details_of

logger = logging.getLogger(__name__)

T = TypeVar("T")

# The service itself is away (restarting, overloaded); not a provider's or a request's failure.
_AWAY = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}


def away(error: grpc.aio.AioRpcError) -> bool:
    """The callee did not answer: its own reason, if any, is not a provider's."""
    return error.code() in _AWAY and not details_of(error).reason.startswith("PROVIDER_")


def unanswered(error: grpc.aio.AioRpcError) -> bool:
    """No answer either way (the callee away past the wait, or past the call's deadline), not a
    wrong one: the work goes on from what it stored, and asks again, once the callee is back."""
    return away(error) or error.code() is grpc.StatusCode.DEADLINE_EXCEEDED


async def patiently(call: Callable[[], Awaitable[T]], *, wait_seconds: float, what: str) -> T:
    """``call()``, tried again with backoff while the callee is away, for up to ``wait_seconds``."""
    deadline = time.monotonic() + wait_seconds
    delay = 0.2
    while True:
        try:
            return await call()
        except grpc.aio.AioRpcError as exc:
            if not away(exc) or time.monotonic() + delay > deadline:
                raise
            logger.info("%s: the service is away (%s); trying again in %.1fs", what, exc.code().name, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)
