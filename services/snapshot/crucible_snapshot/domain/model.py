"""The snapshot context's domain: snapshots, replays of them, and the reports of test suites."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crucible_snapshot.domain.snapshot_data import SnapshotData

JsonObject = dict[str, Any]
# What an invariant's value, expected or actual can be: JSON scalars (lists, for repetitions).
JsonScalar = bool | int | float | str | None
JsonValue = JsonScalar | list[JsonScalar]


class RunMode(enum.StrEnum):
    FULL_SEARCH = "full_search"
    EVAL_ONLY = "eval_only"
    SEEDED = "seeded"


class RunPhase(enum.StrEnum):
    DESIGN = "design"
    SCENARIOS = "scenarios"
    EVALUATE = "evaluate"
    RANK = "rank"


class ReplayPhases(enum.StrEnum):
    ALL = "all"
    FULL = "full"
    DESIGN = "design"
    EVALUATE = "evaluate"


# What each of the seed's phase options asks the run for; the run adds the phases these need
# (evaluate needs design and scenarios), so EVALUATE replays the whole pipeline.
PHASES: dict[ReplayPhases, tuple[RunPhase, ...]] = {
    ReplayPhases.ALL: (),
    ReplayPhases.FULL: (),
    ReplayPhases.DESIGN: (RunPhase.DESIGN, RunPhase.SCENARIOS),
    ReplayPhases.EVALUATE: (RunPhase.EVALUATE, RunPhase.RANK),
}


class ReplayMode(enum.StrEnum):
    LIVE = "live"
    RECORDED = "recorded"


class ResultStatus(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    ERROR = "error"


class ReportStatus(enum.StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


# Run statuses as the run service spells them: a run in one of these has ended.
ENDED_RUN_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELLED"})


@dataclass(frozen=True)
class RunMetrics:
    """What a run did, from the run service's statistics: the reference and what a replay is compared with."""

    run_id: str
    status: str
    candidates: int = 0
    scenarios: int = 0
    evaluations: int = 0
    failed_evaluations: int = 0
    coverage: float = 0.0
    hard_constraint_violations: int = 0
    duration_seconds: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    usd: float = 0.0
    llm_calls: int = 0
    unpriced_calls: int = 0
    error_summary: str = ""
    top_i: float | None = None
    top_p: float | None = None
    top_r: float | None = None
    top_candidate_id: str = ""
    # Why the run failed or stopped, in the run service's words.
    failure_reason: str = ""

    @property
    def ended(self) -> bool:
        return self.status in ENDED_RUN_STATUSES


@dataclass(frozen=True)
class Invariant:
    type: str
    value: JsonScalar
    description: str = ""


@dataclass(frozen=True)
class Snapshot:
    id: str
    name: str
    description: str
    tags: tuple[str, ...]
    project_id: str
    run_id: str
    # None in listings, which leave the data out.
    data: SnapshotData | None
    reference_metrics: RunMetrics | None
    invariants: tuple[Invariant, ...]
    # The schema version snapshot_data was stored in (``data`` is always the current one).
    stored_version: str
    parent_id: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ReplayOptions:
    phases: ReplayPhases = ReplayPhases.ALL
    num_candidates: int | None = None
    num_scenarios: int | None = None
    reuse_project: bool = False
    mode: ReplayMode = ReplayMode.LIVE


@dataclass(frozen=True)
class InvariantResult:
    type: str
    description: str
    status: ResultStatus
    expected: JsonValue
    actual: JsonValue
    pass_rate: float
    message: str = ""


@dataclass(frozen=True)
class MetricDelta:
    baseline: float | None = None
    replay: float | None = None
    delta: float | None = None
    stdev: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    flagged: bool = False


