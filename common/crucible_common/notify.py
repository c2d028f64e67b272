"""Progress events reach watchers through Postgres LISTEN/NOTIFY, on whichever replica they are.

A writer that stores an event also runs ``pg_notify(channel, key)`` in the same transaction, so
the notification is delivered when (and only if) the event is committed. Each process holds one
listening connection per channel and wakes the watchers of that key; a watcher then reads the new
events from the table, which stays the source of truth. Should the listening connection drop, the
watchers fall back to reading every ``fallback`` seconds until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from crucible_common.updates import FeedBroken

logger = logging.getLogger(__name__)

RECONNECT_SECONDS = 1.0
# A listening connection only receives, so one that dies without a reset (a NAT or a failover that
# drops it silently) would look alive for ever: it is asked ``SELECT 1`` this often, and taken for
# dropped when the answer takes longer than PING_TIMEOUT_SECONDS. A silent death is found within
# their sum, and the followers' feeds break.
PING_SECONDS = 2.0
PING_TIMEOUT_SECONDS = 3.0
# Keys a follower has not taken yet: one that falls this far behind (a stalled stream) is broken
# rather than left to grow; it follows again and starts afresh.
FEED_BACKLOG = 10_000


# A notification's payload is the key, or the key and this mark when the key's work has ended.
ENDING = " ending"


async def notify(conn: AsyncConnection, channel: str, key: str, *, ending: bool = False) -> None:
    """Wake the watchers of ``key`` once the caller's transaction commits; ``ending``: the event
    stored is the last of the key's work, so watchers read it without their usual pause."""
    await conn.execute(select(func.pg_notify(channel, key + ENDING if ending else key)))


class Subscription:
    """Notifications of one key, from the moment of subscribing: none is missed between two waits."""

    def __init__(self, listener: Listener) -> None:
        self._listener = listener
        self.event = asyncio.Event()
        self.ended = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        """True when the key was notified since the last wait (at once if it already was)."""
        limit = timeout if self._listener.connected else min(timeout, self._listener.fallback)
        try:
            async with asyncio.timeout(limit):
                await self.event.wait()
        except TimeoutError:
            return False
        self.event.clear()
        return True

    async def pause(self, seconds: float) -> None:
        """Sleep up to ``seconds``; at once (and from then on) when the key's work has ended."""
        if seconds <= 0 or self.ended.is_set():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.ended.wait()


class _Feed:
    """Every key notified on the channel while the listening connection lasts (``Listener.follow``)."""

    def __init__(self) -> None:
        # A FeedBroken: the connection dropped (or the listener closed), so what was committed
        # meanwhile went unheard.
        self.keys: asyncio.Queue[str | FeedBroken] = asyncio.Queue()
        self._broken = False

    def put(self, key: str) -> None:
        if self._broken:
            return
        if self.keys.qsize() >= FEED_BACKLOG:
            self.put_broken(FeedBroken(f"the follower fell {FEED_BACKLOG} changes behind"))
            return
        self.keys.put_nowait(key)

    def put_broken(self, broken: FeedBroken) -> None:
        if not self._broken:
            self._broken = True
            self.keys.put_nowait(broken)

    async def next(self) -> str:
        key = await self.keys.get()
        if isinstance(key, FeedBroken):
            self.keys.put_nowait(key)  # broken for good: every later call says so too
            raise key
        return key


class Listener:
    """One LISTEN connection for a channel, started on first use, shared by the process's watchers
    (``subscribe``: one key's) and followers (``follow``: every key)."""

    def __init__(self, database_url: str, channel: str, *, fallback: float = 1.0) -> None:
        self._dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._channel = channel
        self.fallback = fallback
        self._subscriptions: dict[str, set[Subscription]] = defaultdict(set)
        self._feeds: set[_Feed] = set()
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._closed = asyncio.Event()  # for good: a closed listener never listens again

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @contextlib.contextmanager
    def subscribe(self, key: str) -> Iterator[Subscription]:
        self._start()
        subscription = Subscription(self)
        self._subscriptions[key].add(subscription)
        try:
            yield subscription
        finally:
            subscribed = self._subscriptions.get(key)
            if subscribed is not None:
                subscribed.discard(subscription)
                if not subscribed:
                    del self._subscriptions[key]

    @contextlib.asynccontextmanager
    async def follow(self) -> AsyncIterator[_Feed]:
        """Every key notified from the moment this enters, which is once the connection listens.
        The feed breaks (``FeedBroken``) when the connection drops; follow again to go on."""
        self._start()
        feed = _Feed()
        self._feeds.add(feed)
        try:
            # Registered first: a connection that comes up meanwhile delivers to it. One that drops
            # after this wait breaks the feed, so nothing is missed unseen.
            await _first_of(self._connected, self._closed)
            if self._closed.is_set():
                raise FeedBroken(_CLOSED)
            yield feed
        finally:
            self._feeds.discard(feed)

    def _start(self) -> None:
        if self._closed.is_set():
            return  # stopping: subscribers read on their fallback, followers are told at once
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._listen(), name=f"listen {self._channel}")

    async def close(self) -> None:
        self._closed.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            except Exception:
                # Closing is part of stopping: what ended the listening task is said, not raised.
                logger.exception("the listener of %s had failed", self._channel)
            self._task = None

    def _deliver(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        key = payload.removesuffix(ENDING)
        for feed in self._feeds:
            feed.put(key)
        for subscription in self._subscriptions.get(key, ()):
            subscription.event.set()
            if key != payload:
                subscription.ended.set()

    async def _listen(self) -> None:
        while True:
            connection: asyncpg.Connection | None = None
            broken = FeedBroken("the listening connection dropped: changes may have been missed")
            try:
                connection = await asyncpg.connect(self._dsn)
                await connection.add_listener(self._channel, self._deliver)
                self._connected.set()
                # Events written while no connection listened: every watcher looks again.
                for subscribed in self._subscriptions.values():
                    for subscription in subscribed:
                        subscription.event.set()
                await _while_alive(connection)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                logger.warning("listening on %s failed (%s); retrying", self._channel, str(exc) or type(exc).__name__)
            except asyncio.CancelledError:
                broken = FeedBroken(_CLOSED)
                raise
            finally:
                # Only the followers of a connection that listened are broken: the others still
                # wait for one (or for the close).
                if self._connected.is_set() or self._closed.is_set():
                    for feed in self._feeds:
                        feed.put_broken(broken)
                self._connected.clear()
                if connection is not None and not connection.is_closed():
                    with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
                        await asyncio.shield(connection.close(timeout=1))
            await asyncio.sleep(RECONNECT_SECONDS)


_CLOSED = "the listener was closed (the service is stopping)"


async def _first_of(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


async def _while_alive(connection: asyncpg.Connection) -> None:
    """Return when the connection ends; raise when it stops answering (see PING_SECONDS)."""
    closed = asyncio.Event()
    connection.add_termination_listener(lambda _: closed.set())
    while not closed.is_set() and not connection.is_closed():  # it may have ended before the listener
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(PING_SECONDS):
                await closed.wait()
            return
        await connection.fetchval("SELECT 1", timeout=PING_TIMEOUT_SECONDS)
