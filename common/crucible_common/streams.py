"""Server-streaming RPCs over a use case that reports progress through a callback.

``relay(work)`` runs ``work(emit)`` in a task and yields each item it emits as soon as it is
emitted, then the item it returns. The work's exception is raised to the consumer after the
items emitted before it; a consumer that stops early (the client went away) cancels the work.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar, cast

T = TypeVar("T")

Emit = Callable[[T], Awaitable[None]]

_DONE = object()


async def relay(work: Callable[[Emit[T]], Awaitable[T]]) -> AsyncIterator[T]:
    queue: asyncio.Queue[object] = asyncio.Queue()

    async def emit(item: T) -> None:
        queue.put_nowait(item)

    async def run() -> None:
        try:
            queue.put_nowait(await work(emit))
        finally:
            queue.put_nowait(_DONE)

    task = asyncio.create_task(run())
    try:
        while (item := await queue.get()) is not _DONE:
            yield cast(T, item)
        await task  # raises what the work raised
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
