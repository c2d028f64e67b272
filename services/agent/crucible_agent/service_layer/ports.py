"""What the agent context's use cases need from the outside world; ``adapters`` implement it, ``bootstrap`` wires it.

Repositories (SQL), the model providers (SDKs behind a retrying pool), sprint workspaces (files,
tools, the test sandbox) and lease stores. Unit tests give in-memory fakes of each.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from crucible_agent.domain.model import (
    AgentRun,
    AgentRunStatus,
    Candidate,
    Checkpoint,
    Correlation,
    Decision,
    DeltaSink,
    Fence,
    LlmCall,
    LlmRequest,
    ProviderAttempt,
    ProviderResponse,
    SubagentError,
    ToolSpec,
    UsageDimension,
    UsageReport,
)
from crucible_agent.domain.sprints import (
    Artifact,
    NewSprintEvent,
    Phase,
    PhaseAttempt,
    Sprint,
    SprintEvent,
    SprintStatus,
    TestReport,
    ToolResult,
    Trigger,
)
from crucible_common.leases import LeaseStore

__all__ = [
    "AbstractAgentRepository",
    "AbstractSprintRepository",
    "LeaseStore",
    "ModelProviders",
    "SprintWorkspace",
    "Workspaces",
]


@dataclass(frozen=True)
class Claims:
    """One round of claims: the tokens now holding their keys, and the keys already answered
    (their first answered call), claimed or not."""

    won: frozenset[str]
    answered: Mapping[str, LlmCall]


class AbstractAgentRepository(abc.ABC):
    """Model calls, recordings, and the agent-run aggregate (run, candidates, errors, decision, checkpoints)."""

    @abc.abstractmethod
    async def add_llm_calls(self, calls: list[LlmCall]) -> None: ...

    @abc.abstractmethod
    async def list_llm_calls(
        self, filter_: Correlation, limit: int, after: tuple[datetime, str] | None
    ) -> list[LlmCall]: ...

    @abc.abstractmethod
    async def get_llm_call(self, llm_call_id: str) -> LlmCall | None: ...

    @abc.abstractmethod
    async def claim_unanswered(
        self, idempotency_keys: Sequence[str], tokens: Sequence[str], run_ids: Sequence[str], seconds: float
    ) -> Claims:
        """Claim each key (distinct) for ``seconds`` under its token and for its call's run
        (``tokens`` and ``run_ids``, pairwise), unless
        another token holds it (a lapsed claim is free), and find the keys already answered, in
        one statement. Its reads may miss an answer committed while its claims waited; that is
        safe only because an answered call's claim is not dropped but left to lapse (``CallLog``):
        a key claimed here was not answered by the call that held it before."""

    @abc.abstractmethod
    async def calls_in_flight(self, run_id: str) -> int:
        """The run's keyed calls still being made: claimed, unanswered, and their claims not lapsed."""

    @abc.abstractmethod
    async def renew_claims(self, idempotency_keys: Sequence[str], tokens: Sequence[str], seconds: float) -> set[str]:
        """Extend these claims (key and token, pairwise) to ``seconds`` from now; the tokens still held."""

    @abc.abstractmethod
    async def drop_lapsed_claims(self) -> None:
        """Drop every claim that lapsed (its process died): nothing waits on it any more."""

    @abc.abstractmethod
    async def release_claims(self, idempotency_keys: Sequence[str], tokens: Sequence[str]) -> None:
        """Drop these claims (key and token, pairwise) of calls that ended unanswered. Never an
        answered call's: it is left to lapse, which ``claim_unanswered``'s one statement relies on."""

    @abc.abstractmethod
    async def run_calls(self, run_id: str, request_hash: str) -> list[LlmCall]:
        """Every stored attempt of the run (correlation ``run_id``) with this request, oldest first."""

    @abc.abstractmethod
    async def usage(
        self, filter_: Correlation, group_by: tuple[UsageDimension, ...] = (), group_limit: int = 50
    ) -> UsageReport: ...

    @abc.abstractmethod
    async def get_recording(self, key: str, request_hash: str) -> ProviderResponse | None: ...

    @abc.abstractmethod
    async def save_recording(self, key: str, request_hash: str, provider: str, response: ProviderResponse) -> None: ...

    @abc.abstractmethod
    async def add_run(self, run: AgentRun, driver: str) -> None:
        """``driver``: who continues the run after a crash (``agent_runner``, or ``sprint`` for a phase's tool loop)."""

    @abc.abstractmethod
    async def get_run(self, run_id: str, *, for_update: bool = False) -> AgentRun | None: ...

    @abc.abstractmethod
    async def list_runs(
        self, filter_: Correlation, limit: int, after: tuple[datetime, str] | None
    ) -> list[AgentRun]: ...

    @abc.abstractmethod
    async def finish_run(self, run_id: str, status: AgentRunStatus, failure_reason: str, at: datetime) -> None: ...

    @abc.abstractmethod
    async def add_candidate(self, candidate: Candidate) -> None: ...

    @abc.abstractmethod
    async def add_subagent_error(self, error: SubagentError, at: datetime) -> None: ...

    @abc.abstractmethod
    async def set_decision(self, decision: Decision, at: datetime) -> None: ...

    @abc.abstractmethod
    async def add_checkpoint(self, checkpoint: Checkpoint) -> None: ...

    @abc.abstractmethod
    async def next_checkpoint_sequence(self, run_id: str) -> int:
        """Callers hold the run row's lock (``get_run(for_update=True)``), so this cannot race."""

    @abc.abstractmethod
    async def candidates(self, run_id: str) -> list[Candidate]: ...

    @abc.abstractmethod
    async def subagent_errors(self, run_id: str) -> list[SubagentError]: ...

    @abc.abstractmethod
    async def decision(self, run_id: str) -> Decision | None: ...

    @abc.abstractmethod
    async def checkpoints(self, run_id: str, limit: int = 10_000, after_sequence: int = 0) -> list[Checkpoint]: ...