@dataclass(frozen=True)
class SnapshotTestResult:
    snapshot_id: str
    snapshot_name: str
    status: ResultStatus
    replay_run_ids: tuple[str, ...] = ()
    invariants: tuple[InvariantResult, ...] = ()
    metrics_delta: dict[str, MetricDelta] = field(default_factory=dict)
    cost_usd: float = 0.0
    reason: str = ""
    repetitions: int = 0

    @property
    def replay_run_id(self) -> str:
        return self.replay_run_ids[0] if self.replay_run_ids else ""


@dataclass(frozen=True)
class TestSummary:
    total: int = 0
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    errors: int = 0


@dataclass(frozen=True)
class TestOptions:
    max_snapshots: int = 0
    phases: ReplayPhases = ReplayPhases.ALL
    num_candidates: int | None = None
    num_scenarios: int | None = None
    stop_on_first_failure: bool = False
    cost_limit_usd: float | None = None
    # 0: the service's default.
    concurrency: int = 0
    replay_mode: ReplayMode = ReplayMode.LIVE
    repetitions: int = 1
    min_pass_rate: float = 1.0

    def replay(self) -> ReplayOptions:
        return ReplayOptions(self.phases, self.num_candidates, self.num_scenarios, False, self.replay_mode)


@dataclass(frozen=True)
class TestReport:
    id: str
    trigger_id: str
    status: ReportStatus
    options: TestOptions
    # In the order chosen; results follow it.
    snapshot_ids: tuple[str, ...]
    created_at: datetime
    results: tuple[SnapshotTestResult, ...] = ()
    total_cost_usd: float = 0.0
    error: str = ""
    ended_at: datetime | None = None

    @property
    def snapshot_test_id(self) -> str:
        """The correlation id the suite's model calls carry: the report's own id."""
        return self.id

    @property
    def summary(self) -> TestSummary:
        counts = {s: sum(1 for r in self.results if r.status is s) for s in ResultStatus}
        return TestSummary(
            total=len(self.snapshot_ids),
            passed=counts[ResultStatus.PASSED],
            failed=counts[ResultStatus.FAILED],
            skipped=counts[ResultStatus.SKIPPED],
            errors=counts[ResultStatus.ERROR],
        )


class ReplayState(enum.StrEnum):
    # Its project exists (restored); no run yet.
    PREPARED = "prepared"
    # Its run was created (and executed): follow it.
    RUNNING = "running"
    ENDED = "ended"
    # Not started: the cost limit, or the suite stopped.
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Replay:
    """One replay run, stored as it progresses: a replay re-attached after a crash resumes from here.

    ``trigger_id`` is the run's trigger: the request's own for ReplaySnapshot, a deterministic one
    (report, position, repetition) in a suite, so the run service answers a second CreateRun with
    the run it already created.
    """

    trigger_id: str
    snapshot_id: str
    project_id: str
    created_at: datetime
    report_id: str = ""
    position: int = 0
    repetition: int = 0
    state: ReplayState = ReplayState.PREPARED
    run_id: str = ""
    # What the cost limit holds for it while it runs (its run's budget_usd), in USD.
    reserved_usd: float = 0.0
    metrics: RunMetrics | None = None
    reason: str = ""


@dataclass(frozen=True)
class ReplayChange:
    """How a replay moves on; the fields left None keep their value."""

    state: ReplayState
    run_id: str | None = None
    reserved_usd: float | None = None
    metrics: RunMetrics | None = None
    reason: str | None = None

    def changed(self) -> dict[str, object]:
        """The fields it sets, by name."""
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass(frozen=True)
class ReplayMove:
    """Where one of a suite's replays stands, as its watchers are told: a repetition of a snapshot,
    its state, and its run once created."""

    position: int
    # 0-based, as stored.
    repetition: int
    snapshot_id: str
    state: ReplayState
    run_id: str = ""
    # "" when the snapshot has been deleted since.
    snapshot_name: str = ""


def suite_trigger_id(report_id: str, position: int, repetition: int) -> str:
    """The trigger of a suite's replay: the same replay resumed creates no second run."""
    return f"snapshot-test:{report_id}:{position}:{repetition}"
