"""What a use case that watches for new events needs: a waiter woken when they are stored, or a
feed of every change (``Changes``) for one that keeps copies.

Service layers depend on these protocols; ``crucible_common.notify.Listener`` implements them over
Postgres LISTEN/NOTIFY, so a watcher on any replica wakes when any replica stores an event.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Protocol


class Waiter(Protocol):
    async def wait(self, timeout: float) -> bool:
        """True when new events were stored since the last wait (at once if they already were)."""
        ...

    async def pause(self, seconds: float) -> None:
        """Sleep up to ``seconds`` (a watcher's breather between two reads), cut short once the
        key's work has ended: the last event is not kept waiting."""
        ...


class Updates(Protocol):
    """Wakes the watchers of one key (a run's, a sprint's, a report's id) when its events are stored."""

    def subscribe(self, key: str) -> AbstractContextManager[Waiter]: ...


class FeedBroken(Exception):
    """A feed of changes may have missed one (its connection dropped): whoever keeps copies by it
    must drop them all and follow again."""


class Feed(Protocol):
    async def next(self) -> str:
        """The next key notified, in commit order; raises ``FeedBroken`` once one may have been missed."""
        ...


class Changes(Protocol):
    """Every key notified on a channel, not one key's: what a reader that keeps copies follows."""

    def follow(self) -> AbstractAsyncContextManager[Feed]:
        """A feed of every key notified after entering (which waits until notifications are heard)."""
        ...