class AbstractSprintRepository(abc.ABC):
    """Sprints, their phase attempts and their event log."""

    @abc.abstractmethod
    async def add(self, sprint: Sprint) -> None: ...

    @abc.abstractmethod
    async def get(self, sprint_id: str, *, for_update: bool = False) -> Sprint | None: ...

    @abc.abstractmethod
    async def list_sprints(self, spec_id: str, limit: int, after: tuple[datetime, str] | None) -> list[Sprint]: ...

    @abc.abstractmethod
    async def start(self, sprint_id: str, trigger: Trigger) -> None: ...

    @abc.abstractmethod
    async def set_phase(self, sprint_id: str, phase: Phase, at: datetime) -> None: ...

    @abc.abstractmethod
    async def finish(self, sprint_id: str, status: SprintStatus, failure_reason: str, at: datetime) -> None: ...

    @abc.abstractmethod
    async def save_attempt(self, attempt: PhaseAttempt) -> None:
        """Insert or update one phase attempt."""

    @abc.abstractmethod
    async def add_event(self, sprint_id: str, event: NewSprintEvent, at: datetime) -> int: ...

    @abc.abstractmethod
    async def events(self, sprint_id: str, after_sequence: int, limit: int) -> list[SprintEvent]: ...


class ModelProviders(Protocol):
    """Every configured provider behind one door, with its concurrency limit and retries."""

    def check(self, provider: str, field: str = "provider") -> None:
        """Raise ``UnknownProvider`` / ``ProviderNotConfigured`` unless ``provider`` can be called."""

    async def call(
        self,
        request: LlmRequest,
        on_delta: DeltaSink | None = None,
        *,
        fence: Fence | None = None,
        attempts: list[ProviderAttempt] | None = None,
    ) -> list[ProviderAttempt]:
        """Every attempt until an answer or a final error; the last one holds the outcome.

        With ``on_delta``, each attempt streams the answer's text into it, numbered from 1.
        ``fence`` is awaited right before each attempt; what it raises ends the call unsent.
        ``attempts``, when given, is filled as they end (and returned): a caller cancelled
        meanwhile finds there those it made, the one it left in flight ``cancelled``.
        """
        ...


class SprintWorkspace(Protocol):
    """One sprint's files, the agent's tools over them, and the sandboxed test run.

    Refused paths raise ``InvalidArgument``; a missing artifact ``ArtifactNotFound``; a workspace
    that cannot be read ``Unavailable``.
    """

    async def write_file(self, path: str, content: str) -> None: ...

    async def artifacts(self) -> list[Artifact]:
        """Every file, in path order."""
        ...

    async def open_artifact(self, path: str) -> bytes: ...

    def tools(self, names: tuple[str, ...]) -> tuple[ToolSpec, ...]:
        """The named tools as the model sees them."""
        ...

    async def call_tool(self, name: str, arguments: object) -> ToolResult:
        """Never raises for the model's mistakes: a refusal is an error result it can read."""
        ...

    async def run_tests(self) -> TestReport: ...


class Workspaces(Protocol):
    def open(self, ref: str) -> SprintWorkspace: ...
