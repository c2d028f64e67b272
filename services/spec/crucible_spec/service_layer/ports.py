"""What the spec context's use cases need from outside: the repository (SQL in ``adapters``)."""

from __future__ import annotations

import abc
from datetime import datetime

from crucible_spec.domain.model import (
    ChatMessage,
    ChatSession,
    ProblemSpec,
    Project,
    ProvenanceEntry,
    Spec,
    WorldModel,
)

ProvenanceSubject = str  # "problem_spec" | "world_model"


class AbstractSpecRepository(abc.ABC):
    """Everything the handlers need to load and store; one implementation per storage."""

    @abc.abstractmethod
    async def add_project(self, project: Project) -> None: ...

    @abc.abstractmethod
    async def get_project(self, project_id: str, *, for_update: bool = False) -> Project | None: ...

    @abc.abstractmethod
    async def list_projects(
        self, limit: int, after: tuple[datetime, str] | None, *, include_replays: bool = False
    ) -> list[Project]: ...

    @abc.abstractmethod
    async def save_project(self, project: Project) -> None: ...

    @abc.abstractmethod
    async def delete_project(self, project_id: str) -> bool: ...

    @abc.abstractmethod
    async def add_chat_session(self, session: ChatSession) -> None: ...

    @abc.abstractmethod
    async def get_chat_session(self, chat_session_id: str) -> ChatSession | None: ...

    @abc.abstractmethod
    async def list_chat_sessions(
        self, project_id: str, limit: int, after: tuple[datetime, str] | None
    ) -> list[ChatSession]: ...

    @abc.abstractmethod
    async def next_message_sequence(self, chat_session_id: str, at: datetime) -> int | None:
        """Reserve the next sequence number of a session (None when it does not exist)."""

    @abc.abstractmethod
    async def add_chat_message(self, message: ChatMessage) -> None: ...

    @abc.abstractmethod
    async def get_chat_message(self, chat_message_id: str) -> ChatMessage | None: ...

    @abc.abstractmethod
    async def list_chat_messages(self, chat_session_id: str, limit: int, after_sequence: int) -> list[ChatMessage]: ...

    @abc.abstractmethod
    async def get_problem_spec(self, project_id: str, *, for_update: bool = False) -> ProblemSpec | None: ...

    @abc.abstractmethod
    async def save_problem_spec(self, spec: ProblemSpec, *, is_new: bool) -> None: ...

    @abc.abstractmethod
    async def get_world_model(self, project_id: str, *, for_update: bool = False) -> WorldModel | None: ...

    @abc.abstractmethod
    async def save_world_model(self, model: WorldModel, *, is_new: bool) -> None: ...

    @abc.abstractmethod
    async def append_provenance(self, subject: ProvenanceSubject, entry: ProvenanceEntry) -> None: ...

    @abc.abstractmethod
    async def list_provenance(
        self, project_id: str, subject: ProvenanceSubject, limit: int, after_version: int
    ) -> list[ProvenanceEntry]: ...

    @abc.abstractmethod
    async def add_spec(self, spec: Spec) -> None: ...

    @abc.abstractmethod
    async def get_spec(self, spec_id: str, *, for_update: bool = False) -> Spec | None: ...

    @abc.abstractmethod
    async def list_specs(self, limit: int, after: tuple[datetime, str] | None) -> list[Spec]: ...

    @abc.abstractmethod
    async def save_spec(self, spec: Spec) -> None:
        """Store the status, title, planning and updated_at of an existing spec."""
