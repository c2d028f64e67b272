"""Group commit: many concurrent small writes (or reads) as one database round of each kind.

Fifty model calls or evaluations finishing within milliseconds of each other each want one short
transaction; queued one behind the other they cost fifty connections' worth of round trips. Here
the first caller writes everything pending; while its write is in flight the next callers gather,
and the one after writes them all at once. A caller returns once its own item is committed, so
nothing is acknowledged before it is stored; a failed write fails every item it carried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class GroupCommit(Generic[T]):
    """``linger`` seconds: how long a write waits for company before it starts (0: at once)."""

    def __init__(self, write: Callable[[list[T]], Awaitable[None]], *, linger: float = 0.0) -> None:
        self._write = write
        self._linger = linger
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._writing = False

    async def store(self, item: T) -> None:
        """Return once ``item`` is written (with whatever else was pending)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, done))
        if self._writing:
            await done
            return
        # No write in flight: this caller writes everything pending, until nothing is.
        self._writing = True
        try:
            if self._linger:
                await asyncio.sleep(self._linger)
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await self._write([item for item, _ in batch])
                except BaseException as failure:
                    for _, waiting in [*batch, *self._pending]:
                        # This caller raises it itself; the others learn it from their future.
                        if waiting is not done and not waiting.done():
                            waiting.set_exception(failure)
                    self._pending = []
                    raise
                for _, waiting in batch:
                    if not waiting.done():
                        waiting.set_result(None)
        finally:
            self._writing = False
        await done


class GroupLookup(Generic[K, V]):
    """Concurrent lookups by key as one query for all the keys asked meanwhile."""

    def __init__(self, fetch: Callable[[Sequence[K]], Awaitable[Mapping[K, V]]]) -> None:
        self._fetch = fetch
        self._pending: list[tuple[K, asyncio.Future[V | None]]] = []
        self._fetching = False

    async def get(self, key: K) -> V | None:
        found: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._pending.append((key, found))
        if self._fetching:
            return await found
        self._fetching = True
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    values = await self._fetch(list(dict.fromkeys(k for k, _ in batch)))
                except BaseException as failure:
                    for _, waiting in [*batch, *self._pending]:
                        if waiting is not found and not waiting.done():
                            waiting.set_exception(failure)
                    self._pending = []
                    raise
                for k, waiting in batch:
                    if not waiting.done():
                        waiting.set_result(values.get(k))
        finally:
            self._fetching = False
        return await found
