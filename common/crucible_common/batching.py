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

import abc
import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
R = TypeVar("R")


class _Rounds(abc.ABC, Generic[T, R]):
    """What both batchers share: items gather while a round is in flight and go in the next one,
    and the rounds run in a task of their own (``linger`` seconds after the first item; with
    ``quiet``, at once after that many seconds without a round: a lone item does not wait for
    company that is not coming, and the items of a burst behind it gather behind its round).

    A round's failure fails only its own items. A cancelled round (the service stopping) cancels
    every waiter, those still pending too, since nobody is left to serve them. A waiter that left
    (cancelled itself) is skipped.
    """

    def __init__(self, linger: float, quiet: float | None = None) -> None:
        self._linger = linger
        self._quiet = quiet
        # When the last rounds ended (monotonic): none yet is as quiet as can be.
        self._ended = -float("inf")
        self._flushed = asyncio.Event()
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._rounds: asyncio.Task[None] | None = None

    def flush(self) -> None:
        """Nothing more is coming soon (the last of a burst is in): the round waiting out its linger
        starts now, and later ones at once."""
        self._linger = 0.0
        self._flushed.set()

    async def settled(self) -> None:
        """Until every item handed in so far has had its round (done or failed), whether or not its
        caller still waits: what a caller that stops early must await before it reads the results."""
        while self._rounds is not None:
            await asyncio.wait({self._rounds})

    @abc.abstractmethod
    async def _serve(self, items: list[T]) -> Callable[[T], R]:
        """One round's work; what it returns gives each item its result."""

    async def _join(self, item: T) -> R:
        return await self._enqueue(item)

    def _enqueue(self, item: T) -> asyncio.Future[R]:
        """``item`` in the next round, now; the future its round settles."""
        settled: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, settled))
        if self._rounds is None:
            self._rounds = asyncio.get_running_loop().create_task(self._run_rounds())
        return settled

    def _handed_in(self, item: T) -> asyncio.Future[R]:
        """``_enqueue`` for a caller that may not await the result: a round's failure is read here
        too, so a future nobody awaits (its asker left; ``shield`` lets go of it then) is not
        logged as "exception was never retrieved". Whoever awaits it still gets the failure."""
        settled = self._enqueue(item)
        settled.add_done_callback(_retrieved)
        return settled

    async def _run_rounds(self) -> None:
        try:
            if self._linger and not self._after_quiet():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._linger):
                        await self._flushed.wait()
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    result = await self._serve([item for item, _ in batch])
                except Exception as failure:
                    for _, waiting in batch:
                        if not waiting.done():
                            waiting.set_exception(failure)
                    continue
                except BaseException:
                    for _, waiting in [*batch, *self._pending]:
                        waiting.cancel()
                    self._pending.clear()
                    raise
                for item, waiting in batch:
                    if not waiting.done():
                        waiting.set_result(result(item))
        finally:
            self._rounds = None
            self._ended = time.monotonic()

    def _after_quiet(self) -> bool:
        return self._quiet is not None and time.monotonic() - self._ended >= self._quiet


class GroupCommit(_Rounds[T, None]):
    """``linger`` seconds: how long a write waits for company before it starts (0: at once)."""

    def __init__(self, write: Callable[[list[T]], Awaitable[None]], *, linger: float = 0.0) -> None:
        super().__init__(linger)
        self._write = write

    async def store(self, item: T) -> None:
        """Return once ``item`` is written (with whatever else was pending); raise if its write failed."""
        await self._join(item)

    def submit(self, item: T) -> asyncio.Future[None]:
        """``store`` without the wait: ``item`` is handed in now, and written even if nobody awaits
        the future its write settles."""
        return self._handed_in(item)

    async def _serve(self, items: list[T]) -> Callable[[T], None]:
        await self._write(items)
        return lambda _: None


class GroupLookup(_Rounds[K, V | None]):
    """Concurrent lookups by key as one query for all the keys asked meanwhile; ``linger`` as
    ``GroupCommit``'s; ``quiet``: after that many seconds without a lookup, the next starts at once."""

    def __init__(
        self,
        fetch: Callable[[Sequence[K]], Awaitable[Mapping[K, V]]],
        *,
        linger: float = 0.0,
        quiet: float | None = None,
    ) -> None:
        super().__init__(linger, quiet)
        self._fetch = fetch

    async def get(self, key: K) -> V | None:
        return await self._join(key)

    def ask(self, key: K) -> asyncio.Future[V | None]:
        """``get`` as a future, asked at once: its asker can shield it and leave (the round goes on
        and settles it) without a task of its own to wrap the wait."""
        return self._handed_in(key)

    async def _serve(self, keys: list[K]) -> Callable[[K], V | None]:
        return (await self._fetch(list(dict.fromkeys(keys)))).get


def _retrieved(settled: asyncio.Future[Any]) -> None:
    if not settled.cancelled():
        settled.exception()
