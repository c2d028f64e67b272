"""The gateway's project cache: copies kept only while the change feed vouches for them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, cast

import grpc
import pytest

from crucible.spec.v1 import spec_service_pb2 as pb
from crucible_gateway import project_cache
from crucible_gateway.project_cache import ProjectCache

P1 = "0b8e5cf4-0c3a-4f57-9d0e-6f0d3b0b6a11"
P2 = "5d7f6a2e-1b4c-4e8d-8f3a-2c9b7e1d4f22"


class Feed:
    """One WatchProjectChanges call: what the test puts, the cache reads."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[pb.WatchProjectChangesResponse | BaseException] = asyncio.Queue()
        self.cancelled = False

    async def read(self) -> pb.WatchProjectChangesResponse:
        event = await self.events.get()
        if isinstance(event, BaseException):
            raise event
        return event

    def cancel(self) -> bool:
        self.cancelled = True
        return True


class Spec:
    def __init__(self) -> None:
        self.titles = {P1: "first", P2: "second"}
        self.reads: list[str] = []
        self.feeds: list[Feed] = []
        self.hold: asyncio.Event | None = None  # when set: GetProject waits for it, after reading

    async def GetProject(self, request: pb.GetProjectRequest, timeout: float | None = None) -> pb.GetProjectResponse:
        self.reads.append(request.project_id)
        title = self.titles[request.project_id]
        if self.hold is not None:
            await self.hold.wait()
        return pb.GetProjectResponse(project=pb.Project(id=request.project_id, title=title))

    def WatchProjectChanges(self, request: pb.WatchProjectChangesRequest) -> Feed:
        feed = Feed()
        self.feeds.append(feed)
        return feed


def _ready() -> pb.WatchProjectChangesResponse:
    return pb.WatchProjectChangesResponse(ready=True)


def _changed(project_id: str) -> pb.WatchProjectChangesResponse:
    return pb.WatchProjectChangesResponse(project_id=project_id)


def _lost() -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "gone")


async def _until(condition: Any) -> None:
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110 - the cache has no event for each of its states
            await asyncio.sleep(0.001)


@contextlib.asynccontextmanager
async def _following(spec: Spec, ready: bool = True, **kw: Any) -> AsyncIterator[ProjectCache]:
    cache = ProjectCache(cast(Any, spec), **kw)
    task = asyncio.create_task(cache.follow())
    try:
        await _until(lambda: spec.feeds)
        if ready:
            spec.feeds[-1].events.put_nowait(_ready())
            await _until(lambda: cache.live)
        yield cache
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_without_a_ready_feed_every_read_goes_to_the_spec_service() -> None:
    spec = Spec()
    async with _following(spec, ready=False) as cache:
        await cache.get(P1, 1.0)
        await cache.get(P1, 1.0)
    assert spec.reads == [P1, P1]
    assert not cache.live


async def test_a_ready_feed_serves_repeated_reads_from_memory() -> None:
    spec = Spec()
    async with _following(spec) as cache:
        first = await cache.get(P1, 1.0)
        again = await cache.get(P1, 1.0)
        other = await cache.get(P2, 1.0)
    assert (first.title, again.title, other.title) == ("first", "first", "second")
    assert spec.reads == [P1, P2]


async def test_a_change_on_the_feed_drops_that_project_only() -> None:
    spec = Spec()
    async with _following(spec) as cache:
        await cache.get(P1, 1.0)
        await cache.get(P2, 1.0)
        spec.titles[P1] = "renamed"
        spec.feeds[-1].events.put_nowait(_changed(P1))
        await _until(lambda: P1 not in cache._projects)
        assert (await cache.get(P1, 1.0)).title == "renamed"
        assert (await cache.get(P2, 1.0)).title == "second"
    assert spec.reads == [P1, P2, P1]


async def test_a_read_that_straddles_a_drop_does_not_keep_its_answer() -> None:
    spec = Spec()
    async with _following(spec) as cache:
        spec.hold = asyncio.Event()
        reading = asyncio.create_task(cache.get(P1, 1.0))
        await _until(lambda: spec.reads)
        # The project changes after the read took its row, before its answer arrives.
        spec.titles[P1] = "renamed"
        cache.drop(P1)
        spec.hold.set()
        assert (await reading).title == "first"
        assert (await cache.get(P1, 1.0)).title == "renamed"
        assert (await cache.get(P1, 1.0)).title == "renamed"
    assert spec.reads == [P1, P1]


async def test_a_fresh_read_asks_the_spec_service_and_refreshes_the_copy() -> None:
    spec = Spec()
    async with _following(spec) as cache:
        await cache.get(P1, 1.0)
        spec.titles[P1] = "renamed"  # as by a write whose change the feed has not brought yet
        assert (await cache.get(P1, 1.0, fresh=True)).title == "renamed"
        assert (await cache.get(P1, 1.0)).title == "renamed"
    assert spec.reads == [P1, P1]


async def test_a_lost_feed_drops_every_copy_until_the_next_one_is_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(project_cache, "RETRY_SECONDS", (0.001,))
    spec = Spec()
    async with _following(spec) as cache:
        await cache.get(P1, 1.0)
        spec.feeds[-1].events.put_nowait(_lost())
        await _until(lambda: not cache.live)
        assert spec.feeds[0].cancelled
        await cache.get(P1, 1.0)
        await cache.get(P1, 1.0)
        assert spec.reads == [P1, P1, P1]
        # Followed again: live from its `ready` on.
        await _until(lambda: len(spec.feeds) == 2)
        spec.feeds[-1].events.put_nowait(_ready())
        await _until(lambda: cache.live)
        await cache.get(P1, 1.0)
        await cache.get(P1, 1.0)
    assert spec.reads == [P1, P1, P1, P1]


async def test_a_silent_feed_is_taken_for_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(project_cache, "SILENCE_SECONDS", 0.05)
    spec = Spec()
    async with _following(spec) as cache:
        await cache.get(P1, 1.0)
        spec.feeds[-1].events.put_nowait(pb.WatchProjectChangesResponse(heartbeat=True))
        await asyncio.sleep(0.03)
        assert cache.live, "a heartbeat keeps the feed alive"
        await _until(lambda: not cache.live)
        assert cache._projects == {}


async def test_an_ended_feed_is_taken_for_lost() -> None:
    spec = Spec()
    async with _following(spec) as cache:
        await cache.get(P1, 1.0)
        spec.feeds[-1].events.put_nowait(cast(Any, grpc.aio.EOF))
        await _until(lambda: not cache.live)
        assert cache._projects == {}


async def test_a_fault_while_following_is_logged_and_the_feed_followed_again(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(project_cache, "RETRY_SECONDS", (0.001,))
    spec = Spec()
    async with _following(spec) as cache:
        await cache.get(P1, 1.0)
        spec.feeds[-1].events.put_nowait(ValueError("an event the cache does not understand"))
        await _until(lambda: len(spec.feeds) == 2)
        assert cache._projects == {}
        assert "following the spec service's change feed failed" in caplog.text
        spec.feeds[-1].events.put_nowait(_ready())
        await _until(lambda: cache.live)


async def test_the_least_recently_read_project_leaves_first() -> None:
    spec = Spec()
    spec.titles["p3"] = "third"
    async with _following(spec, max_projects=2) as cache:
        for project_id in (P1, P2, P1, "p3"):  # P1 read again: P2 is the least recent
            await cache.get(project_id, 1.0)
        assert list(cache._projects) == [P1, "p3"]
