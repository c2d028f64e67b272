"""What a run reports as it goes (WatchRun), one shape per type of event."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from crucible_run.domain.model import CandidateOrigin, RunPhase, RunStatus


class RunEventType(enum.StrEnum):
    RUN_CREATED = "run.created"
    RUN_STARTED = "run.started"
    PHASE_STARTED = "phase.started"
    PHASE_COMPLETED = "phase.completed"
    CANDIDATE_ADDED = "candidate.added"
    SCENARIO_ADDED = "scenario.added"
    EVALUATION_COMPLETED = "evaluation.completed"
    EVALUATION_FAILED = "evaluation.failed"
    RUN_RANKED = "run.ranked"
    RUN_COMPLETED = "run.completed"
    RUN_FAILED = "run.failed"
    RUN_CANCELLED = "run.cancelled"
    SUMMARY_POSTED = "summary.posted"


@dataclass(frozen=True)
class RunCreated:
    mode: str
    trigger_id: str
    trigger_source: str


@dataclass(frozen=True)
class RunStarted:
    phases: tuple[RunPhase, ...]


@dataclass(frozen=True)
class PhaseStarted:
    phase: RunPhase
    # Begun before by the runner this one took the run over from (it stopped: a crash, a lost
    # lease): this start continues that phase from what it stored, it is not a second phase.
    continued: bool = False


@dataclass(frozen=True)
class PhaseChanged:
    phase: RunPhase
    # phase.completed: what the run has spent so far (its design and scenario calls are paid
    # before any evaluation says so); None in the events of runs before it was kept.
    usd_spent: float | None = None
    # And how many of its calls so far had no price (their cost is not in usd_spent).
    unpriced_calls: int = 0


@dataclass(frozen=True)
class CandidateAdded:
    candidate_id: str
    title: str
    origin: CandidateOrigin


@dataclass(frozen=True)
class ScenarioAdded:
    scenario_id: str
    title: str
    severity: str


@dataclass(frozen=True)
class EvaluationDone:
    """One pair evaluated (or failed), with the progress of the phase and the spend so far."""

    candidate_id: str
    scenario_id: str
    done: int
    total: int
    usd_spent: float
    p: float | None = None
    r: float | None = None
    reason: str = ""
    # The run's calls so far whose cost is unknown (no price): not counted in usd_spent. More than 0
    # says the spend is partly unknown; a run continued after a restart starts from the agent
    # service's count, which counts attempts.
    unpriced_calls: int = 0


@dataclass(frozen=True)
class RunRanked:
    ranked: int
    rejected: int
    top_candidate_id: str
    top_i: float | None


@dataclass(frozen=True)
class SummaryPosted:
    # "" when the project is gone and there was no chat to post to.
    message_id: str


@dataclass(frozen=True)
class RunEnded:
    status: RunStatus
    reason: str


RunEventData = (
    RunCreated
    | RunStarted
    | PhaseStarted
    | PhaseChanged
    | CandidateAdded
    | ScenarioAdded
    | EvaluationDone
    | RunRanked
    | RunEnded
    | SummaryPosted
)

EVENT_DATA: dict[RunEventType, type[RunEventData]] = {
    RunEventType.RUN_CREATED: RunCreated,
    RunEventType.RUN_STARTED: RunStarted,
    RunEventType.PHASE_STARTED: PhaseStarted,
    RunEventType.PHASE_COMPLETED: PhaseChanged,
    RunEventType.CANDIDATE_ADDED: CandidateAdded,
    RunEventType.SCENARIO_ADDED: ScenarioAdded,
    RunEventType.EVALUATION_COMPLETED: EvaluationDone,
    RunEventType.EVALUATION_FAILED: EvaluationDone,
    RunEventType.RUN_RANKED: RunRanked,
    RunEventType.RUN_COMPLETED: RunEnded,
    RunEventType.RUN_FAILED: RunEnded,
    RunEventType.RUN_CANCELLED: RunEnded,
    RunEventType.SUMMARY_POSTED: SummaryPosted,
}

ENDED = {
    RunStatus.COMPLETED: RunEventType.RUN_COMPLETED,
    RunStatus.FAILED: RunEventType.RUN_FAILED,
    RunStatus.CANCELLED: RunEventType.RUN_CANCELLED,
}


@dataclass(frozen=True)
class NewRunEvent:
    type: RunEventType
    data: RunEventData

    def __post_init__(self) -> None:
        if not isinstance(self.data, EVENT_DATA[self.type]):
            raise TypeError(f"{self.type} carries {EVENT_DATA[self.type].__name__}, not {type(self.data).__name__}")


@dataclass(frozen=True)
class RunEvent:
    sequence: int
    run_id: str
    type: RunEventType
    data: RunEventData
    at: datetime
