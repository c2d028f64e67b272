"""In-memory fakes of the agent context's ports: repositories, unit of work, leases, model provider, workspaces.

Every unit of work a ``FakeUowFactory`` makes shares one ``FakeAgentState``; a transactional
unit snapshots it on enter and puts the snapshot back on rollback, so uncommitted writes vanish
the way they do in Postgres. A unit given a lease is fenced by it, as the SQL one is.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from crucible_agent.adapters.providers.base import LlmProvider
from crucible_agent.domain.errors import ProviderError
from crucible_agent.domain.model import (
    AgentRun,
    AgentRunStatus,
    Candidate,
    Checkpoint,
    Correlation,
    Decision,
    Delta,
    LlmCall,
    LlmCallStatus,
    LlmRequest,
    ModelUsage,
    ProviderResponse,
    SubagentError,
    TextSink,
    UsageDimension,
    UsageGroups,
    UsageReport,
    UsageTotals,
)
from crucible_agent.domain.sprints import (
    NewSprintEvent,
    Phase,
    PhaseAttempt,
    Sprint,
    SprintEvent,
    SprintStatus,
    Trigger,
)
from crucible_agent.service_layer.ports import AbstractAgentRepository, AbstractSprintRepository, Claims
from crucible_agent.service_layer.unit_of_work import AGENT_RUN, AbstractUnitOfWork
from crucible_common.leases import Lease, LeaseLost
from crucible_common.updates import Waiter

JUDGE_SCHEMA_NAME = "judge_decision"


@dataclass
class StoredRun:
    run: AgentRun
    driver: str
    lease_owner: str = ""
    lease_token: int = 0
    lease_until: datetime | None = None

    @property
    def live(self) -> bool:
        return self.run.status is AgentRunStatus.RUNNING and self.driver == "agent_runner"


@dataclass
class StoredSprint:
    sprint: Sprint
    lease_owner: str = ""
    lease_token: int = 0
    lease_until: datetime | None = None

    @property
    def live(self) -> bool:
        return self.sprint.status is SprintStatus.ACTIVE


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
    # Keyed calls in flight: key -> (owner, expires at).
    claims: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    # key → the run its claim was taken for
    claimed_for: dict[str, str] = field(default_factory=dict)
    decisions: dict[str, Decision] = field(default_factory=dict)
    checkpoints: dict[str, list[Checkpoint]] = field(default_factory=dict)
    sprints: dict[str, StoredSprint] = field(default_factory=dict)
    attempts: dict[tuple[str, Phase, int], PhaseAttempt] = field(default_factory=dict)
    events: list[SprintEvent] = field(default_factory=list)
    commits: int = 0

    def leased(self, resource: str) -> dict[str, StoredRun] | dict[str, StoredSprint]:
        return self.runs if resource == AGENT_RUN else self.sprints

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

    async def get_llm_call(self, llm_call_id: str) -> LlmCall | None:
        return next((c for c in self.state.llm_calls if c.id == llm_call_id), None)

    def _answered(self, idempotency_keys: Sequence[str]) -> dict[str, LlmCall]:
        found: dict[str, LlmCall] = {}
        for call in sorted(self.state.llm_calls, key=lambda c: c.created_at):
            if call.idempotency_key in idempotency_keys and call.answered:
                found.setdefault(call.idempotency_key, call)
        return found

    async def claim_unanswered(
        self, idempotency_keys: Sequence[str], tokens: Sequence[str], run_ids: Sequence[str], seconds: float
    ) -> Claims:
        now = datetime.now(UTC)
        won = set()
        for key, token, run_id in zip(idempotency_keys, tokens, run_ids, strict=True):
            holder = self.state.claims.get(key)
            if holder is None or holder[1] < now:
                self.state.claims[key] = (token, now + timedelta(seconds=seconds))
                self.state.claimed_for[key] = run_id
                won.add(token)
        return Claims(frozenset(won), self._answered(idempotency_keys))

    async def calls_in_flight(self, run_id: str) -> int:
        now = datetime.now(UTC)
        answered = self._answered(list(self.state.claims))
        return sum(
            1
            for key, (_, expires) in self.state.claims.items()
            if self.state.claimed_for.get(key) == run_id and expires >= now and key not in answered
        )

    async def renew_claims(self, idempotency_keys: Sequence[str], tokens: Sequence[str], seconds: float) -> set[str]:
        held = {
            (k, t) for k, t in zip(idempotency_keys, tokens, strict=True) if self.state.claims.get(k, ("",))[0] == t
        }
        for key, token in held:
            self.state.claims[key] = (token, datetime.now(UTC) + timedelta(seconds=seconds))
        return {token for _, token in held}

    async def drop_lapsed_claims(self) -> None:
        now = datetime.now(UTC)
        self.state.claims = {k: v for k, v in self.state.claims.items() if v[1] >= now}

    async def release_claims(self, idempotency_keys: Sequence[str], tokens: Sequence[str]) -> None:
        for key, token in zip(idempotency_keys, tokens, strict=True):
            if self.state.claims.get(key, ("",))[0] == token:
                del self.state.claims[key]

    async def run_calls(self, run_id: str, request_hash: str) -> list[LlmCall]:
        mine = [
            c
            for c in self.state.llm_calls
            if run_id and (c.correlation.run_id, c.request_hash) == (run_id, request_hash)
        ]
        return sorted(mine, key=lambda c: (c.created_at, c.attempt))

    async def usage(
        self, filter_: Correlation, group_by: tuple[UsageDimension, ...] = (), group_limit: int = 50
    ) -> UsageReport:
        matching = [call for call in self.state.llm_calls if _matches(call.correlation, filter_)]
        groups: dict[tuple[str, str], list[LlmCall]] = {}
        for call in matching:
            groups.setdefault((call.provider, call.model), []).append(call)
        by_model = []
        for (provider, model), calls in sorted(groups.items()):
            totals = _totals(calls)
            by_model.append(ModelUsage(provider, model, totals, priced=totals.unpriced_calls == 0))
        grouped = []
        for dimension in group_by:
            keyed: dict[str, list[LlmCall]] = {}
            for call in matching:
                keyed.setdefault(getattr(call.correlation, dimension.correlation), []).append(call)
            ranked = sorted(
                ((key, _totals(calls)) for key, calls in keyed.items()), key=lambda g: (-g[1].usd, -g[1].calls, g[0])
            )
            grouped.append(UsageGroups(dimension, tuple(ranked[:group_limit]), len(ranked) > group_limit))
        return UsageReport(_totals(matching), by_model, tuple(grouped))

    async def get_recording(self, key: str, request_hash: str) -> ProviderResponse | None:
        stored = self.state.recordings.get((key, request_hash))
        return stored.response if stored else None

    async def save_recording(self, key: str, request_hash: str, provider: str, response: ProviderResponse) -> None:
        # Like ON CONFLICT DO NOTHING: the first answer recorded stays.
        self.state.recordings.setdefault((key, request_hash), StoredRecording(provider, response))

    # ------------------------------------------------------------ agent runs

    async def add_run(self, run: AgentRun, driver: str) -> None:
        if run.id in self.state.runs:
            raise ValueError(f"duplicate agent run id {run.id}")
        self.state.runs[run.id] = StoredRun(run, driver)

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
    def __init__(self, state: FakeAgentState) -> None:
        self.state = state

    async def add(self, sprint: Sprint) -> None:
        if sprint.id in self.state.sprints:
            raise ValueError(f"duplicate sprint id {sprint.id}")
        self.state.sprints[sprint.id] = StoredSprint(sprint)

    async def get(self, sprint_id: str, *, for_update: bool = False) -> Sprint | None:
        stored = self.state.sprints.get(sprint_id)
        if stored is None:
            return None
        attempts = [a for (sid, _, _), a in self.state.attempts.items() if sid == sprint_id]
        return replace(stored.sprint, phases=sorted(attempts, key=lambda a: (a.started_at, a.attempt)))

    async def list_sprints(self, spec_id: str, limit: int, after: tuple[datetime, str] | None) -> list[Sprint]:
        rows = [s.sprint for s in self.state.sprints.values() if not spec_id or s.sprint.spec.spec_id == spec_id]
        if after is not None:
            rows = [r for r in rows if (r.created_at, r.id) < after]
        return sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)[:limit]

    async def start(self, sprint_id: str, trigger: Trigger) -> None:
        stored = self.state.sprints[sprint_id]
        stored.sprint = replace(stored.sprint, status=SprintStatus.ACTIVE, trigger=trigger, updated_at=trigger.at)

    async def set_phase(self, sprint_id: str, phase: Phase, at: datetime) -> None:
        stored = self.state.sprints[sprint_id]
        stored.sprint = replace(stored.sprint, current_phase=phase, updated_at=at)

    async def finish(self, sprint_id: str, status: SprintStatus, failure_reason: str, at: datetime) -> None:
        stored = self.state.sprints[sprint_id]
        stored.sprint = replace(stored.sprint, status=status, failure_reason=failure_reason, updated_at=at)
        stored.lease_until = None

    async def save_attempt(self, attempt: PhaseAttempt) -> None:
        self.state.attempts[(attempt.sprint_id, attempt.phase, attempt.attempt)] = attempt

    async def add_event(self, sprint_id: str, event: NewSprintEvent, at: datetime) -> int:
        sequence = len(self.state.events) + 1
        self.state.events.append(SprintEvent(sequence, sprint_id, event.type, event.data, at))
        return sequence

    async def events(self, sprint_id: str, after_sequence: int, limit: int) -> list[SprintEvent]:
        return [e for e in self.state.events if e.sprint_id == sprint_id and e.sequence > after_sequence][:limit]


class FakeUnitOfWork(AbstractUnitOfWork):
    def __init__(
        self,
        state: FakeAgentState,
        *,
        read_only: bool = False,
        single_statement: bool = False,
        lease: Lease | None = None,
    ) -> None:
        self.state = state
        self.repo = FakeAgentRepository(state)
        self.sprints = FakeSprintRepository(state)
        self._read_only = read_only
        self._lease = lease
        self._transactional = not (read_only or single_statement) or lease is not None
        self._snapshot: FakeAgentState | None = None
        self.committed = False

    async def __aenter__(self) -> Self:
        if self._lease is not None:
            stored = self.state.leased(self._lease.resource).get(self._lease.id)
            if stored is None or (stored.lease_owner, stored.lease_token) != (self._lease.owner, self._lease.token):
                raise LeaseLost(self._lease)
        if self._transactional:
            self._snapshot = self.state.snapshot()
        return self

    async def take_lease(self, resource: str, id_: str, owner: str) -> Lease:
        stored = self.state.leased(resource)[id_]
        stored.lease_owner = owner
        stored.lease_token += 1
        stored.lease_until = datetime.now(UTC) + LEASE_FOR
        return Lease(resource, id_, owner, stored.lease_token)

    async def revoke_lease(self, resource: str, id_: str) -> None:
        stored = self.state.leased(resource)[id_]
        stored.lease_owner = ""
        stored.lease_token += 1
        stored.lease_until = None

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

    def __call__(
        self, *, read_only: bool = False, single_statement: bool = False, lease: Lease | None = None
    ) -> FakeUnitOfWork:
        uow = FakeUnitOfWork(self.state, read_only=read_only, single_statement=single_statement, lease=lease)
        self.made.append(uow)
        return uow


LEASE_FOR = timedelta(seconds=15)


class FakeLeaseStore:
    """``LeaseStore`` over the fake state: claims lapsed leases of live work, renews held ones."""

    def __init__(self, state: FakeAgentState, resource: str, owner: str) -> None:
        self.state = state
        self.resource = resource
        self.owner = owner
        self.renewals = 0

    async def claim_stale(self, limit: int) -> list[Lease]:
        now = datetime.now(UTC)
        rows = self.state.leased(self.resource)
        stale = [
            (id_, stored)
            for id_, stored in rows.items()
            if stored.live and (stored.lease_until is None or stored.lease_until < now)
        ][:limit]
        leases = []
        for id_, stored in stale:
            stored.lease_owner = self.owner
            stored.lease_token += 1
            stored.lease_until = now + LEASE_FOR
            leases.append(Lease(self.resource, id_, self.owner, stored.lease_token))
        return leases

    async def renew(self, lease: Lease) -> bool:
        self.renewals += 1
        stored = self.state.leased(self.resource).get(lease.id)
        if stored is None or not stored.live or (stored.lease_owner, stored.lease_token) != (lease.owner, lease.token):
            return False
        stored.lease_until = datetime.now(UTC) + LEASE_FOR
        return True


# ---------------------------------------------------------------- model provider


def answer(text: str, model: str = "gpt-4o-mini", input_tokens: int = 10, output_tokens: int = 5) -> ProviderResponse:
    return ProviderResponse(text, (), "stop", model, input_tokens, output_tokens)


@dataclass(frozen=True)
class CutShort:
    """A streamed answer that breaks with ``error`` after ``text`` (not streamed, it is just the error)."""

    text: str
    error: ProviderError


class Deltas(list[Delta]):
    """A delta sink that keeps what it is given."""

    async def __call__(self, delta: Delta) -> None:
        self.append(delta)


def pieces(text: str, size: int = 4) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


class FakeProvider(LlmProvider):
    """Answers call number ``i`` with ``script[i]`` (raising it when it is an error); past the script,
    ``always`` is raised when set, a judge request gets a valid choice, any other a default answer.

    Streamed, the answer's text comes in ``pieces``, the event loop turning between them as it would
    between network reads.
    """

    def __init__(
        self,
        name: str,
        script: Sequence[ProviderResponse | ProviderError | CutShort] = (),
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
            if isinstance(scripted, CutShort):
                raise scripted.error
            if isinstance(scripted, ProviderError):
                raise scripted
            return scripted
        if self.always is not None:
            raise self.always
        if request.schema_name == JUDGE_SCHEMA_NAME:
            return answer(self._judge_text(request), request.model)
        return answer(f"{self.name} answer {index}", request.model)

    async def stream(self, request: LlmRequest, on_text: TextSink) -> ProviderResponse:
        index = len(self.requests)
        scripted = self.script[index] if index < len(self.script) else None
        if isinstance(scripted, CutShort):
            await self._write(scripted.text, on_text)
        response = await self.complete(request)
        await self._write(response.text, on_text)
        return response

    async def _write(self, text: str, on_text: TextSink) -> None:
        for piece in pieces(text):
            await asyncio.sleep(0)
            await on_text(piece)

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


def _totals(calls: list[LlmCall]) -> UsageTotals:
    billed = {LlmCallStatus.SUCCEEDED, LlmCallStatus.INVALID_OUTPUT}
    return UsageTotals(
        sum(c.input_tokens for c in calls),
        sum(c.output_tokens for c in calls),
        float(sum(c.usd or 0.0 for c in calls)),
        len(calls),
        sum(1 for c in calls if c.status in billed and c.usd is None),
        sum(1 for c in calls if c.status is LlmCallStatus.FAILED),
        sum(1 for c in calls if c.status is LlmCallStatus.REPLAYED),
        sum(1 for c in calls if c.status is LlmCallStatus.CANCELLED),
    )


class _Unnotified:
    async def wait(self, timeout: float) -> bool:
        await asyncio.sleep(min(timeout, 0.01))
        return False

    async def pause(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class NoUpdates:
    """Updates that never notify: a watcher reads again after each (short) wait, as with no LISTEN."""

    @contextlib.contextmanager
    def subscribe(self, key: str) -> Iterator[Waiter]:
        yield _Unnotified()
