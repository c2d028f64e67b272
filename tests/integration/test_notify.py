"""LISTEN/NOTIFY: a watcher wakes when a notifying transaction commits, and only then."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from crucible_common import notify as notify_module
from crucible_common.database import create_engine
from crucible_common.notify import Listener, notify
from crucible_common.updates import FeedBroken

CHANNEL = "crucible_test_events"


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    made = create_engine(database_url, pool_size=2)
    yield made
    await made.dispose()


async def test_a_watcher_wakes_on_commit_of_its_key_only(engine: AsyncEngine, database_url: str) -> None:
    listener = Listener(database_url, CHANNEL)
    try:
        with listener.subscribe("run-1") as mine, listener.subscribe("run-2") as other:
            # Once listening, every watcher is woken to look for what it may have missed.
            assert await mine.wait(5) is True
            assert await other.wait(5) is True
            assert listener.connected

            async with engine.begin() as conn:
                await notify(conn, CHANNEL, "run-1")
                # Not before the commit.
                assert await mine.wait(0.2) is False
            assert await mine.wait(5) is True
            assert await other.wait(0.2) is False

            async with engine.connect() as conn:
                await notify(conn, CHANNEL, "run-1")
                await conn.rollback()
            assert await mine.wait(0.3) is False
    finally:
        await listener.close()


async def test_without_a_connection_a_watcher_falls_back_to_polling(engine: AsyncEngine) -> None:
    # Nothing listens on this address: waits return after the fallback, never hang.
    listener = Listener("postgresql+asyncpg://nobody@127.0.0.1:9/none", CHANNEL, fallback=0.05)
    try:
        with listener.subscribe("run-1") as subscription:
            started = asyncio.get_running_loop().time()
            assert await subscription.wait(30) is False
            assert asyncio.get_running_loop().time() - started < 5
    finally:
        await listener.close()


async def test_an_ending_notification_wakes_the_watcher_and_cuts_its_pauses_short(
    engine: AsyncEngine, database_url: str
) -> None:
    listener = Listener(database_url, CHANNEL)
    try:
        with listener.subscribe("run-3") as mine, listener.subscribe("run-4") as other:
            assert await mine.wait(5) is True
            assert await other.wait(5) is True
            loop = asyncio.get_running_loop()

            async with engine.begin() as conn:
                await notify(conn, CHANNEL, "run-3")
            assert await mine.wait(5) is True
            # An ordinary event: the watcher's breather is taken in full.
            started = loop.time()
            await mine.pause(0.3)
            assert loop.time() - started >= 0.29

            async with engine.begin() as conn:
                await notify(conn, CHANNEL, "run-3", ending=True)
            # The last event wakes its key's watcher like any other ...
            assert await mine.wait(5) is True
            assert await other.wait(0.2) is False
            # ... and a pause after it ends at once (a pause of 30 s would fail the test's timeout).
            await asyncio.wait_for(mine.pause(30), 1)
            # The other key's watcher still pauses.
            started = loop.time()
            await other.pause(0.2)
            assert loop.time() - started >= 0.19
    finally:
        await listener.close()


async def test_a_feed_follows_every_key_in_commit_order_and_breaks_when_the_connection_drops(
    engine: AsyncEngine, database_url: str
) -> None:
    listener = Listener(database_url, CHANNEL)
    try:
        async with listener.follow() as feed:
            async with engine.begin() as conn:
                await notify(conn, CHANNEL, "project-1")
                await notify(conn, CHANNEL, "project-2")
            async with engine.connect() as conn:
                await notify(conn, CHANNEL, "rolled back")
                await conn.rollback()
            async with engine.begin() as conn:
                await notify(conn, CHANNEL, "project-1", ending=True)
            keys = [await asyncio.wait_for(feed.next(), 5) for _ in range(3)]
            assert keys == ["project-1", "project-2", "project-1"]

            # The listening connection is cut: what commits next may go unheard, and the feed says so.
            async with engine.begin() as conn:
                await conn.execute(
                    text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'")
                )
            with pytest.raises(FeedBroken):
                await asyncio.wait_for(feed.next(), 5)
            with pytest.raises(FeedBroken):
                await feed.next()  # for good

        # Followed again, once the listener is back: from then on, nothing is missed.
        async with asyncio.timeout(10), listener.follow() as feed:
            async with engine.begin() as conn:
                await notify(conn, CHANNEL, "project-3")
            assert await feed.next() == "project-3"
    finally:
        await listener.close()


async def test_a_closed_listener_breaks_its_feeds_saying_why(database_url: str) -> None:
    listener = Listener(database_url, CHANNEL)
    try:
        async with asyncio.timeout(10), listener.follow() as feed:
            await listener.close()  # as a service starts to stop (ServiceProcess.draining)
            with pytest.raises(FeedBroken, match="the service is stopping"):
                await feed.next()
    finally:
        await listener.close()


async def test_a_follower_still_waiting_for_a_connection_ends_when_the_listener_closes() -> None:
    # Nothing listens on this address: the follower waits for a connection that never comes.
    listener = Listener("postgresql+asyncpg://nobody@127.0.0.1:9/none", CHANNEL)
    try:

        async def follow() -> None:
            async with listener.follow():
                raise AssertionError("no connection, no feed")

        following = asyncio.create_task(follow())
        await asyncio.sleep(0.2)
        assert not following.done()
        await listener.close()
        with pytest.raises(FeedBroken, match="the service is stopping"):
            await asyncio.wait_for(following, 5)
    finally:
        await listener.close()


class _Proxy:
    """A TCP relay to Postgres that can go silent without closing anything: a connection that a NAT
    or a failover dropped without a reset looks like this from the client's side."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        socket_dir = str(url.query.get("host", ""))
        # The embedded Postgres listens on a Unix socket; a configured one may be a TCP address.
        self._socket = f"{socket_dir}/.s.PGSQL.{url.port or 5432}" if socket_dir.startswith("/") else ""
        self._address = (url.host or "127.0.0.1", url.port or 5432)
        self.url = url
        self.silent = False
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        """The database's URL through the relay."""
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port = int(self._server.sockets[0].getsockname()[1])
        return self.url.difference_update_query(["host"]).set(host="127.0.0.1", port=port).render_as_string(False)

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self._socket:
            server_reader, server_writer = await asyncio.open_unix_connection(self._socket)
        else:
            server_reader, server_writer = await asyncio.open_connection(*self._address)

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while data := await reader.read(65536):
                if not self.silent:
                    writer.write(data)

        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()


