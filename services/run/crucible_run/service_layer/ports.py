"""What the run context's use cases need from outside; ``adapters`` implement it, ``bootstrap`` wires it.

The repository (SQL), the spec service (the project's problem, its chat, its settings), the agent
service (the models, their prices, what the run spent), the snapshot service (failure snapshots),
the lease store and the trace store.
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from crucible_common.errors import Unavailable
from crucible_common.leases import LeaseStore
from crucible_common.updates import Updates, Waiter
from crucible_run.domain.budget import CallAllowance
from crucible_run.domain.estimates import Pricing
from crucible_run.domain.events import NewRunEvent, RunEvent
from crucible_run.domain.failure_snapshot import FailureSnapshot
from crucible_run.domain.lineage import ChatMessage
from crucible_run.domain.model import (
    Candidate,
    Evaluation,
    EvaluationStatus,
    JsonObject,
    LlmUsage,
    ProblemCopy,
    RankedCandidate,
    Run,
    RunCounts,
    RunPhase,
    RunState,
    RunStatus,
    Scenario,
)
from crucible_run.domain.spans import SpanRef, SpanSearch

__all__ = [
    "AbstractRunRepository",
    "CallNotRecorded",
    "ChatMessage",
    "ChatTarget",
    "LeaseStore",
    "ModelAnswer",
    "ModelCall",
    "ModelCallFailed",
    "Models",
    "ProjectProblem",
    "SnapshotRefused",
    "Snapshots",
    "SpecService",
    "TraceStore",
    "Updates",
    "Waiter",
]


class AbstractRunRepository(abc.ABC):
    # ------------------------------------------------------------ runs

    @abc.abstractmethod
    async def add_run(self, run: Run) -> bool:
        """False when a run with the same trigger id exists already (nothing is added)."""

    @abc.abstractmethod
    async def get_run(self, run_id: str, *, for_update: bool = False) -> Run | None: ...

    @abc.abstractmethod
    async def run_state(self, run_id: str) -> RunState | None:
        """The run's status alone (a watcher reads it at every wake; the whole run, with its copy of
        the problem, is many times the work)."""

    @abc.abstractmethod
    async def run_by_trigger(self, trigger_id: str) -> Run | None: ...

    @abc.abstractmethod
    async def list_runs(
        self, project_id: str, status: RunStatus | None, limit: int, after: tuple[datetime, str] | None
    ) -> list[Run]: ...

    @abc.abstractmethod
    async def start(
        self,
        run_id: str,
        phases: tuple[RunPhase, ...],
        problem: ProblemCopy,
        at: datetime,
        trace_context: dict[str, str],
    ) -> None:
        """CREATED → RUNNING, with the copy of the problem it runs on and the trace its execution continues."""

    @abc.abstractmethod
    async def phase_done(self, run_id: str, phase: RunPhase) -> None: ...

    @abc.abstractmethod
    async def finish(
        self,
        run_id: str,
        status: RunStatus,
        *,
        failure_reason: str,
        error_summary: str,
        counts: RunCounts,
        usage: LlmUsage,
        at: datetime,
        summary_pending: bool,
        snapshot_pending: bool = False,
    ) -> None:
        """End the run; it stays leased work until its summary is posted (and its failure snapshot made)."""

    @abc.abstractmethod
    async def set_summary(self, run_id: str, message_id: str, span: SpanRef | None) -> None:
        """The summary is posted: its message, and the span that posted it."""

    @abc.abstractmethod
    async def set_usage(self, run_id: str, usage: LlmUsage) -> None:
        """What the run's model calls cost, as the agent service recorded them."""

    @abc.abstractmethod
    async def snapshot_done(self, run_id: str) -> None:
        """The failure snapshot is made (or was not wanted)."""

    @abc.abstractmethod
    async def counts(self, run_id: str) -> RunCounts: ...

    # ------------------------------------------------------------ what a run produces

    @abc.abstractmethod
    async def add_candidates(self, candidates: Sequence[Candidate]) -> None: ...

    @abc.abstractmethod
    async def candidates(self, run_id: str, limit: int = 100_000, after_position: int = -1) -> list[Candidate]: ...

    @abc.abstractmethod
    async def project_candidates(self, project_id: str, ids: Sequence[str]) -> list[Candidate]:
        """The candidates among ``ids`` that belong to runs of ``project_id``."""

    @abc.abstractmethod
    async def latest_completed_candidates(self, project_id: str) -> list[Candidate]:
        """The candidates of the project's latest completed run that has some."""

    @abc.abstractmethod
    async def add_scenarios(self, scenarios: Sequence[Scenario]) -> None: ...

    @abc.abstractmethod
    async def scenarios(self, run_id: str, limit: int = 100_000, after_position: int = -1) -> list[Scenario]: ...

    @abc.abstractmethod
    async def add_evaluations(self, evaluations: Sequence[Evaluation]) -> None: ...

    @abc.abstractmethod
    async def set_raw_answers(self, answers: Sequence[tuple[str, str]]) -> None:
        """(evaluation id, raw answer) pairs: the failed evaluations' raw answers, had whole."""

    @abc.abstractmethod
    async def evaluations(
        self,
        run_id: str,
        candidate_id: str = "",
        limit: int = 100_000,
        after: tuple[datetime, str] | None = None,
        status: EvaluationStatus | None = None,
    ) -> list[Evaluation]: ...

    @abc.abstractmethod
    async def evaluated_pairs(self, run_id: str, status: EvaluationStatus | None = None) -> set[tuple[str, str]]:
        """The (candidate id, scenario id) pairs the run has an evaluation of (with ``status``, when given)."""

    @abc.abstractmethod
    async def set_ranking(self, run_id: str, ranking: Sequence[RankedCandidate]) -> None: ...

    @abc.abstractmethod
    async def ranking(self, run_id: str) -> list[RankedCandidate]: ...

    # ------------------------------------------------------------ events

    @abc.abstractmethod
    async def add_event(self, run_id: str, event: NewRunEvent, at: datetime) -> int: ...

    @abc.abstractmethod
    async def add_events(self, run_id: str, events: Sequence[tuple[NewRunEvent, datetime]]) -> None:
        """Several events at once, in order."""

    @abc.abstractmethod
    async def events(self, run_id: str, after_sequence: int, limit: int) -> list[RunEvent]: ...

    @abc.abstractmethod
    async def phases_started(self, run_id: str) -> set[RunPhase]:
        """The phases whose PHASE_STARTED event the run has."""


