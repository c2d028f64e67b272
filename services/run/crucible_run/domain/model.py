"""The run context's domain: runs of the pipeline, their candidates, scenarios, evaluations and ranking."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crucible_run.domain.spans import SpanRef

JsonObject = dict[str, Any]

# A constraint of this weight is hard: a candidate that breaks it in any scenario is rejected.
HARD_CONSTRAINT_WEIGHT = 100


class RunMode(enum.StrEnum):
    FULL_SEARCH = "full_search"
    EVAL_ONLY = "eval_only"
    SEEDED = "seeded"


class RunStatus(enum.StrEnum):
    """Spelt in capitals, as seed 000's documents and invariants write them."""

    CREATED = "CREATED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def finished(self) -> bool:
        return self in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)


class RunPhase(enum.StrEnum):
    DESIGN = "design"
    SCENARIOS = "scenarios"
    EVALUATE = "evaluate"
    RANK = "rank"


# In the order they run; a phase needs the ones before it that produce its input.
PHASE_ORDER = (RunPhase.DESIGN, RunPhase.SCENARIOS, RunPhase.EVALUATE, RunPhase.RANK)
PHASE_NEEDS: dict[RunPhase, tuple[RunPhase, ...]] = {
    RunPhase.DESIGN: (),
    RunPhase.SCENARIOS: (),
    RunPhase.EVALUATE: (RunPhase.DESIGN, RunPhase.SCENARIOS),
    RunPhase.RANK: (RunPhase.EVALUATE,),
}


def with_needs(phases: tuple[RunPhase, ...]) -> tuple[RunPhase, ...]:
    """The phases asked for, with those they need, in running order (none asked: all of them)."""
    wanted = set(phases or PHASE_ORDER)
    pending = list(wanted)
    while pending:
        for need in PHASE_NEEDS[pending.pop()]:
            if need not in wanted:
                wanted.add(need)
                pending.append(need)
    return tuple(p for p in PHASE_ORDER if p in wanted)


class TriggerSource(enum.StrEnum):
    RUN_CONFIG_PANEL = "run_config_panel"
    API_CLIENT = "api_client"
    INTEGRATION_TEST = "integration_test"
    CLI_TOOL = "cli_tool"
    SNAPSHOT_TEST = "snapshot_test"


class BlockerCode(enum.StrEnum):
    MISSING_PROBLEM_SPEC = "missing_problem_spec"
    MISSING_WORLD_MODEL = "missing_world_model"
    INSUFFICIENT_CANDIDATES = "insufficient_candidates"
    VALIDATION_ERROR = "validation_error"


class WarningCode(enum.StrEnum):
    HIGH_BUDGET = "high_budget"
    LARGE_CANDIDATE_COUNT = "large_candidate_count"
    DEPRECATED_MODE = "deprecated_mode"


class CandidateLabel(enum.StrEnum):
    PROMISING = "promising"
    UNDER_TEST = "under_test"
    WEAK = "weak"
    REJECTED = "rejected"


class CandidateOrigin(enum.StrEnum):
    DESIGNED = "designed"
    SEED = "seed"


class EvaluationStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class CandidateDraft:
    """A seed given whole: a candidate as a designer would propose it, with no run of its own."""

    title: str
    description: str = ""
    approach: str = ""
    assumptions: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunParameters:
    num_candidates: int = 0
    num_scenarios: int = 0
    seed_candidate_ids: tuple[str, ...] = ()
    budget_tokens: int | None = None
    budget_usd: float | None = None
    max_runtime_s: int | None = None
    # Seeds given whole (a snapshot replayed into a new project has no runs to name seeds from).
    seed_candidates: tuple[CandidateDraft, ...] = ()


@dataclass(frozen=True)
class RunConfig:
    mode: RunMode
    parameters: RunParameters


@dataclass(frozen=True)
class Trigger:
    id: str
    source: TriggerSource
    metadata: JsonObject
    at: datetime


@dataclass(frozen=True)
class LlmUsage:
    input_tokens: int = 0
    output_tokens: int = 0
    # Over priced calls only; unpriced calls are counted apart, never as $0.
    usd: float = 0.0
    calls: int = 0
    unpriced_calls: int = 0
    failed_calls: int = 0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class RunCounts:
    candidates: int = 0
    scenarios: int = 0
    evaluations: int = 0
    failed_evaluations: int = 0


@dataclass(frozen=True)
class Constraint:
    name: str
    description: str
    weight: int

    @property
    def hard(self) -> bool:
        return self.weight >= HARD_CONSTRAINT_WEIGHT


