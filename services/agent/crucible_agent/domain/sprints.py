"""Sprints: a spec's task planned, coded and verified by an agent in a sandboxed workspace."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime

from crucible_agent.domain.model import CandidateMetrics, ChatMessage, Decision, SubagentConfig

MAX_RETRIES = 3
SUCCESS_TOKEN = "VERIFICATION_SUCCESS"
FAILURE_TOKEN = "VERIFICATION_FAILED"
# How much of the agent's last answer a phase's summary keeps.
SAID_CHARACTERS = 300


class VerdictOutcome(enum.StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    NONE = "no verdict"


@dataclass(frozen=True)
class Verdict:
    """What a coding or verifying agent's last answer says: success only with the success token and
    without the failure one; and in its own words, its first lines without the tokens, which are
    for the loop and not for a person reading the phase's summary."""

    outcome: VerdictOutcome
    said: str

    @property
    def succeeded(self) -> bool:
        return self.outcome is VerdictOutcome.SUCCESS

    @classmethod
    def of(cls, text: str) -> Verdict:
        if FAILURE_TOKEN in text:
            outcome = VerdictOutcome.FAILURE
        elif SUCCESS_TOKEN in text:
            outcome = VerdictOutcome.SUCCESS
        else:
            outcome = VerdictOutcome.NONE
        first = " ".join(text.strip().splitlines()[:3])
        # What is around the tokens, each part without the punctuation that tied it to one.
        parts = (" ".join(p.split()).strip(" :;,-") for p in re.split(f"{SUCCESS_TOKEN}|{FAILURE_TOKEN}", first))
        return cls(outcome, "; ".join(p for p in parts if p)[:SAID_CHARACTERS])

    def describe(self) -> str:
        """ "success: ran the tests, 1 passed", "failure: …", "no verdict: …"."""
        return f"{self.outcome}: {self.said}" if self.said else str(self.outcome)


class SprintStatus(enum.StrEnum):
    PLANNED = "planned"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (SprintStatus.COMPLETED, SprintStatus.FAILED, SprintStatus.CANCELLED)


class Phase(enum.StrEnum):
    DISCOVERY = "discovery"
    CODING = "coding"
    VERIFICATION = "verification"


