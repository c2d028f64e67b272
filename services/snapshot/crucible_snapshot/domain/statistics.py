"""Metric deltas between a snapshot's reference run and its replays, with error bars for repetitions.

With one replay, a metric is flagged whenever it differs from the baseline. With K ≥ 2 the replays
give a mean, a sample standard deviation and a 95 % confidence interval of the mean (Student's t,
K - 1 degrees of freedom: K is small, a normal interval would be too narrow); a metric is flagged
only when the baseline lies outside that interval, so noise between repetitions is not a regression.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence

from crucible_snapshot.domain.model import MetricDelta, RunMetrics

# The proto's keys, and where each comes from in the metrics.
METRICS: dict[str, Callable[[RunMetrics], float | None]] = {
    "candidate_count": lambda m: m.candidates,
    "scenario_count": lambda m: m.scenarios,
    "evaluation_count": lambda m: m.evaluations,
    "failed_evaluations": lambda m: m.failed_evaluations,
    "coverage": lambda m: m.coverage,
    "duration_seconds": lambda m: m.duration_seconds,
    "top_i_score": lambda m: m.top_i,
    "top_p": lambda m: m.top_p,
    "top_r": lambda m: m.top_r,
    "input_tokens": lambda m: m.input_tokens,
    "output_tokens": lambda m: m.output_tokens,
    "cost_usd": lambda m: m.usd,
}

# Two-sided 95 % quantiles of Student's t (0.975) by degrees of freedom, 1 to 30. Written out
# rather than computed: scipy, which has the distribution, is tens of megabytes for these thirty
# numbers; past 30 the Cornish-Fisher expansion below agrees with them to 1e-4.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
_Z975 = statistics.NormalDist().inv_cdf(0.975)


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError("degrees of freedom must be at least 1")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def interval(values: Sequence[float]) -> tuple[float, float, float, float]:
    """Mean, sample standard deviation and the 95 % confidence interval of the mean (K ≥ 2)."""
    mean = statistics.fmean(values)
    stdev = statistics.stdev(values)
    half = t_quantile_975(len(values) - 1) * stdev / math.sqrt(len(values))
    return mean, stdev, mean - half, mean + half


def metric_delta(baseline: float | None, replays: Sequence[float | None], *, has_baseline: bool) -> MetricDelta:
    """One metric: the baseline (None: unknown), the replays' values (None: unknown in that replay).

    ``has_baseline`` is False for a snapshot made without a run: nothing is compared, nothing flagged.
    """
    known = [v for v in replays if v is not None]
    if not known:
        return MetricDelta(baseline=baseline, flagged=has_baseline and baseline is not None)
    if len(known) == 1:
        value = known[0]
        delta = value - baseline if baseline is not None else None
        flagged = has_baseline and (baseline is None or not math.isclose(value, baseline, abs_tol=1e-9))
        return MetricDelta(baseline=baseline, replay=value, delta=delta, flagged=flagged)
    mean, stdev, low, high = interval(known)
    delta = mean - baseline if baseline is not None else None
    outside = baseline is None or not low - 1e-9 <= baseline <= high + 1e-9
    return MetricDelta(baseline, mean, delta, stdev, low, high, flagged=has_baseline and outside)


def metric_deltas(reference: RunMetrics | None, replays: Sequence[RunMetrics]) -> dict[str, MetricDelta]:
    """Every metric of the replays next to the reference's."""
    return {
        key: metric_delta(
            read(reference) if reference is not None else None,
            [read(m) for m in replays],
            has_baseline=reference is not None,
        )
        for key, read in METRICS.items()
    }
