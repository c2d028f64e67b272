"""The cost limit of a test suite: which replay may start, given what was spent and what is in flight.

A replay reserves its estimate before it starts; it is admitted only if what the suite spent
(as the agent service recorded it), plus what the replays in flight may still spend, plus its own
reservation stays within the limit. A replay in flight may still spend its reservation less what
it spent already (which is in the suite's total). So the suite crosses the limit only by what
calls in flight answer above their reservation, and each replay runs with its reservation as its
budget, which the run service enforces call by call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Rounding of a few float sums must not turn "exactly at the limit" into "over it".
_EPSILON = 1e-9


@dataclass
class CostLedger:
    limit_usd: float | None
    # Replays in flight (by trigger id) and their reservations.
    reserved: dict[str, float] = field(default_factory=dict)

    def committed(self, spent_usd: float, spent_by: Mapping[str, float]) -> float:
        """What the suite spent, plus what the replays in flight may still spend."""
        return spent_usd + sum(max(0.0, usd - spent_by.get(key, 0.0)) for key, usd in self.reserved.items())

    def fits(self, reservation_usd: float, spent_usd: float, spent_by: Mapping[str, float]) -> bool:
        if self.limit_usd is None:
            return True
        return self.committed(spent_usd, spent_by) + reservation_usd <= self.limit_usd + _EPSILON

    def hold(self, key: str, reservation_usd: float) -> None:
        """Count a replay as in flight (admitted now, or re-attached after a restart)."""
        self.reserved[key] = reservation_usd

    def release(self, key: str) -> None:
        """The replay ended (or never started): what it spent is in the suite's total now."""
        self.reserved.pop(key, None)

    @property
    def in_flight(self) -> bool:
        return bool(self.reserved)


def reservation(estimate_usd: float, margin: float, own_budget_usd: float | None) -> float:
    """What a replay estimated at ``estimate_usd`` reserves, and so may spend: its budget."""
    held = estimate_usd * margin
    return min(held, own_budget_usd) if own_budget_usd is not None else held


def skip_reason(estimate_usd: float, reservation_usd: float, committed_usd: float, limit_usd: float) -> str:
    return (
        f"cost limit: would cross ${limit_usd:g} (${committed_usd:.4f} spent or held by replays in flight, "
        f"${reservation_usd:.4f} reserved for this one, estimated at ${estimate_usd:.4f})"
    )
