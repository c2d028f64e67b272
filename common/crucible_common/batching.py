"""Group commit: many concurrent small writes (or reads) as one database round of each kind.

Fifty model calls or evaluations finishing within milliseconds of each other each want one short
transaction; queued one behind the other they cost fifty connections' worth of round trips. Here
a write starts with the first item; while it is in flight the next items gather, and the write
after takes them all at once. A caller returns once its own item is committed, so nothing is
acknowledged before it is stored; a failed write fails the items it carried, no others.

The writes run in a task of their own, not in a caller's: a caller that leaves (its request
cancelled) stops waiting, but the round it started goes on, its own item included. A paid model
answer is stored even when the client that asked for it has gone, and another caller's write is
never cancelled for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable, Iterator, Mapping, Sequence
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
        self._writer: asyncio.Task[None] | None = None

    async def store(self, item: T) -> None:
        """Return once ``item`` is written (with whatever else was pending); raise if its write failed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, done))
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_all())
        await done

    async def _write_all(self) -> None:
        """Write everything pending, round after round, until nothing is."""
        try:
            if self._linger:
                await asyncio.sleep(self._linger)
            while self._pending:
                batch, self._pending = self._pending, []
                with _settling(batch, self._pending, lambda _: None):
                    await self._write([item for item, _ in batch])
        finally:
            self._writer = None


class GroupLookup(Generic[K, V]):
    """Concurrent lookups by key as one query for all the keys asked meanwhile; ``linger`` as
    ``GroupCommit``'s."""

    def __init__(self, fetch: Callable[[Sequence[K]], Awaitable[Mapping[K, V]]], *, linger: float = 0.0) -> None:
        self._fetch = fetch
        self._linger = linger
        self._pending: list[tuple[K, asyncio.Future[V | None]]] = []
        self._fetcher: asyncio.Task[None] | None = None

    async def get(self, key: K) -> V | None:
        found: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._pending.append((key, found))
        if self._fetcher is None:
            # In a task of its own, as GroupCommit's writes: a caller that leaves fails no other.
            self._fetcher = asyncio.get_running_loop().create_task(self._fetch_all())
        return await found

    async def _fetch_all(self) -> None:
        try:
            if self._linger:
                await asyncio.sleep(self._linger)
            while self._pending:
                batch, self._pending = self._pending, []
                values: dict[K, V] = {}
                with _settling(batch, self._pending, values.get):
                    values.update(await self._fetch(list(dict.fromkeys(k for k, _ in batch))))
        finally:
            self._fetcher = None


R = TypeVar("R")


@contextlib.contextmanager
def _settling(
    batch: list[tuple[K, asyncio.Future[R]]],
    pending: list[tuple[K, asyncio.Future[R]]],
    result: Callable[[K], R],
) -> Iterator[None]:
    """Settle the futures of one round: each its result, or the round's failure.

    A failure fails only the items of its round. A cancelled round (the service stopping) cancels
    every waiter, those still pending too, since nobody is left to serve them. A waiter that left
    (cancelled itself) is skipped.
    """
    try:
        yield
    except Exception as failure:
        for _, waiting in batch:
            if not waiting.done():
                waiting.set_exception(failure)
        return
    except BaseException:
        for _, waiting in [*batch, *pending]:
            waiting.cancel()
        pending.clear()
        raise
    for key, waiting in batch:
        if not waiting.done():
            waiting.set_result(result(key))
