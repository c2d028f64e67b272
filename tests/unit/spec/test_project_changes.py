"""WatchProjectChanges' use case: ready, then changed projects, heartbeats when quiet, an end once broken."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from crucible_common.errors import DatabaseUnavailable
from crucible_spec.service_layer.project_changes import (
    Heartbeat,
    ProjectChanged,
    ProjectFeedEvent,
    Ready,
    watch_project_changes,
)
from tests.unit.spec.fakes import FakeChanges


async def _next(events: AsyncGenerator[ProjectFeedEvent, None]) -> ProjectFeedEvent:
    return await asyncio.wait_for(anext(events), 5)


async def test_ready_first_then_each_change_in_order() -> None:
    changes = FakeChanges()
    events = watch_project_changes(changes, heartbeat=60)
    assert await _next(events) == Ready()
    changes.notify("p1")
    changes.notify("p2")
    assert [await _next(events), await _next(events)] == [ProjectChanged("p1"), ProjectChanged("p2")]
    await events.aclose()
    assert changes.feeds == []


async def test_a_quiet_feed_sends_heartbeats_and_goes_on() -> None:
    changes = FakeChanges()
    events = watch_project_changes(changes, heartbeat=0.01)
    assert await _next(events) == Ready()
    assert await _next(events) == Heartbeat()
    assert await _next(events) == Heartbeat()
    changes.notify("p1")
    assert ProjectChanged("p1") in [await _next(events) for _ in range(3)]
    await events.aclose()


async def test_a_broken_feed_ends_the_stream_as_unavailable() -> None:
    changes = FakeChanges()
    events = watch_project_changes(changes, heartbeat=60)
    assert await _next(events) == Ready()
    changes.notify("p1")
    changes.drop()
    assert await _next(events) == ProjectChanged("p1")
    with pytest.raises(DatabaseUnavailable, match="can no longer be followed"):
        await _next(events)
    assert changes.feeds == []


async def test_a_feed_that_cannot_start_is_unavailable_too() -> None:
    changes = FakeChanges()
    changes.closed = True  # the service is stopping: its listener takes no new follower
    events = watch_project_changes(changes, heartbeat=60)
    with pytest.raises(DatabaseUnavailable, match="can no longer be followed: the fake listener was closed"):
        await _next(events)
