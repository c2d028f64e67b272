"""WatchProjectChanges: which projects change, for readers that keep copies of them.

The gateway serves project reads from a cache (``crucible_gateway.project_cache``) that stays
right only while it hears of every change. So the feed promises nothing it cannot keep: ``Ready``
once the service hears every change committed from then on (by any replica: the repository
notifies through Postgres), each changed project's id after its commit, a ``Heartbeat`` while
nothing changes, and an end (UNAVAILABLE) as soon as a change may have gone unheard (a connection
that drops silently is found by the listener's ping within seconds: ``crucible_common.notify``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from crucible_common.errors import DatabaseUnavailable
from crucible_common.updates import Changes, FeedBroken

# A reader that hears nothing for a few of these takes the feed for lost (the gateway: three).
HEARTBEAT_SECONDS = 5.0


@dataclass(frozen=True)
class Ready:
    pass


@dataclass(frozen=True)
class Heartbeat:
    pass


@dataclass(frozen=True)
class ProjectChanged:
    project_id: str


ProjectFeedEvent = Ready | Heartbeat | ProjectChanged


async def watch_project_changes(
    changes: Changes, *, heartbeat: float = HEARTBEAT_SECONDS
) -> AsyncGenerator[ProjectFeedEvent, None]:
    try:
        # Entering can fail too: the service has begun to stop.
        async with changes.follow() as feed:
            yield Ready()
            while True:
                try:
                    async with asyncio.timeout(heartbeat):
                        project_id = await feed.next()
                except TimeoutError:
                    yield Heartbeat()
                    continue
                yield ProjectChanged(project_id)
    except FeedBroken as broken:
        raise DatabaseUnavailable(f"project changes can no longer be followed: {broken}") from broken