@dataclass(frozen=True)
class ProjectProblem:
    """The project's ProblemSpec and WorldModel as the spec service has them (None: none yet)."""

    problem: ProblemCopy | None
    # The ProblemSpec has a constraint or a goal; the WorldModel an item in some section.
    has_problem_spec: bool
    has_world_model: bool


@dataclass(frozen=True)
class ChatTarget:
    project_id: str
    # The run's chat session, or "": the project's latest setup session (created when there is none).
    chat_session_id: str


class SpecService(Protocol):
    """The spec context: reads of the project, and the chat the run reports to. It starts no run."""

    async def project_exists(self, project_id: str) -> bool: ...

    async def problem(self, project_id: str) -> ProjectProblem:
        """The project's problem; an empty one (None, no spec, no model) when it has none, or when
        there is no such project (asked alongside ``project_exists``, which says which)."""
        ...

    async def chat_message(self, message_id: str) -> ChatMessage | None:
        """A message of the project's chat (a recommendation, a summary); None when there is no such message."""
        ...

    async def chat_session_project(self, chat_session_id: str) -> str | None:
        """The project of a chat session, None when there is no such session."""
        ...

    async def post_summary(self, target: ChatTarget, message_id: str, content: str, metadata: JsonObject) -> str:
        """Post (once: ``message_id`` makes it idempotent) the run's summary (``metadata``: see
        ``domain.summary.summary_metadata``); returns the message id,
        or "" when there is no chat to post to (the project or its session is gone). Raises OSError
        while the service is away, ``SummaryRefused`` when it will not take this summary."""
        ...

    async def auto_snapshot_failed_runs(self, project_id: str) -> bool:
        """The project's setting; False for a project that is gone. Raises OSError while the service is away."""
        ...