async def test_a_listening_connection_that_goes_silent_is_taken_for_dropped(
    engine: AsyncEngine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notify_module, "PING_SECONDS", 0.2)
    monkeypatch.setattr(notify_module, "PING_TIMEOUT_SECONDS", 0.3)
    proxy = _Proxy(database_url)
    listener = Listener(await proxy.start(), CHANNEL)
    try:
        async with asyncio.timeout(10), listener.follow() as feed:
            async with engine.begin() as conn:
                await notify(conn, CHANNEL, "heard")
            assert await feed.next() == "heard"

            # Nothing is closed or reset: only the pings' unanswered questions show the loss.
            proxy.silent = True
            with pytest.raises(FeedBroken, match="dropped"):
                await feed.next()
    finally:
        await listener.close()
        await proxy.close()


async def test_a_closed_listener_stays_closed(database_url: str) -> None:
    listener = Listener(database_url, CHANNEL)
    await listener.close()

    with pytest.raises(FeedBroken, match="the service is stopping"):
        async with asyncio.timeout(5), listener.follow():
            raise AssertionError("a closed listener gives no feed")
    with listener.subscribe("run-1") as waiter:
        assert not listener.connected
        assert await waiter.wait(0.1) is False


async def test_a_follower_that_falls_too_far_behind_is_broken(
    engine: AsyncEngine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notify_module, "FEED_BACKLOG", 3)
    listener = Listener(database_url, CHANNEL)
    try:
        async with asyncio.timeout(10), listener.follow() as feed:
            async with engine.begin() as conn:
                for key in ("a", "b", "c", "d", "e"):
                    await notify(conn, CHANNEL, key)
            # What was queued is still read; then the feed says it missed the rest.
            assert [await feed.next() for _ in range(3)] == ["a", "b", "c"]
            with pytest.raises(FeedBroken, match="3 changes behind"):
                await feed.next()
    finally:
        await listener.close()
