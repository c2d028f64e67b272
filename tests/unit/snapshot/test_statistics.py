"""Metric deltas: flagged when different without repetitions, only outside the 95 % interval with them."""

from __future__ import annotations

import statistics

import pytest

from crucible_snapshot.domain.statistics import METRICS, interval, metric_delta, metric_deltas, t_quantile_975
from tests.unit.snapshot.fakes import good_metrics


def test_student_t_quantiles_match_the_tables_and_approach_the_normal() -> None:
    assert t_quantile_975(1) == pytest.approx(12.706)
    assert t_quantile_975(4) == pytest.approx(2.776)
    assert t_quantile_975(30) == pytest.approx(2.042)
    # Past the table: the expansion, continuous with it and tending to z.
    assert t_quantile_975(31) == pytest.approx(2.0395, abs=1e-3)
    assert t_quantile_975(120) == pytest.approx(1.9799, abs=1e-3)
    assert t_quantile_975(100_000) == pytest.approx(statistics.NormalDist().inv_cdf(0.975), abs=1e-4)
    with pytest.raises(ValueError, match="degrees of freedom"):
        t_quantile_975(0)


def test_the_interval_uses_t_with_k_minus_one_degrees_of_freedom() -> None:
    mean, stdev, low, high = interval([10.0, 12.0, 14.0])

    assert (mean, stdev) == (12.0, 2.0)
    half = 4.303 * 2.0 / 3**0.5
    assert low == pytest.approx(12 - half)
    assert high == pytest.approx(12 + half)


def test_one_replay_is_flagged_whenever_it_differs() -> None:
    same = metric_delta(5, [5], has_baseline=True)
    other = metric_delta(5, [4], has_baseline=True)
    appeared = metric_delta(None, [1.2], has_baseline=True)

    assert (same.replay, same.delta, same.flagged) == (5, 0, False)
    assert (other.delta, other.flagged) == (-1, True)
    assert (appeared.delta, appeared.flagged) == (None, True)
    assert same.stdev is None
    assert same.ci_low is None


def test_with_repetitions_only_a_baseline_outside_the_interval_is_flagged() -> None:
    inside = metric_delta(1.15, [1.0, 1.2, 1.1, 1.3], has_baseline=True)
    outside = metric_delta(2.0, [1.0, 1.2, 1.1, 1.3], has_baseline=True)

    assert inside.replay == pytest.approx(1.15)
    assert inside.ci_low is not None
    assert inside.ci_high is not None
    assert inside.ci_low < 1.15 < inside.ci_high
    assert not inside.flagged
    assert outside.flagged
    assert outside.delta == pytest.approx(-0.85)


def test_unknown_values_in_some_repetitions_are_left_out() -> None:
    delta = metric_delta(1.0, [None, 1.0, None], has_baseline=True)

    assert (delta.replay, delta.flagged, delta.stdev) == (1.0, False, None)


def test_a_snapshot_without_a_reference_run_flags_nothing() -> None:
    deltas = metric_deltas(None, [good_metrics()])

    assert set(deltas) == set(METRICS)
    assert not any(d.flagged for d in deltas.values())
    assert deltas["candidate_count"].replay == 3
    assert deltas["candidate_count"].baseline is None


def test_the_proto_keys_compare_reference_and_replay() -> None:
    deltas = metric_deltas(good_metrics(candidates=5, usd=0.2), [good_metrics(candidates=3, usd=0.1)])

    assert list(deltas) == [
        "candidate_count",
        "scenario_count",
        "evaluation_count",
        "failed_evaluations",
        "coverage",
        "duration_seconds",
        "top_i_score",
        "top_p",
        "top_r",
        "input_tokens",
        "output_tokens",
        "cost_usd",
    ]
    assert (deltas["candidate_count"].baseline, deltas["candidate_count"].delta) == (5, -2)
    assert deltas["cost_usd"].delta == pytest.approx(-0.1)
    assert deltas["candidate_count"].flagged
    assert not deltas["scenario_count"].flagged
