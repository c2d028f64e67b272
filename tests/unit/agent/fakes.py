"""In-memory fakes of the agent context's ports: repository, unit of work, model provider.

Every unit of work a ``FakeUowFactory`` makes shares one ``FakeAgentState``; a transactional
unit snapshots it on enter and puts the snapshot back on rollback, so uncommitted writes vanish
the way they do in Postgres.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from crucible_agent.adapters.providers.base import LlmProvider
from crucible_agent.adapters.repository import AbstractAgentRepository
from crucible_agent.adapters.sprint_repository import AbstractSprintRepository
from crucible_agent.domain.errors import ProviderError
from crucible_agent.domain.model import (
    AgentRun,
    AgentRunStatus,
    Candidate,
    Checkpoint,
    Correlation,
    Decision,
    JsonObject,
    LlmCall,
    LlmCallStatus,
    LlmRequest,
    ModelUsage,
    ProviderResponse,
    SubagentError,
    UsageReport,
    UsageTotals,
)
from crucible_agent.domain.sprints import (
    Phase,
    PhaseAttempt,
    Sprint,
    SprintEvent,
    SprintStatus,
    Trigger,
)
from crucible_agent.service_layer.unit_of_work import AbstractUnitOfWork

JUDGE_SCHEMA_NAME = "judge_decision"


@dataclass
class StoredRun:
    run: AgentRun
    lease_owner: str
    lease_until: datetime | None
    driver: str


@dataclass
class StoredRecording:
    provider: str
    response: ProviderResponse


@dataclass
class FakeAgentState:
    llm_calls: list[LlmCall] = field(default_factory=list)
    recordings: dict[tuple[str, str], StoredRecording] = field(default_factory=dict)
    runs: dict[str, StoredRun] = field(default_factory=dict)
    candidates: dict[str, list[Candidate]] = field(default_factory=dict)
    errors: dict[str, list[tuple[datetime, SubagentError]]] = field(default_factory=dict)
    decisions: dict[str, Decision] = field(default_factory=dict)
    checkpoints: dict[str, list[Checkpoint]] = field(default_factory=dict)
    commits: int = 0

    def snapshot(self) -> FakeAgentState:
        return copy.deepcopy(self)

    def restore(self, snapshot: FakeAgentState) -> None:
        commits = self.commits
        for f in dataclasses.fields(self):
            setattr(self, f.name, copy.deepcopy(getattr(snapshot, f.name)))
        self.commits = commits


def _matches(correlation: Correlation, filter_: Correlation) -> bool:
    return all(not value or getattr(correlation, name) == value for name, value in vars(filter_).items())


class FakeAgentRepository(AbstractAgentRepository):
    def __init__(self, state: FakeAgentState) -> None:
        self.state = state

    # ------------------------------------------------------------ model calls

    async def add_llm_calls(self, calls: list[LlmCall]) -> None:
        self.state.llm_calls.extend(calls)

    async def list_llm_calls(
        self, filter_: Correlation, limit: int, after: tuple[datetime, str] | None
    ) -> list[LlmCall]:
        rows = [c for c in self.state.llm_calls if _matches(c.correlation, filter_)]
        if after is not None:
            rows = [c for c in rows if (c.created_at, c.id) < after]
        rows.sort(key=lambda c: (c.created_at, c.id), reverse=True)
        return rows[:limit]

    async def usage(self, filter_: Correlation) -> UsageReport:
        billed = {LlmCallStatus.SUCCEEDED, LlmCallStatus.INVALID_OUTPUT}
        groups: dict[tuple[str, str], list[LlmCall]] = {}
        for call in self.state.llm_calls:
            if _matches(call.correlation, filter_):
                groups.setdefault((call.provider, call.model), []).append(call)
        by_model = []
        for (provider, model), calls in sorted(groups.items()):
            unpriced = sum(1 for c in calls if c.status in billed and c.usd is None)
            totals = UsageTotals(
                sum(c.input_tokens for c in calls),
                sum(c.output_tokens for c in calls),
                float(sum(c.usd or 0.0 for c in calls)),
                len(calls),
                unpriced,
                sum(1 for c in calls if c.status is LlmCallStatus.FAILED),
                sum(1 for c in calls if c.status is LlmCallStatus.REPLAYED),
            )
            by_model.append(ModelUsage(provider, model, totals, priced=unpriced == 0))
        total = UsageTotals(
            sum(m.usage.input_tokens for m in by_model),
            sum(m.usage.output_tokens for m in by_model),
            sum(m.usage.usd for m in by_model),
            sum(m.usage.calls for m in by_model),
            sum(m.usage.unpriced_calls for m in by_model),
            sum(m.usage.failed_calls for m in by_model),
            sum(m.usage.replayed_calls for m in by_model),
        )
        return UsageReport(total, by_model)

    async def get_recording(self, key: str, request_hash: str) -> ProviderResponse | None:
        stored = self.state.recordings.get((key, request_hash))
        return stored.response if stored else None

    async def save_recording(self, key: str, request_hash: str, provider: str, response: ProviderResponse) -> None:
        # Like ON CONFLICT DO NOTHING: the first answer recorded stays.
        self.state.recordings.setdefault((key, request_hash), StoredRecording(provider, response))

    # ------------------------------------------------------------ agent runs

    async def add_run(
        self, run: AgentRun, lease_owner: str, lease_until: datetime | None, driver: str = "agent_runner"
    ) -> None:
        if run.id in self.state.runs:
            raise ValueError(f"duplicate agent run id {run.id}")
        self.state.runs[run.id] = StoredRun(run, lease_owner, lease_until, driver)

    async def renew_lease(self, run_id: str, owner: str, until: datetime) -> bool:
        stored = self.state.runs.get(run_id)
        if stored is None or stored.lease_owner != owner or stored.run.status is not AgentRunStatus.RUNNING:
            return False
        stored.lease_until = until
        return True

    async def claim_stale_runs(self, owner: str, until: datetime, limit: int) -> list[AgentRun]:
        now = datetime.now(UTC)
        stale = sorted(
            (
                s
                for s in self.state.runs.values()
                if s.run.status is AgentRunStatus.RUNNING
                and s.driver == "agent_runner"
                and (s.lease_until is None or s.lease_until < now)
            ),
            key=lambda s: s.run.created_at,
        )[:limit]
        for s in stale:
            s.lease_owner = owner
            s.lease_until = until
        return [s.run for s in stale]

    async def get_run(self, run_id: str, *, for_update: bool = False) -> AgentRun | None:
        stored = self.state.runs.get(run_id)
        return stored.run if stored else None

    async def list_runs(self, filter_: Correlation, limit: int, after: tuple[datetime, str] | None) -> list[AgentRun]:
        runs = [s.run for s in self.state.runs.values() if _matches(s.run.correlation, filter_)]
        if after is not None:
            runs = [r for r in runs if (r.created_at, r.id) < after]
        runs.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return runs[:limit]

    async def finish_run(self, run_id: str, status: AgentRunStatus, failure_reason: str, at: datetime) -> None:
        stored = self.state.runs.get(run_id)
        if stored is None:
            return
        stored.run = replace(stored.run, status=status, failure_reason=failure_reason, updated_at=at)
        stored.lease_until = None

    async def add_candidate(self, candidate: Candidate) -> None:
        self.state.candidates.setdefault(candidate.agent_run_id, []).append(candidate)

    async def add_subagent_error(self, error: SubagentError, at: datetime) -> None:
        self.state.errors.setdefault(error.agent_run_id, []).append((at, error))

    async def set_decision(self, decision: Decision, at: datetime) -> None:
        if decision.agent_run_id in self.state.decisions:
            raise ValueError(f"agent run {decision.agent_run_id} already has a decision")
        self.state.decisions[decision.agent_run_id] = decision

    async def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        existing = self.state.checkpoints.setdefault(checkpoint.agent_run_id, [])
        if any(cp.sequence == checkpoint.sequence for cp in existing):
            raise ValueError(f"duplicate checkpoint sequence {checkpoint.sequence}")
        existing.append(checkpoint)

    async def next_checkpoint_sequence(self, run_id: str) -> int:
        return max((cp.sequence for cp in self.state.checkpoints.get(run_id, [])), default=0) + 1

    async def candidates(self, run_id: str) -> list[Candidate]:
        return sorted(self.state.candidates.get(run_id, []), key=lambda c: (c.created_at, c.name))

    async def subagent_errors(self, run_id: str) -> list[SubagentError]:
        return [e for _, e in sorted(self.state.errors.get(run_id, []), key=lambda p: (p[0], p[1].name))]

    async def decision(self, run_id: str) -> Decision | None:
        return self.state.decisions.get(run_id)

    async def checkpoints(self, run_id: str, limit: int = 10_000, after_sequence: int = 0) -> list[Checkpoint]:
        rows = [cp for cp in self.state.checkpoints.get(run_id, []) if cp.sequence > after_sequence]
        return sorted(rows, key=lambda cp: cp.sequence)[:limit]


class FakeSprintRepository(AbstractSprintRepository):
    """Unused by the agent runner and the model calls; any use is a test bug."""

    async def add(self, sprint: Sprint) -> None:
        raise NotImplementedError

    async def get(self, sprint_id: str, *, for_update: bool = False) -> Sprint | None:
        raise NotImplementedError

    async def list_sprints(self, spec_id: str, limit: int, after: tuple[datetime, str] | None) -> list[Sprint]:
        raise NotImplementedError

    async def start(self, sprint_id: str, trigger: Trigger, owner: str, lease_until: datetime) -> None:
        raise NotImplementedError

    async def set_phase(self, sprint_id: str, phase: Phase, at: datetime) -> None:
        raise NotImplementedError

    async def finish(self, sprint_id: str, status: SprintStatus, failure_reason: str, at: datetime) -> None:
        raise NotImplementedError

    async def save_attempt(self, attempt: PhaseAttempt) -> None:
        raise NotImplementedError

    async def add_event(self, sprint_id: str, type_: str, data: JsonObject, at: datetime) -> int:
        raise NotImplementedError

    async def events(self, sprint_id: str, after_sequence: int, limit: int) -> list[SprintEvent]:
        raise NotImplementedError

    async def renew_lease(self, sprint_id: str, owner: str, until: datetime) -> bool:
        raise NotImplementedError

    async def claim_stale(self, owner: str, until: datetime, limit: int) -> list[Sprint]:
        raise NotImplementedError


class FakeUnitOfWork(AbstractUnitOfWork):
    def __init__(self, state: FakeAgentState, *, read_only: bool = False, single_statement: bool = False) -> None:
        self.state = state
        self.repo = FakeAgentRepository(state)
        self.sprints = FakeSprintRepository()
        self._read_only = read_only
        self._transactional = not (read_only or single_statement)
        self._snapshot: FakeAgentState | None = None
        self.committed = False

    async def __aenter__(self) -> Self:
        if self._transactional:
            self._snapshot = self.state.snapshot()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.rollback()
        self._snapshot = None

    async def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("commit() on a read-only unit of work")
        self.committed = True
        self.state.commits += 1
        if self._transactional:
            self._snapshot = self.state.snapshot()

    async def rollback(self) -> None:
        if self._snapshot is not None:
            self.state.restore(self._snapshot)


class FakeUowFactory:
    """Matches ``UowFactory``: every unit it makes works on the same in-memory state."""

    def __init__(self, state: FakeAgentState | None = None) -> None:
        self.state = state or FakeAgentState()
        self.made: list[FakeUnitOfWork] = []

    def __call__(self, *, read_only: bool = False, single_statement: bool = False) -> FakeUnitOfWork:
        uow = FakeUnitOfWork(self.state, read_only=read_only, single_statement=single_statement)
        self.made.append(uow)
        return uow


# ---------------------------------------------------------------- model provider


def answer(text: str, model: str = "gpt-4o-mini", input_tokens: int = 10, output_tokens: int = 5) -> ProviderResponse:
    return ProviderResponse(text, (), "stop", model, input_tokens, output_tokens)


class FakeProvider(LlmProvider):
    """Answers call number ``i`` with ``script[i]`` (raising it when it is an error); past the script,
    ``always`` is raised when set, a judge request gets a valid choice, any other a default answer.
    """

    def __init__(
        self,
        name: str,
        script: Sequence[ProviderResponse | ProviderError] = (),
        *,
        always: ProviderError | None = None,
        judge_choice: str | None = None,
    ) -> None:
        self.name = name
        self.script = list(script)
        self.always = always
        self.judge_choice = judge_choice
        self.requests: list[LlmRequest] = []
        self.closed = False

    async def complete(self, request: LlmRequest) -> ProviderResponse:
        index = len(self.requests)
        self.requests.append(request)
        if index < len(self.script):
            scripted = self.script[index]
            if isinstance(scripted, ProviderError):
                raise scripted
            return scripted
        if self.always is not None:
            raise self.always
        if request.schema_name == JUDGE_SCHEMA_NAME:
            return answer(self._judge_text(request), request.model)
        return answer(f"{self.name} answer {index}", request.model)

    def _judge_text(self, request: LlmRequest) -> str:
        choice = self.judge_choice
        if choice is None:
            assert request.json_schema is not None
            names: list[str] = request.json_schema["properties"]["choice"]["enum"]
            choice = names[-1]
        return json.dumps({"choice": choice, "rationale": f"{choice} answers the task best"})

    @property
    def judge_requests(self) -> list[LlmRequest]:
        return [r for r in self.requests if r.schema_name == JUDGE_SCHEMA_NAME]

    @property
    def subagent_requests(self) -> list[LlmRequest]:
        return [r for r in self.requests if r.schema_name != JUDGE_SCHEMA_NAME]

    async def close(self) -> None:
        self.closed = True