@dataclass(frozen=True)
class ProblemCopy:
    """The project's ProblemSpec and WorldModel as the run read them once: a later edit does not change it."""

    constraints: tuple[Constraint, ...]
    goals: tuple[str, ...]
    resolution: str
    world_model: JsonObject

    def constraint(self, name: str) -> Constraint | None:
        """The constraint an evaluator's answer names: matched regardless of case and spacing, since a
        model that writes "no child labour " for "No child labour" still judged that constraint."""
        exact = next((c for c in self.constraints if c.name == name), None)
        if exact is not None:
            return exact
        wanted = _name_key(name)
        loose = [c for c in self.constraints if _name_key(c.name) == wanted]
        # Two constraints that differ only so: which one the answer meant is not known.
        return loose[0] if len(loose) == 1 else None


def _name_key(name: str) -> str:
    return " ".join(name.split()).casefold()


@dataclass(frozen=True)
class Run:
    id: str
    project_id: str
    mode: RunMode
    parameters: RunParameters
    status: RunStatus
    trigger: Trigger
    chat_session_id: str
    recommended_message_id: str
    recommended_config_snapshot: JsonObject | None
    created_at: datetime
    # The phases asked for by ExecuteRun, with what they need (empty before it).
    phases: tuple[RunPhase, ...] = ()
    problem: ProblemCopy | None = None
    counts: RunCounts = field(default_factory=RunCounts)
    usage: LlmUsage = field(default_factory=LlmUsage)
    failure_reason: str = ""
    error_summary: str = ""
    run_summary_message_id: str = ""
    # Ended, with its summary still to post.
    summary_pending: bool = False
    # Ended FAILED, with its project's auto_snapshot_failed_runs still to act on.
    snapshot_pending: bool = False
    # Recorded replay: each model call is answered from that run's call with the same request, at $0.
    replay_of_run_id: str = ""
    # The snapshot test suite this run replays for: its model calls carry it, so the suite's cost is theirs.
    snapshot_test_id: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    # The run's execution trace, and the W3C context of its root span: every process that executes
    # the run (a resumed run too) works under that root, so the execution is one trace.
    trace_id: str = ""
    trace_context: dict[str, str] = field(default_factory=dict)
    phases_done: tuple[RunPhase, ...] = ()
    # The span that created the run (it links to the recommendation's span) and the one that
    # posted its summary (it links to the execution root): the two ends of the run's lineage.
    create_span: SpanRef | None = None
    summary_span: SpanRef | None = None

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class RunState:
    """How far a run is, without the rest of it: what a watcher asks at every wake."""

    status: RunStatus
    summary_pending: bool

    @property
    def over(self) -> bool:
        """Ended, with its summary posted: nothing more will happen to it."""
        return self.status.finished and not self.summary_pending


@dataclass(frozen=True)
class Candidate:
    id: str
    run_id: str
    title: str
    description: str
    approach: str
    assumptions: tuple[str, ...]
    origin: CandidateOrigin
    created_at: datetime
    source_candidate_id: str = ""
    # Its place in the designers' answer, so listings keep the designers' order.
    position: int = 0


@dataclass(frozen=True)
class Scenario:
    id: str
    run_id: str
    title: str
    description: str
    conditions: tuple[str, ...]
    severity: str
    created_at: datetime
    position: int = 0


@dataclass(frozen=True)
class Score:
    overall: float
    components: dict[str, float]


@dataclass(frozen=True)
class ConstraintResult:
    constraint: str
    weight: int
    satisfied: bool
    score: float
    note: str


@dataclass(frozen=True)
class Evaluation:
    id: str
    run_id: str
    candidate_id: str
    scenario_id: str
    status: EvaluationStatus
    created_at: datetime
    p: Score | None = None
    r: Score | None = None
    constraint_satisfaction: tuple[ConstraintResult, ...] = ()
    explanation: str = ""
    failure_reason: str = ""
    raw_answer: str = ""
    llm_call_id: str = ""


@dataclass(frozen=True)
class ConstraintViolation:
    constraint: str
    weight: int
    scenarios: int


@dataclass(frozen=True)
class RankedCandidate:
    candidate_id: str
    title: str
    rank: int
    label: CandidateLabel
    # None when the candidate has no successful evaluation: it cannot be ranked by I.
    i: float | None
    p: float | None
    r: float | None
    violated_constraints: tuple[ConstraintViolation, ...]
    evaluations: int
    failed_evaluations: int

    @property
    def rejected(self) -> bool:
        return self.label is CandidateLabel.REJECTED


@dataclass(frozen=True)
class RunStatistics:
    run_id: str
    status: RunStatus
    counts: RunCounts
    coverage: float
    missing_pairs: tuple[tuple[str, str], ...]
    duration_seconds: float | None
    usage: LlmUsage
    top_candidate: RankedCandidate | None
    hard_constraint_violations: int
    error_summary: str
    failure_reason: str
