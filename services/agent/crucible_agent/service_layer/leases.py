"""How long a process owns the work it runs (agent runs, sprints), and how often it says so.

A lease that is not renewed lapses; a live process then claims the work and continues it from
what is stored.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

LEASE_SECONDS = 15
HEARTBEAT_SECONDS = 5


def now() -> datetime:
    return datetime.now(UTC)


def lease_until() -> datetime:
    return now() + timedelta(seconds=LEASE_SECONDS)
