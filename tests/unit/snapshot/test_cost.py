"""The cost limit: spent plus what replays in flight may still spend plus the new reservation must fit."""

from __future__ import annotations

from crucible_snapshot.domain.cost import CostLedger, reservation, skip_reason


def test_no_limit_admits_everything() -> None:
    assert CostLedger(None).fits(1_000.0, 1_000.0, {})


def test_replays_in_flight_hold_what_they_may_still_spend() -> None:
    ledger = CostLedger(1.0)
    ledger.hold("a", 0.4)
    ledger.hold("b", 0.4)

    # Nothing spent yet: 0.8 held, so 0.3 more does not fit, 0.2 does (exactly at the limit).
    assert not ledger.fits(0.3, 0.0, {})
    assert ledger.fits(0.2, 0.0, {})
    # "a" spent 0.3 of its 0.4 (in the suite's total): it may still spend 0.1.
    assert ledger.committed(0.3, {"a": 0.3}) == 0.3 + 0.1 + 0.4
    assert not ledger.fits(0.3, 0.3, {"a": 0.3})
    # One that spent more than it held holds nothing more; what it spent counts.
    assert ledger.committed(0.5, {"a": 0.5}) == 0.5 + 0.4


def test_an_ended_replay_releases_its_reservation() -> None:
    ledger = CostLedger(1.0)
    ledger.hold("a", 0.6)
    assert not ledger.fits(0.6, 0.0, {})

    ledger.release("a")

    assert not ledger.in_flight
    # What it really spent (0.35) is in the suite's total now.
    assert ledger.fits(0.6, 0.35, {})


def test_a_reservation_is_the_estimate_times_the_margin_within_the_snapshots_own_budget() -> None:
    assert reservation(0.10, 1.25, None) == 0.125
    assert reservation(0.10, 1.25, 0.11) == 0.11
    assert "cost limit: would cross $1" in skip_reason(0.1, 0.125, 0.9, 1.0)
