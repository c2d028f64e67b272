"""Budgets: a call reserves its estimate; one that would cross the budget is refused before it is made."""

from __future__ import annotations

import pytest

from crucible_run.domain import estimates
from crucible_run.domain.budget import Budget, BudgetExhausted, CallAllowance
from crucible_run.domain.estimates import CallEstimate, ModelPrice, estimate
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


def test_a_refusal_with_no_call_in_flight_does_not_name_any() -> None:
    budget = Budget(limit_usd=0.015)
    budget.settle(budget.reserve(call()), 1_000, 0.01)

    with pytest.raises(BudgetExhausted) as refused:
        budget.reserve(call())

    assert str(refused.value) == ("budget_usd 0.015 would be crossed: $0.0100 spent, about $0.0100 for the next call")


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


def test_a_call_holds_room_for_its_re_asks_while_the_budget_has_it() -> None:
    budget = Budget(limit_usd=0.05, limit_tokens=10_000)

    roomy = budget.reserve(call(1_000, 0.01), most=call(3_000, 0.03))
    # Held whole, and that is what the agent service may let the call spend.
    assert (roomy.tokens, roomy.usd) == (3_000, 0.03)
    assert roomy.allowance == CallAllowance(usd=0.03, tokens=3_000)

    # $0.02 left: the next call is let through at its estimate, with the room there is for re-asks.
    tight = budget.reserve(call(1_000, 0.01), most=call(3_000, 0.03))
    assert tight.usd == pytest.approx(0.02)
    assert tight.allowance is not None
    assert tight.allowance.usd == pytest.approx(0.02)
    assert tight.allowance.tokens == 3_000
    assert budget.in_flight == 2

    # No room left even for an estimate: refused, whatever the call might have cost at most.
    with pytest.raises(BudgetExhausted, match=r"budget_usd 0\.05"):
        budget.reserve(call(1_000, 0.01), most=call(3_000, 0.03))

    # The first ends at its estimate: what it held for re-asks is free again.
    budget.settle(roomy, 1_000, 0.01)
    assert budget.in_flight == 1
    assert budget.reserve(call(1_000, 0.01), most=call(3_000, 0.03)).usd == pytest.approx(0.02)


def test_room_for_re_asks_is_shared_so_that_every_call_in_flight_still_starts() -> None:
    budget = Budget(limit_usd=0.05)
    first, most = call(usd=0.01), call(3_000, 0.03)

    # Four calls may be in flight: once each has its $0.01, $0.01 is left to share for re-asks.
    held = [budget.reserve(first, most, slots=4).usd for _ in range(4)]

    assert held == pytest.approx([0.0125] * 4)
    assert budget.reserved_usd == pytest.approx(0.05)
    # Fewer calls may be in flight (the last of a phase): each may hold more.
    assert Budget(limit_usd=0.05).reserve(first, most, slots=2).usd == pytest.approx(0.025)
    # With a budget far from its end, each call holds all its re-asks could cost.
    assert Budget(limit_usd=10.0).reserve(first, most, slots=50).usd == pytest.approx(0.03)


def test_without_a_limit_a_call_has_no_allowance() -> None:
    assert Budget().reserve(call(), most=call(3_000, 0.03)).allowance is None
    # A token budget holds tokens only: an unpriced call's cost is not the run's to hold in dollars.
    unpriced = Budget(limit_usd=1.0, limit_tokens=5_000).reserve(call(usd=None), most=call(3_000, None))
    assert unpriced.allowance == CallAllowance(usd=None, tokens=3_000)
    assert unpriced.usd == 0


def test_the_most_a_structured_call_costs_counts_its_re_asks() -> None:
    price = ModelPrice(1.0, 2.0)
    first = estimate(4_000, 100, price)  # 1,000 tokens in, 100 out

    most = estimates.most(first, price, attempts=3)

    # Each re-ask reads the prompt, every answer before it and a note on what was wrong; room is
    # held for answers longer than estimated.
    answer, note = 100 * estimates.REASK_ANSWER_FACTOR, estimates.REASK_NOTE_TOKENS
    assert most.input_tokens == 1_000 + (1_000 + answer + note) + (1_000 + 2 * (answer + note))
    assert most.output_tokens == 3 * answer
    assert most.usd == pytest.approx((most.input_tokens * 1.0 + most.output_tokens * 2.0) / 1e6)
    assert estimates.most(first, price, attempts=1) == first