@dataclass(frozen=True)
class ModelCall:
    purpose: str
    provider: str
    model: str
    system: str
    prompt: str
    schema_name: str
    schema: JsonObject
    # The run, the phase, the pair: a call already answered is not paid for again.
    idempotency_key: str
    project_id: str
    run_id: str
    # Recorded replay: answered from that run's call with the same request (what is hashed: the
    # provider, the model, the messages, the schema; never the key or the ids above).
    replay_of_run_id: str = ""
    snapshot_test_id: str = ""
    # What the call may spend, re-asks included (its share of the run's budget); None: no limit.
    allowance: CallAllowance | None = None


@dataclass(frozen=True)
class ModelAnswer:
    structured: JsonObject
    llm_call_id: str
    tokens: int
    # What the call cost now: 0 when answered from a stored call; None when unpriced.
    usd: float | None
    replayed: bool


class ModelCallFailed(Exception):
    """The model gave no valid answer (after the agent service's retries); nothing was invented."""

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        raw_answer: str = "",
        llm_call_id: str = "",
        tokens: int = 0,
        usd: float = 0.0,
    ) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.raw_answer = raw_answer
        self.llm_call_id = llm_call_id
        # What the failed call's attempts cost (invalid answers and their re-asks are paid too).
        self.tokens = tokens
        self.usd = usd


class ModelsUnavailable(Unavailable):
    """The agent service did not answer (away longer than the run waits, or past the call's deadline):
    not the model's failure, so no evaluation fails for it. The run waits and goes on from what it
    stored; asked again under the same idempotency key, a call it had made is not paid twice."""

    default_reason = "AGENT_UNAVAILABLE"


class CallNotRecorded(ModelCallFailed):
    """A recorded replay asked a call the replayed run never made (the same request is the same call)."""

    def __init__(self, reason: str, message: str, *, request_hash: str) -> None:
        super().__init__(reason, message)
        self.request_hash = request_hash


class Models(Protocol):
    """The agent service: the only way to a model."""

    async def complete(self, call: ModelCall) -> ModelAnswer:
        """Raises ``ModelCallFailed`` when no valid answer came (``CallNotRecorded`` for a replay's miss),
        ``ModelsUnavailable`` when the agent service did not answer at all."""
        ...

    async def answer_text(self, llm_call_id: str) -> str | None:
        """The answer one model call wrote, whole; None when it is not had (no such call, the
        agent service away or refusing): a best-effort read, waiting a few seconds at most."""
        ...

    async def prices(self, models: Sequence[tuple[str, str]]) -> Pricing:
        """The models' prices, in the order asked (unpriced: unknown, not free), and how many times
        the agent service asks a structured call at most (what a call's re-asks may cost)."""
        ...

    async def usage(self, run_id: str) -> LlmUsage: ...

    async def settled_usage(self, run_id: str) -> LlmUsage:
        """The run's usage once none of its calls is still being made. A runner that died may have
        left some in flight in the agent service, which records (and the next runner's asks of
        their keys replay) them only when they end: read sooner, the budget would miss their cost."""
        ...


class SummaryRefused(Exception):
    """The spec service answered, and will not take the summary (asking again would not change that)."""


class SnapshotRefused(Exception):
    """The snapshot service answered, and will not make the snapshot (asking again would not change that)."""


class Snapshots(Protocol):
    """The snapshot context: the failure snapshots the run service makes of its own failed runs."""

    async def create(self, snapshot: FailureSnapshot) -> None:
        """Make it, once: a name already taken is done. Raises OSError while the service is away, else
        ``SnapshotRefused``."""
        ...


class TraceStore(Protocol):
    """Where finished spans can be read back by trace id: the local trace files, or nowhere (OTLP)."""

    async def find(self, trace_ids: Collection[str]) -> SpanSearch: ...
