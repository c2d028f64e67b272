"""In-memory stand-ins for the spec repository and unit of work, faithful to the SQL ones."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from crucible.agent.v1 import sprint_service_pb2 as sprint_pb
from crucible_common.errors import CrucibleError
from crucible_common.updates import FeedBroken
from crucible_spec.domain.architect import Blocker, Preflight
from crucible_spec.domain.errors import RunServiceUnavailable
from crucible_spec.domain.model import (
    ChatMessage,
    ChatSession,
    PlanningInterview,
    ProblemSpec,
    Project,
    ProvenanceEntry,
    RunMode,
    Spec,
    WorldModel,
)
from crucible_spec.service_layer.architect import (
    ArchitectAnswer,
    ArchitectModel,
    ArchitectRequest,
    ReplyDeltaSink,
    RunAdvisor,
    RunDigest,
)
from crucible_spec.service_layer.chat_turns import TurnDeps
from crucible_spec.service_layer.ports import AbstractSpecRepository, ProvenanceSubject
from crucible_spec.service_layer.sprints import SprintRequest
from crucible_spec.service_layer.unit_of_work import AbstractUnitOfWork

Keyed = TypeVar("Keyed", Project, ChatSession, Spec)


class FakeIntegrityError(Exception):
    """A write the database would refuse (primary key, unique or foreign key constraint)."""


@dataclass
class FakeTables:
    projects: dict[str, Project] = field(default_factory=dict)
    chat_sessions: dict[str, ChatSession] = field(default_factory=dict)
    message_counts: dict[str, int] = field(default_factory=dict)
    chat_messages: list[ChatMessage] = field(default_factory=list)
    problem_specs: dict[str, ProblemSpec] = field(default_factory=dict)
    world_models: dict[str, WorldModel] = field(default_factory=dict)
    provenance: list[tuple[ProvenanceSubject, ProvenanceEntry]] = field(default_factory=list)
    specs: dict[str, Spec] = field(default_factory=dict)


class FakeSpecRepository(AbstractSpecRepository):
    def __init__(self) -> None:
        self.tables = FakeTables()

    def snapshot(self) -> FakeTables:
        return copy.deepcopy(self.tables)

    def restore(self, tables: FakeTables) -> None:
        self.tables = copy.deepcopy(tables)

    # ------------------------------------------------------------ projects

    async def add_project(self, project: Project) -> None:
        if project.id in self.tables.projects:
            raise FakeIntegrityError(f"duplicate project id {project.id}")
        self.tables.projects[project.id] = project

    async def get_project(self, project_id: str, *, for_update: bool = False) -> Project | None:
        return self.tables.projects.get(project_id)

    async def list_projects(
        self, limit: int, after: tuple[datetime, str] | None, *, include_replays: bool = False
    ) -> list[Project]:
        projects = [p for p in self.tables.projects.values() if include_replays or not p.replay_of_snapshot_id]
        return _newest_first(projects, limit, after)

    async def save_project(self, project: Project) -> None:
        stored = self.tables.projects.get(project.id)
        if stored is not None:
            self.tables.projects[project.id] = replace(
                stored,
                title=project.title,
                description=project.description,
                updated_at=project.updated_at,
                auto_snapshot_failed_runs=project.auto_snapshot_failed_runs,
            )

    async def delete_project(self, project_id: str) -> bool:
        t = self.tables
        if t.projects.pop(project_id, None) is None:
            return False
        # Everything below a project goes with it, as ON DELETE CASCADE does.
        sessions = {s.id for s in t.chat_sessions.values() if s.project_id == project_id}
        for session_id in sessions:
            del t.chat_sessions[session_id]
            del t.message_counts[session_id]
        t.chat_messages = [m for m in t.chat_messages if m.chat_session_id not in sessions]
        t.problem_specs.pop(project_id, None)
        t.world_models.pop(project_id, None)
        t.provenance = [(s, e) for s, e in t.provenance if e.project_id != project_id]
        return True

    # ------------------------------------------------------------ chat

    async def add_chat_session(self, session: ChatSession) -> None:
        if session.id in self.tables.chat_sessions:
            raise FakeIntegrityError(f"duplicate chat session id {session.id}")
        if session.project_id not in self.tables.projects:
            raise FakeIntegrityError(f"no project {session.project_id}")
        self.tables.chat_sessions[session.id] = session
        self.tables.message_counts[session.id] = 0

    async def get_chat_session(self, chat_session_id: str) -> ChatSession | None:
        return self.tables.chat_sessions.get(chat_session_id)

    async def list_chat_sessions(
        self, project_id: str, limit: int, after: tuple[datetime, str] | None
    ) -> list[ChatSession]:
        rows = (s for s in self.tables.chat_sessions.values() if s.project_id == project_id)
        return _newest_first(rows, limit, after)

    async def next_message_sequence(self, chat_session_id: str, at: datetime) -> int | None:
        session = self.tables.chat_sessions.get(chat_session_id)
        if session is None:
            return None
        self.tables.message_counts[chat_session_id] += 1
        self.tables.chat_sessions[chat_session_id] = replace(session, updated_at=at)
        return self.tables.message_counts[chat_session_id]

    async def add_chat_message(self, message: ChatMessage) -> None:
        t = self.tables
        if message.chat_session_id not in t.chat_sessions:
            raise FakeIntegrityError(f"no chat session {message.chat_session_id}")
        for m in t.chat_messages:
            if m.id == message.id:
                raise FakeIntegrityError(f"duplicate chat message id {message.id}")
            if (m.chat_session_id, m.sequence) == (message.chat_session_id, message.sequence):
                raise FakeIntegrityError(f"duplicate sequence {message.sequence}")
        t.chat_messages.append(replace(message, metadata=_jsonb(message.metadata)))

    async def get_chat_message(self, chat_message_id: str) -> ChatMessage | None:
        return next((m for m in self.tables.chat_messages if m.id == chat_message_id), None)

    async def list_chat_messages(self, chat_session_id: str, limit: int, after_sequence: int) -> list[ChatMessage]:
        rows = [
            m for m in self.tables.chat_messages if m.chat_session_id == chat_session_id and m.sequence > after_sequence
        ]
        rows.sort(key=lambda m: m.sequence)
        return copy.deepcopy(rows[:limit])

    # ------------------------------------------------------------ ProblemSpec / WorldModel

    async def get_problem_spec(self, project_id: str, *, for_update: bool = False) -> ProblemSpec | None:
        return self.tables.problem_specs.get(project_id)

    async def save_problem_spec(self, spec: ProblemSpec, *, is_new: bool) -> None:
        specs = self.tables.problem_specs
        if is_new:
            self._check_new_child(specs, spec.project_id, "ProblemSpec")
            specs[spec.project_id] = spec
        elif spec.project_id in specs:
            specs[spec.project_id] = replace(spec, created_at=specs[spec.project_id].created_at)

    async def get_world_model(self, project_id: str, *, for_update: bool = False) -> WorldModel | None:
        return copy.deepcopy(self.tables.world_models.get(project_id))

    async def save_world_model(self, model: WorldModel, *, is_new: bool) -> None:
        models = self.tables.world_models
        stored = replace(model, model_data=_jsonb(model.model_data))
        if is_new:
            self._check_new_child(models, model.project_id, "WorldModel")
            models[model.project_id] = stored
        elif model.project_id in models:
            models[model.project_id] = replace(stored, created_at=models[model.project_id].created_at)

    async def append_provenance(self, subject: ProvenanceSubject, entry: ProvenanceEntry) -> None:
        if subject not in ("problem_spec", "world_model"):
            raise FakeIntegrityError(f"unknown provenance subject {subject!r}")
        if entry.project_id not in self.tables.projects:
            raise FakeIntegrityError(f"no project {entry.project_id}")
        for s, e in self.tables.provenance:
            if e.id == entry.id:
                raise FakeIntegrityError(f"duplicate provenance id {entry.id}")
            if (e.project_id, s, e.version) == (entry.project_id, subject, entry.version):
                raise FakeIntegrityError(f"duplicate {subject} version {entry.version}")
        stored = replace(entry, changed_fields=tuple(entry.changed_fields), changes=_jsonb(entry.changes))
        self.tables.provenance.append((subject, stored))

    async def list_provenance(
        self, project_id: str, subject: ProvenanceSubject, limit: int, after_version: int
    ) -> list[ProvenanceEntry]:
        rows = [
            e
            for s, e in self.tables.provenance
            if e.project_id == project_id and s == subject and e.version > after_version
        ]
        rows.sort(key=lambda e: e.version)
        return copy.deepcopy(rows[:limit])

    # ------------------------------------------------------------ specs

    async def add_spec(self, spec: Spec) -> None:
        if spec.id in self.tables.specs:
            raise FakeIntegrityError(f"duplicate spec id {spec.id}")
        self.tables.specs[spec.id] = _stored_spec(spec)

    async def get_spec(self, spec_id: str, *, for_update: bool = False) -> Spec | None:
        return copy.deepcopy(self.tables.specs.get(spec_id))

    async def list_specs(self, limit: int, after: tuple[datetime, str] | None) -> list[Spec]:
        return copy.deepcopy(_newest_first(self.tables.specs.values(), limit, after))

    async def save_spec(self, spec: Spec) -> None:
        stored = self.tables.specs.get(spec.id)
        if stored is not None:
            self.tables.specs[spec.id] = replace(_stored_spec(spec), task=stored.task, created_at=stored.created_at)

    def _check_new_child(self, table: dict[str, Any], project_id: str, what: str) -> None:
        if project_id in table:
            raise FakeIntegrityError(f"project {project_id} already has a {what}")
        if project_id not in self.tables.projects:
            raise FakeIntegrityError(f"no project {project_id}")


class FakeUnitOfWork(AbstractUnitOfWork):
    """Commits keep the state; leaving the block rolls back to the last commit, like SQL."""

    def __init__(self, repo: FakeSpecRepository | None = None) -> None:
        self.repo: FakeSpecRepository = repo or FakeSpecRepository()
        self.committed = False
        self._last_commit = self.repo.snapshot()

    async def __aenter__(self) -> Self:
        self.committed = False
        self._last_commit = self.repo.snapshot()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.rollback()

    async def commit(self) -> None:
        self.committed = True
        self._last_commit = self.repo.snapshot()

    async def rollback(self) -> None:
        self.repo.restore(self._last_commit)


def _newest_first(rows: Iterable[Keyed], limit: int, after: tuple[datetime, str] | None) -> list[Keyed]:
    # Keyset order and cursor of the SQL repository: (created_at, id) descending.
    if after is not None:
        rows = [r for r in rows if (r.created_at, r.id) < after]
    return sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)[:limit]


def _jsonb(value: dict[str, Any]) -> dict[str, Any]:
    """What a JSONB column gives back: a fresh copy, tuples turned to lists."""
    result: dict[str, Any] = json.loads(json.dumps(value))
    return result


def _stored_spec(spec: Spec) -> Spec:
    """A spec as the JSONB ``artifacts`` column gives it back."""
    return replace(spec, planning=PlanningInterview.from_json(_jsonb(spec.artifacts())["planning"]))


class FakeFeed:
    def __init__(self) -> None:
        self.keys: asyncio.Queue[str | None] = asyncio.Queue()

    async def next(self) -> str:
        key = await self.keys.get()
        if key is None:
            raise FeedBroken("the fake feed broke")
        return key


class FakeChanges:
    """``Changes`` in memory: ``notify`` names a key to every feed, ``drop`` breaks them all, and
    once ``closed`` (the service stopping) following fails as it starts."""

    def __init__(self) -> None:
        self.feeds: list[FakeFeed] = []
        self.closed = False

    @contextlib.asynccontextmanager
    async def follow(self) -> AsyncIterator[FakeFeed]:
        if self.closed:
            raise FeedBroken("the fake listener was closed")
        feed = FakeFeed()
        self.feeds.append(feed)
        try:
            yield feed
        finally:
            self.feeds.remove(feed)

    def notify(self, key: str) -> None:
        for feed in self.feeds:
            feed.keys.put_nowait(key)

    def drop(self) -> None:
        for feed in self.feeds:
            feed.keys.put_nowait(None)


class FakeSprintCreator:
    """The agent service's sprints, as the spec service sees them: records what it was asked."""

    def __init__(self) -> None:
        self.requests: list[SprintRequest] = []

    async def create_sprint(self, request: SprintRequest) -> sprint_pb.Sprint:
        self.requests.append(request)
        return sprint_pb.Sprint(
            id=str(uuid.uuid4()),
            spec_id=request.spec_id,
            name=request.name,
            goal=request.goal,
            status=sprint_pb.SPRINT_STATUS_PLANNED,
        )


