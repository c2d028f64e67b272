"""One execution of a keyed piece of work at a time, carried to its end even when its callers leave.

A model call named by an idempotency key is paid for once its answer arrives. If the caller goes
away meanwhile (a run service killed, a deadline), cancelling the call would drop an answer already
bought, and the caller's retry would buy it again. Here the work runs in a task of its own: callers
wait for it (a retry that arrives while it is in flight joins it), and leaving does not cancel it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class SingleFlight(Generic[K, T]):
    def __init__(self) -> None:
        self._running: dict[K, asyncio.Task[T]] = {}

    async def run(self, key: K, work: Callable[[], Awaitable[T]]) -> T:
        """``work()``'s result; while one is in flight for ``key``, its result instead of a second run."""
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(work())
            self._running[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(task)

    async def cancel(self) -> None:
        """Cancel the work in flight (the service stopping) and wait until it has stopped."""
        running = list(self._running.values())
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _finished(self, key: K, task: asyncio.Task[T]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        # Every caller may have left: the outcome is looked at here, so a failure is logged once
        # instead of as "Task exception was never retrieved".
        if not task.cancelled() and task.exception() is not None:
            logger.debug("%r: failed", key, exc_info=task.exception())
