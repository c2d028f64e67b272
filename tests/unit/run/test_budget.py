"""Budgets: a call reserves its estimate; one that would cross the budget is refused before it is made."""

from __future__ import annotations

import pytest

from crucible_run.domain.budget import Budget, BudgetExhausted
from crucible_run.domain.estimates import CallEstimate
from crucible_run.domain.model import LlmUsage, RunParameters


def call(tokens: int = 1_000, usd: float | None = 0.01) -> CallEstimate:
    return CallEstimate(tokens - 200, 200, usd)


def test_no_limits_never_refuse() -> None:
    budget = Budget()
    for _ in range(1_000):
        budget.reserve(call())


def test_calls_in_flight_count_against_the_budget() -> None:
    budget = Budget(limit_usd=0.025)
    first = budget.reserve(call())
    budget.reserve(call())

    with pytest.raises(BudgetExhausted, match=r"budget_usd 0.025 would be crossed: \$0.0000 spent, \$0.0200 in flight"):
        budget.reserve(call())

    # When a call settles at its real cost, the room it did not use is free again.
    budget.settle(first, 300, 0.002)
    budget.reserve(call())
    assert budget.spent_usd == pytest.approx(0.002)
    assert budget.reserved_usd == pytest.approx(0.02)


def test_a_token_budget_counts_tokens() -> None:
    budget = Budget(limit_tokens=2_500)
    budget.reserve(call(1_000))
    budget.reserve(call(1_000))
    with pytest.raises(BudgetExhausted, match="budget_tokens 2500"):
        budget.reserve(call(1_000))


def test_a_released_call_gives_its_reservation_back() -> None:
    budget = Budget(limit_usd=0.01)
    reservation = budget.reserve(call())
    budget.release(reservation)
    budget.reserve(call())
    assert budget.spent_usd == 0


def test_a_continued_run_starts_from_what_it_already_spent() -> None:
    budget = Budget.of(RunParameters(budget_usd=0.05), LlmUsage(input_tokens=100, output_tokens=50, usd=0.045))
    with pytest.raises(BudgetExhausted):
        budget.reserve(call(usd=0.01))
    budget.reserve(call(usd=0.004))
