"""A test suite's rules: its options, and a snapshot's result from its replays."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from crucible_common.errors import FieldViolation
from crucible_common.wording import counted
from crucible_snapshot.domain import invariants as inv
from crucible_snapshot.domain.model import ResultStatus, RunMetrics, Snapshot, SnapshotTestResult, TestOptions
from crucible_snapshot.domain.statistics import metric_deltas

MAX_CONCURRENCY = 64
MAX_REPETITIONS = 20
# How the run service says it stopped a run at its budget_usd: for a replay, the suite's cost limit
# (when its share is what bound it). A stop at budget_tokens is the snapshot's own doing.
BUDGET_STOP = "stopped before crossing the budget: budget_usd"


def validate_options(o: TestOptions, field: str = "options") -> list[FieldViolation]:
    problems = []
    if o.max_snapshots < 0:
        problems.append(FieldViolation(f"{field}.max_snapshots", "0 (no limit) or more"))
    for name, value in (("num_candidates", o.num_candidates), ("num_scenarios", o.num_scenarios)):
        if value is not None and value < 1:
            problems.append(FieldViolation(f"{field}.{name}", "at least 1 when set"))
    if o.cost_limit_usd is not None and not (math.isfinite(o.cost_limit_usd) and o.cost_limit_usd >= 0):
        problems.append(FieldViolation(f"{field}.cost_limit_usd", "a non-negative amount in USD"))
    if not 0 <= o.concurrency <= MAX_CONCURRENCY:
        problems.append(FieldViolation(f"{field}.concurrency", f"0 (the service's default) to {MAX_CONCURRENCY}"))
    if not 0 <= o.repetitions <= MAX_REPETITIONS:
        problems.append(FieldViolation(f"{field}.repetitions", f"0 or 1 (one) to {MAX_REPETITIONS}"))
    if not (math.isfinite(o.min_pass_rate) and 0.0 <= o.min_pass_rate <= 1.0):
        problems.append(FieldViolation(f"{field}.min_pass_rate", "a share in [0, 1]"))
    return problems


def resolved(o: TestOptions, default_concurrency: int) -> TestOptions:
    """The options as the suite runs them: its concurrency and repetitions said, not left at 0."""
    return replace(o, concurrency=o.concurrency or default_concurrency, repetitions=max(1, o.repetitions))


@dataclass(frozen=True)
class ReplayEnd:
    """How one replay of a snapshot ended: its metrics, or why it has none."""

    run_id: str = ""
    metrics: RunMetrics | None = None
    # Why the harness could not replay it (a service down, a run the run service refused).
    error: str = ""
    # Stopped by the run service at its share of the suite's cost limit.
    stopped_by_cost: bool = False


def skipped(snapshot_id: str, name: str, reason: str) -> SnapshotTestResult:
    return SnapshotTestResult(snapshot_id, name, ResultStatus.SKIPPED, reason=reason)


def errored(snapshot_id: str, name: str, reason: str) -> SnapshotTestResult:
    return SnapshotTestResult(snapshot_id, name, ResultStatus.ERROR, reason=reason[:2_000])


def snapshot_result(
    snapshot: Snapshot,
    ends: Sequence[ReplayEnd],
    *,
    cost_usd: float,
    min_pass_rate: float,
    not_started: str = "",
) -> SnapshotTestResult:
    """A snapshot's result over the replays that ended with metrics (its repetitions).

    Passed when every invariant holds in at least ``min_pass_rate`` of them. Replays stopped by the
    cost limit or that the harness could not run count in none: with none left, the result is
    skipped (cost) or an error, with why; otherwise the reason says what was left out.
    """
    measured = [e for e in ends if e.metrics is not None and not e.stopped_by_cost]
    stopped = sum(1 for e in ends if e.stopped_by_cost)
    their = "its" if stopped == 1 else "their"
    notes = [f"{counted(stopped, 'replay')} stopped at {their} share of the cost limit"] if stopped else []
    notes += list(dict.fromkeys(e.error for e in ends if e.error))
    if not_started:
        notes.append(not_started)
    reason = "; ".join(notes)[:2_000]
    base = SnapshotTestResult(
        snapshot.id,
        snapshot.name,
        ResultStatus.ERROR,
        replay_run_ids=tuple(e.run_id for e in ends if e.run_id),
        cost_usd=cost_usd,
        reason=reason,
        repetitions=len(measured),
    )
    if not measured:
        harness_failed = any(e.error for e in ends)
        return replace(base, status=ResultStatus.ERROR if harness_failed else ResultStatus.SKIPPED)
    metrics = [e.metrics for e in measured if e.metrics is not None]
    results = inv.check_all(snapshot.invariants, metrics, min_pass_rate)
    return replace(
        base,
        status=ResultStatus.PASSED if inv.passed(results) else ResultStatus.FAILED,
        invariants=results,
        metrics_delta=metric_deltas(snapshot.reference_metrics, metrics),
    )


def stops_the_suite(result: SnapshotTestResult) -> bool:
    """With stop_on_first_failure: a failed snapshot, or one the harness could not replay."""
    return result.status in (ResultStatus.FAILED, ResultStatus.ERROR)
