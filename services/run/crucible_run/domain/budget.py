"""What a run may still spend: every call reserves its estimate before it starts and settles after.

A call is refused when what was spent, plus what the calls in flight reserved, plus its own
estimate would cross the run's budget; so a run stops before crossing it, and overshoots by no
more than in-flight calls answering above their estimate.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from crucible_run.domain.estimates import CallEstimate
from crucible_run.domain.model import LlmUsage, RunParameters


@dataclass(frozen=True)
class Reservation:
    id: int
    estimate: CallEstimate


class BudgetExhausted(Exception):
    """A call would cross the run's budget; ``reason`` says which and by how much."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Budget:
    limit_usd: float | None = None
    limit_tokens: int | None = None
    spent_usd: float = 0.0
    spent_tokens: int = 0
    _reserved: dict[int, CallEstimate] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    @classmethod
    def of(cls, parameters: RunParameters, spent: LlmUsage) -> Budget:
        """The run's limits, with what it already spent (a run continued after a restart)."""
        return cls(parameters.budget_usd, parameters.budget_tokens, spent.usd, spent.tokens)

    @property
    def reserved_usd(self) -> float:
        return sum(e.usd or 0.0 for e in self._reserved.values())

    @property
    def reserved_tokens(self) -> int:
        return sum(e.tokens for e in self._reserved.values())

    def reserve(self, estimate: CallEstimate) -> Reservation:
        if self.limit_tokens is not None:
            would = self.spent_tokens + self.reserved_tokens + estimate.tokens
            if would > self.limit_tokens:
                raise BudgetExhausted(
                    f"budget_tokens {self.limit_tokens} would be crossed: {self.spent_tokens} spent, "
                    f"{self.reserved_tokens} in flight, about {estimate.tokens} for the next call"
                )
        if self.limit_usd is not None:
            cost = estimate.usd or 0.0
            would_usd = self.spent_usd + self.reserved_usd + cost
            if would_usd > self.limit_usd:
                raise BudgetExhausted(
                    f"budget_usd {self.limit_usd:g} would be crossed: ${self.spent_usd:.4f} spent, "
                    f"${self.reserved_usd:.4f} in flight, about ${cost:.4f} for the next call"
                )
        reservation = Reservation(next(self._ids), estimate)
        self._reserved[reservation.id] = estimate
        return reservation

    def settle(self, reservation: Reservation, tokens: int, usd: float) -> None:
        """The call ended (answered, or failed after paid attempts): what it really cost replaces its estimate."""
        self._reserved.pop(reservation.id, None)
        self.spent_tokens += tokens
        self.spent_usd += usd

    def release(self, reservation: Reservation) -> None:
        """The call was not made or cost nothing (answered from a stored call)."""
        self._reserved.pop(reservation.id, None)
