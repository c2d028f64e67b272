"""The snapshot service's settings: the shared ones plus how suites run."""

from __future__ import annotations

from pydantic import Field

from crucible_common.settings import Settings


class SnapshotSettings(Settings):
    # Replays in flight at once in a suite that does not say (CRUCIBLE_SNAPSHOT_CONCURRENCY).
    snapshot_concurrency: int = Field(default=4, ge=1, le=64)
    # Under a cost limit, a replay reserves its preflight estimate times this, and its run gets that
    # as its budget_usd: an estimate a little low does not stop it, a far-off one cannot cross the limit.
    snapshot_cost_margin: float = Field(default=1.25, ge=1.0, le=10.0)
    # One call to another service (it waits this long for one that is restarting).
    snapshot_call_timeout_seconds: float = Field(default=30.0, gt=0)
    # How long a replay waits for a run service that stays away before it counts as an error.
    snapshot_wait_seconds: float = Field(default=120.0, ge=0)