class PhaseAttemptStatus(enum.StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class PlanningStatus(enum.StrEnum):
    NEEDS_ANSWERS = "needs_answers"
    ANSWERED = "answered"


@dataclass(frozen=True)
class SpecSnapshot:
    spec_id: str
    title: str
    task: str
    planning_status: PlanningStatus | None
    answers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Trigger:
    id: str
    source: str
    at: datetime


@dataclass(frozen=True)
class SprintPlan:
    """The plan the Discovery judge chose (the ``sprint_plan`` structured answer)."""

    summary: str
    steps: tuple[str, ...]
    files: tuple[str, ...]
    tests: tuple[str, ...]
    plan_markdown: str


@dataclass(frozen=True)
class TestReport:
    """A sandboxed pytest run, as Verification reports it."""

    # Not a test class, whatever its name says.
    __test__ = False

    passed: bool
    exit_code: int | None
    timed_out: bool
    summary: str
    duration_ms: int
    network_isolated: bool
    notes: tuple[str, ...]
    # The tail of pytest's output.
    output: str


@dataclass(frozen=True)
class Artifact:
    path: str
    size: int


@dataclass(frozen=True)
class ToolResult:
    """What a workspace tool answered the model; a refusal is an error it can read, not an exception."""

    content: str
    is_error: bool = False


@dataclass(frozen=True)
class PhaseOutput:
    """What a phase attempt produced, or was doing when its process stopped; each phase fills its parts."""

    # The tool loop's transcript so far (Coding, Verification).
    messages: tuple[ChatMessage, ...] = ()
    # Discovery: the chosen plan and the subagent that proposed it, who then codes it.
    plan: SprintPlan | None = None
    coder: SubagentConfig | None = None
    # Verification: the sandboxed test run.
    test_report: TestReport | None = None


@dataclass(frozen=True)
class PhaseAttempt:
    sprint_id: str
    phase: Phase
    attempt: int
    status: PhaseAttemptStatus
    agent_run_id: str
    summary: str
    output: PhaseOutput
    started_at: datetime
    finished_at: datetime | None = None


@dataclass(frozen=True)
class Sprint:
    id: str
    spec: SpecSnapshot
    name: str
    goal: str
    status: SprintStatus
    current_phase: Phase | None
    trigger: Trigger | None
    workspace_ref: str
    failure_reason: str
    created_at: datetime
    updated_at: datetime
    phases: list[PhaseAttempt] = field(default_factory=list)

    def attempt(self, phase: Phase, number: int) -> PhaseAttempt | None:
        return next((a for a in self.phases if a.phase is phase and a.attempt == number), None)


# ---------------------------------------------------------------- events


class SprintEventType(enum.StrEnum):
    SPRINT_CREATED = "sprint.created"
    SPRINT_STARTED = "sprint.started"
    PHASE_STARTED = "phase.started"
    PHASE_COMPLETED = "phase.completed"
    PHASE_FAILED = "phase.failed"
    CANDIDATE_COMPLETED = "candidate.completed"
    CANDIDATE_FAILED = "candidate.failed"
    JUDGE_DECIDED = "judge.decided"
    TOOL_CALLED = "tool.called"
    SPRINT_COMPLETED = "sprint.completed"
    SPRINT_FAILED = "sprint.failed"
    PHASE_CANCELLED = "phase.cancelled"
    SPRINT_CANCELLED = "sprint.cancelled"


@dataclass(frozen=True)
class SprintCreated:
    name: str
    spec_id: str


@dataclass(frozen=True)
class SprintStarted:
    trigger_id: str
    trigger_source: str


@dataclass(frozen=True)
class PhaseStarted:
    phase: Phase
    attempt: int


@dataclass(frozen=True)
class PhaseEnded:
    phase: Phase
    attempt: int
    summary: str


@dataclass(frozen=True)
class CandidateCompleted:
    phase: Phase
    attempt: int
    name: str
    provider: str
    metrics: CandidateMetrics


@dataclass(frozen=True)
class CandidateFailed:
    phase: Phase
    attempt: int
    name: str
    provider: str
    reason: str


@dataclass(frozen=True)
class JudgeDecided:
    """A phase's judge decision (the agent run's ``Decision``, flat for readers of the stream)."""

    phase: Phase
    agent_run_id: str
    candidate_id: str
    candidate_name: str
    provider: str
    model: str
    rationale: str
    fallback: bool
    fallback_reason: str

    @classmethod
    def of(cls, phase: Phase, decision: Decision) -> JudgeDecided:
        d = decision
        return cls(
            phase,
            d.agent_run_id,
            d.candidate_id,
            d.candidate_name,
            d.provider,
            d.model,
            d.rationale,
            d.fallback,
            d.fallback_reason,
        )


@dataclass(frozen=True)
class ToolCalled:
    phase: Phase
    attempt: int
    tool: str
    path: str
    is_error: bool
    # The start of what the tool answered.
    result: str


@dataclass(frozen=True)
class SprintEnded:
    failure_reason: str


SprintEventData = (
    SprintCreated
    | SprintStarted
    | PhaseStarted
    | PhaseEnded
    | CandidateCompleted
    | CandidateFailed
    | JudgeDecided
    | ToolCalled
    | SprintEnded
)

# Which shape each type of event has.
EVENT_DATA: dict[SprintEventType, type[SprintEventData]] = {
    SprintEventType.SPRINT_CREATED: SprintCreated,
    SprintEventType.SPRINT_STARTED: SprintStarted,
    SprintEventType.PHASE_STARTED: PhaseStarted,
    SprintEventType.PHASE_COMPLETED: PhaseEnded,
    SprintEventType.PHASE_FAILED: PhaseEnded,
    SprintEventType.CANDIDATE_COMPLETED: CandidateCompleted,
    SprintEventType.CANDIDATE_FAILED: CandidateFailed,
    SprintEventType.JUDGE_DECIDED: JudgeDecided,
    SprintEventType.TOOL_CALLED: ToolCalled,
    SprintEventType.SPRINT_COMPLETED: SprintEnded,
    SprintEventType.SPRINT_FAILED: SprintEnded,
    SprintEventType.PHASE_CANCELLED: PhaseEnded,
    SprintEventType.SPRINT_CANCELLED: SprintEnded,
}


@dataclass(frozen=True)
class NewSprintEvent:
    """An event as the workflow raises it; the store gives it its sequence and time."""

    type: SprintEventType
    data: SprintEventData

    def __post_init__(self) -> None:
        if not isinstance(self.data, EVENT_DATA[self.type]):
            raise TypeError(f"{self.type} carries {EVENT_DATA[self.type].__name__}, not {type(self.data).__name__}")


@dataclass(frozen=True)
class SprintEvent:
    sequence: int
    sprint_id: str
    type: SprintEventType
    data: SprintEventData
    at: datetime