class ScriptedArchitect(ArchitectModel):
    def __init__(self, *answers: ArchitectAnswer | CrucibleError) -> None:
        self.answers = list(answers)
        self.requests: list[ArchitectRequest] = []

    async def answer(self, request: ArchitectRequest, on_delta: ReplyDeltaSink) -> ArchitectAnswer:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, CrucibleError):
            await on_delta("I will now", False)
            raise answer
        for i in range(0, len(answer.reply), 7):
            await on_delta(answer.reply[i : i + 7], False)
        return answer


class FakeAdvisor(RunAdvisor):
    """The run service's preflight as far as a chat turn can tell: blocked until both parts exist."""

    def __init__(self, repo: FakeSpecRepository, *, down: bool = False) -> None:
        self.repo = repo
        self.down = down
        self.preflights: list[tuple[RunMode | None, int, int]] = []
        self.runs: tuple[RunDigest, ...] = ()

    async def preflight(
        self, project_id: str, chat_session_id: str, mode: RunMode | None, num_candidates: int, num_scenarios: int
    ) -> Preflight:
        if self.down:
            raise RunServiceUnavailable("preflight: UNAVAILABLE")
        self.preflights.append((mode, num_candidates, num_scenarios))
        spec = self.repo.tables.problem_specs.get(project_id)
        world = self.repo.tables.world_models.get(project_id)
        blockers = []
        if spec is None or not (spec.constraints or spec.goals):
            blockers.append(Blocker("missing_problem_spec", "The project has no ProblemSpec yet: describe it."))
        if world is None:
            blockers.append(Blocker("missing_world_model", "The project has no WorldModel yet: describe it."))
        return Preflight(
            ready=not blockers,
            blockers=tuple(blockers),
            warnings=(),
            mode=mode or RunMode.FULL_SEARCH,
            parameters={"num_candidates": num_candidates or 5, "num_scenarios": num_scenarios or 5},
            prerequisites={
                "problem_spec": spec is not None,
                "world_model": world is not None,
                "seed_candidates": False,
            },
            notes=(),
            estimated_tokens=12_000,
            estimated_usd=0.0123,
            estimated_calls=14,
        )

    async def recent_runs(self, project_id: str, limit: int) -> tuple[RunDigest, ...]:
        return self.runs[:limit]


def turn_deps(repo: FakeSpecRepository, architect: ArchitectModel | None = None) -> TurnDeps:
    return TurnDeps(
        uow=lambda: FakeUnitOfWork(repo),
        read_uow=lambda: FakeUnitOfWork(repo),
        architect=architect or ScriptedArchitect(),
        runs=FakeAdvisor(repo),
    )
