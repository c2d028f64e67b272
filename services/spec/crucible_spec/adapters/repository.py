"""Repositories of the spec context: Core ``select()``s in, domain objects out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from crucible_common.notify import notify
from crucible_spec.adapters import tables as t
from crucible_spec.domain.model import (
    Actor,
    ActorKind,
    ChatMessage,
    ChatSession,
    ChatSessionMode,
    Constraint,
    Goal,
    MessageRole,
    PlanningInterview,
    ProblemSpec,
    Project,
    ProvenanceAction,
    ProvenanceEntry,
    Resolution,
    RunMode,
    Spec,
    SpecStatus,
    WorldModel,
)
from crucible_spec.service_layer.ports import AbstractSpecRepository, ProvenanceSubject

# Names each project whose row changes, when its transaction commits (SpecService.WatchProjectChanges).
PROJECT_CHANGES_CHANNEL = "crucible_spec_projects"


class SqlSpecRepository(AbstractSpecRepository):
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    # ------------------------------------------------------------ projects

    async def add_project(self, project: Project) -> None:
        await self._conn.execute(
            insert(t.projects).values(
                id=project.id,
                title=project.title,
                description=project.description,
                created_at=project.created_at,
                updated_at=project.updated_at,
                auto_snapshot_failed_runs=project.auto_snapshot_failed_runs,
                replay_of_snapshot_id=project.replay_of_snapshot_id or None,
            )
        )

    async def get_project(self, project_id: str, *, for_update: bool = False) -> Project | None:
        query = select(t.projects).where(t.projects.c.id == project_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        return _project(row) if row else None

    async def list_projects(
        self, limit: int, after: tuple[datetime, str] | None, *, include_replays: bool = False
    ) -> list[Project]:
        # Newest first; the cursor is the (created_at, id) of the last row of the previous page.
        query = select(t.projects).order_by(t.projects.c.created_at.desc(), t.projects.c.id.desc()).limit(limit)
        if not include_replays:
            query = query.where(t.projects.c.replay_of_snapshot_id.is_(None))
        if after is not None:
            at, id_ = after
            query = query.where(
                or_(t.projects.c.created_at < at, and_(t.projects.c.created_at == at, t.projects.c.id < id_))
            )
        return [_project(row) for row in await self._conn.execute(query)]

    async def save_project(self, project: Project) -> None:
        await self._conn.execute(
            update(t.projects)
            .where(t.projects.c.id == project.id)
            .values(
                title=project.title,
                description=project.description,
                updated_at=project.updated_at,
                auto_snapshot_failed_runs=project.auto_snapshot_failed_runs,
            )
        )
        await notify(self._conn, PROJECT_CHANGES_CHANNEL, project.id)

    async def delete_project(self, project_id: str) -> bool:
        result = await self._conn.execute(delete(t.projects).where(t.projects.c.id == project_id))
        if not result.rowcount:
            return False
        await notify(self._conn, PROJECT_CHANGES_CHANNEL, project_id)
        return True

    # ------------------------------------------------------------ chat

    async def add_chat_session(self, session: ChatSession) -> None:
        await self._conn.execute(
            insert(t.chat_sessions).values(
                id=session.id,
                project_id=session.project_id,
                title=session.title,
                mode=session.mode.value,
                message_count=0,
                created_at=session.created_at,
                updated_at=session.updated_at,
            )
        )

    async def get_chat_session(self, chat_session_id: str) -> ChatSession | None:
        row = (await self._conn.execute(select(t.chat_sessions).where(t.chat_sessions.c.id == chat_session_id))).first()
        return _chat_session(row) if row else None

    async def list_chat_sessions(
        self, project_id: str, limit: int, after: tuple[datetime, str] | None
    ) -> list[ChatSession]:
        c = t.chat_sessions.c
        query = select(t.chat_sessions).where(c.project_id == project_id).order_by(c.created_at.desc(), c.id.desc())
        if after is not None:
            at, id_ = after
            query = query.where(or_(c.created_at < at, and_(c.created_at == at, c.id < id_)))
        return [_chat_session(row) for row in await self._conn.execute(query.limit(limit))]

    async def next_message_sequence(self, chat_session_id: str, at: datetime) -> int | None:
        # The row lock of this UPDATE orders concurrent appends to one session.
        result = await self._conn.execute(
            update(t.chat_sessions)
            .where(t.chat_sessions.c.id == chat_session_id)
            .values(message_count=t.chat_sessions.c.message_count + 1, updated_at=at)
            .returning(t.chat_sessions.c.message_count)
        )
        value = result.scalar_one_or_none()
        return int(value) if value is not None else None

    async def add_chat_message(self, message: ChatMessage) -> None:
        await self._conn.execute(
            insert(t.chat_messages).values(
                id=message.id,
                chat_session_id=message.chat_session_id,
                sequence=message.sequence,
                role=message.role.value,
                content=message.content,
                metadata=message.metadata,
                created_at=message.created_at,
            )
        )

    async def get_chat_message(self, chat_message_id: str) -> ChatMessage | None:
        row = (await self._conn.execute(select(t.chat_messages).where(t.chat_messages.c.id == chat_message_id))).first()
        return _chat_message(row) if row else None

    async def list_chat_messages(self, chat_session_id: str, limit: int, after_sequence: int) -> list[ChatMessage]:
        c = t.chat_messages.c
        query = (
            select(t.chat_messages)
            .where(c.chat_session_id == chat_session_id, c.sequence > after_sequence)
            .order_by(c.sequence)
            .limit(limit)
        )
        return [_chat_message(row) for row in await self._conn.execute(query)]

    # ------------------------------------------------------------ ProblemSpec / WorldModel

    async def get_problem_spec(self, project_id: str, *, for_update: bool = False) -> ProblemSpec | None:
        query = select(t.problem_specs).where(t.problem_specs.c.project_id == project_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        return _problem_spec(row) if row else None

    async def save_problem_spec(self, spec: ProblemSpec, *, is_new: bool) -> None:
        values: dict[str, Any] = spec.field_values() | {"version": spec.version, "updated_at": spec.updated_at}
        if is_new:
            await self._conn.execute(
                insert(t.problem_specs).values(project_id=spec.project_id, created_at=spec.created_at, **values)
            )
        else:
            await self._conn.execute(
                update(t.problem_specs).where(t.problem_specs.c.project_id == spec.project_id).values(**values)
            )

    async def get_world_model(self, project_id: str, *, for_update: bool = False) -> WorldModel | None:
        query = select(t.world_models).where(t.world_models.c.project_id == project_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        return _world_model(row) if row else None

    async def save_world_model(self, model: WorldModel, *, is_new: bool) -> None:
        values = {"model_data": model.model_data, "version": model.version, "updated_at": model.updated_at}
        if is_new:
            await self._conn.execute(
                insert(t.world_models).values(project_id=model.project_id, created_at=model.created_at, **values)
            )
        else:
            await self._conn.execute(
                update(t.world_models).where(t.world_models.c.project_id == model.project_id).values(**values)
            )

    async def append_provenance(self, subject: ProvenanceSubject, entry: ProvenanceEntry) -> None:
        await self._conn.execute(
            insert(t.provenance_entries).values(
                id=entry.id,
                project_id=entry.project_id,
                subject=subject,
                version=entry.version,
                actor_kind=entry.actor.kind.value,
                actor_id=entry.actor.id,
                action=entry.action.value,
                changed_fields=list(entry.changed_fields),
                reason=entry.reason,
                changes=entry.changes,
                created_at=entry.created_at,
                chat_message_id=entry.chat_message_id or None,
            )
        )

    async def list_provenance(
        self, project_id: str, subject: ProvenanceSubject, limit: int, after_version: int
    ) -> list[ProvenanceEntry]:
        c = t.provenance_entries.c
        query = (
            select(t.provenance_entries)
            .where(c.project_id == project_id, c.subject == subject, c.version > after_version)
            .order_by(c.version)
            .limit(limit)
        )
        return [_provenance(row) for row in await self._conn.execute(query)]

    # ------------------------------------------------------------ specs

    async def add_spec(self, spec: Spec) -> None:
        await self._conn.execute(
            insert(t.specs).values(
                id=spec.id,
                status=spec.status.value,
                task=spec.task,
                title=spec.title,
                artifacts=spec.artifacts(),
                created_at=spec.created_at,
                updated_at=spec.updated_at,
            )
        )

    async def get_spec(self, spec_id: str, *, for_update: bool = False) -> Spec | None:
        query = select(t.specs).where(t.specs.c.id == spec_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        return _spec(row) if row else None

    async def list_specs(self, limit: int, after: tuple[datetime, str] | None) -> list[Spec]:
        c = t.specs.c
        query = select(t.specs).order_by(c.created_at.desc(), c.id.desc()).limit(limit)
        if after is not None:
            at, id_ = after
            query = query.where(or_(c.created_at < at, and_(c.created_at == at, c.id < id_)))
        return [_spec(row) for row in await self._conn.execute(query)]

    async def save_spec(self, spec: Spec) -> None:
        await self._conn.execute(
            update(t.specs)
            .where(t.specs.c.id == spec.id)
            .values(status=spec.status.value, title=spec.title, artifacts=spec.artifacts(), updated_at=spec.updated_at)
        )


def _project(row: Row[Any]) -> Project:
    return Project(
        id=str(row.id),
        title=row.title,
        description=row.description,
        created_at=row.created_at,
        updated_at=row.updated_at,
        auto_snapshot_failed_runs=row.auto_snapshot_failed_runs,
        replay_of_snapshot_id=str(row.replay_of_snapshot_id or ""),
    )


def _chat_session(row: Row[Any]) -> ChatSession:
    return ChatSession(
        id=str(row.id),
        project_id=str(row.project_id),
        title=row.title,
        mode=ChatSessionMode(row.mode),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _chat_message(row: Row[Any]) -> ChatMessage:
    return ChatMessage(
        id=str(row.id),
        chat_session_id=str(row.chat_session_id),
        sequence=row.sequence,
        role=MessageRole(row.role),
        content=row.content,
        metadata=row.metadata,
        created_at=row.created_at,
    )


def _problem_spec(row: Row[Any]) -> ProblemSpec:
    return ProblemSpec(
        project_id=str(row.project_id),
        constraints=tuple(Constraint(c["name"], c["description"], c["weight"]) for c in row.constraints),
        goals=tuple(Goal(g["description"]) for g in row.goals),
        resolution=Resolution(row.resolution),
        mode=RunMode(row.mode),
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _world_model(row: Row[Any]) -> WorldModel:
    return WorldModel(
        project_id=str(row.project_id),
        model_data=row.model_data,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _provenance(row: Row[Any]) -> ProvenanceEntry:
    return ProvenanceEntry(
        id=str(row.id),
        project_id=str(row.project_id),
        version=row.version,
        actor=Actor(ActorKind(row.actor_kind), row.actor_id),
        action=ProvenanceAction(row.action),
        changed_fields=tuple(row.changed_fields),
        reason=row.reason,
        changes=row.changes,
        created_at=row.created_at,
        chat_message_id=str(row.chat_message_id or ""),
    )


def _spec(row: Row[Any]) -> Spec:
    return Spec(
        id=str(row.id),
        status=SpecStatus(row.status),
        task=row.task,
        title=row.title,
        planning=PlanningInterview.from_json(row.artifacts["planning"]),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
