"""What a run may still spend: every call reserves its estimate before it starts and settles after.

A call is refused when what was spent, plus what the calls in flight reserved, plus its own
estimate would cross the run's budget. A call that is not refused reserves its estimate and, for
its structured re-asks, up to what they may add (``most``), but no more than its share of the
room left: shared with the calls that may still start beside the ones in flight (``slots``, the
calls that may be in flight at once, itself included), once each of them has its estimate.
Holding room for re-asks, which most calls never make, so keeps no call with as big an estimate
from starting (a bigger one may wait for a call to end, never more). Near the budget's end there
is none, and a re-ask is refused rather than the budget crossed. The reservation is the allowance
the agent service holds the call to: a re-ask whose estimate would not fit is not made. So a run
stops before crossing its budget, and overshoots it by no more than in-flight calls answering
above their estimates.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from crucible_run.domain.estimates import CallEstimate
from crucible_run.domain.model import LlmUsage, RunParameters


@dataclass(frozen=True)
class CallAllowance:
    """What one call may spend over all its attempts; None where the run has no such limit."""

    usd: float | None = None
    tokens: int | None = None


@dataclass(frozen=True)
class Reservation:
    id: int
    estimate: CallEstimate
    # What is held for the call: its estimate, and room for its re-asks as far as its share allows.
    tokens: int
    usd: float
    allowance: CallAllowance | None


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
    # Paid calls whose cost is unknown (a model without a price): not in spent_usd, never as $0.
    unpriced_calls: int = 0
    _reserved: dict[int, Reservation] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    @classmethod
    def of(cls, parameters: RunParameters, spent: LlmUsage) -> Budget:
        """The run's limits, with what it already spent (a run continued after a restart)."""
        return cls(parameters.budget_usd, parameters.budget_tokens, spent.usd, spent.tokens, spent.unpriced_calls)

    @property
    def reserved_usd(self) -> float:
        return sum(r.usd for r in self._reserved.values())

    @property
    def reserved_tokens(self) -> int:
        return sum(r.tokens for r in self._reserved.values())

    @property
    def in_flight(self) -> int:
        """Calls holding a reservation: what they do not spend of it comes back when they end."""
        return len(self._reserved)

    def reserve(self, estimate: CallEstimate, most: CallEstimate | None = None, slots: int = 1) -> Reservation:
        """Room for a call expected to cost ``estimate`` and able to cost up to ``most``, one of
        ``slots`` calls that may be in flight at once."""
        most = most or estimate
        # This call and those that may start beside the ones in flight (which hold theirs already).
        slots = max(1, slots - len(self._reserved))
        tokens, usd = estimate.tokens, estimate.usd or 0.0
        allowed_tokens = allowed_usd = None
        if self.limit_tokens is not None:
            room = self.limit_tokens - self.spent_tokens - self.reserved_tokens
            if estimate.tokens > room:
                held = f"{self.reserved_tokens} in flight, " if self._reserved else ""
                raise BudgetExhausted(
                    f"budget_tokens {self.limit_tokens} would be crossed: {self.spent_tokens} spent, "
                    f"{held}about {estimate.tokens} for the next call"
                )
            tokens = allowed_tokens = tokens + max(0, min(most.tokens - tokens, (room - slots * tokens) // slots))
        if self.limit_usd is not None:
            room_usd = self.limit_usd - self.spent_usd - self.reserved_usd
            if usd > room_usd:
                # A run stops on a refusal only once no call is in flight (then there is none to name).
                held = f"${self.reserved_usd:.4f} in flight, " if self._reserved else ""
                raise BudgetExhausted(
                    f"budget_usd {self.limit_usd:g} would be crossed: ${self.spent_usd:.4f} spent, "
                    f"{held}about ${usd:.4f} for the next call"
                )
            if estimate.usd is not None:  # an unpriced call's cost is unknown: no usd can hold it
                usd = allowed_usd = usd + max(0.0, min((most.usd or usd) - usd, (room_usd - slots * usd) / slots))
        allowance = None
        if allowed_tokens is not None or allowed_usd is not None:
            allowance = CallAllowance(allowed_usd, allowed_tokens)
        reservation = Reservation(next(self._ids), estimate, tokens, usd, allowance)
        self._reserved[reservation.id] = reservation
        return reservation

    def settle(self, reservation: Reservation, tokens: int, usd: float, *, priced: bool = True) -> None:
        """The call ended (answered, or failed after paid attempts): what it really cost replaces its
        estimate; ``priced`` False: its cost in USD is unknown (``usd`` is then 0)."""
        self._reserved.pop(reservation.id, None)
        self.spent_tokens += tokens
        self.spent_usd += usd
        if not priced:
            self.unpriced_calls += 1

    def release(self, reservation: Reservation) -> None:
        """The call was not made or cost nothing (answered from a stored call)."""
        self._reserved.pop(reservation.id, None)
