"""The spec context's domain: projects, chat, ProblemSpec, WorldModel and their provenance."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

JsonObject = dict[str, Any]
T = TypeVar("T")

HARD_CONSTRAINT_WEIGHT = 100
WORLD_MODEL_SECTIONS = (
    "actors",
    "mechanisms",
    "resources",
    "constraints",
    "assumptions",
    "simplifications",
)


class ChatSessionMode(enum.StrEnum):
    SETUP = "setup"
    ANALYSIS = "analysis"


class MessageRole(enum.StrEnum):
    USER = "user"
    AGENT = "agent"
    SYSTEM = "system"


class Resolution(enum.StrEnum):
    COARSE = "coarse"
    MEDIUM = "medium"
    FINE = "fine"


class RunMode(enum.StrEnum):
    FULL_SEARCH = "full_search"
    EVAL_ONLY = "eval_only"
    SEEDED = "seeded"


class ActorKind(enum.StrEnum):
    USER = "user"
    ARCHITECT = "architect"
    SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    kind: ActorKind = ActorKind.USER
    id: str = ""


@dataclass(frozen=True)
class Project:
    id: str
    title: str
    description: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ChatSession:
    id: str
    project_id: str
    title: str
    mode: ChatSessionMode
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ChatMessage:
    id: str
    chat_session_id: str
    sequence: int
    role: MessageRole
    content: str
    metadata: JsonObject
    created_at: datetime


@dataclass(frozen=True)
class Constraint:
    name: str
    description: str
    weight: int

    @property
    def is_hard(self) -> bool:
        return self.weight >= HARD_CONSTRAINT_WEIGHT


@dataclass(frozen=True)
class Goal:
    description: str


@dataclass(frozen=True)
class ProblemSpec:
    project_id: str
    constraints: tuple[Constraint, ...]
    goals: tuple[Goal, ...]
    resolution: Resolution
    mode: RunMode
    version: int
    created_at: datetime
    updated_at: datetime

    def field_values(self) -> JsonObject:
        """The user-editable fields as plain JSON, as a provenance entry records them."""
        return {
            "constraints": [
                {"name": c.name, "description": c.description, "weight": c.weight} for c in self.constraints
            ],
            "goals": [{"description": g.description} for g in self.goals],
            "resolution": self.resolution.value,
            "mode": self.mode.value,
        }


@dataclass(frozen=True)
class WorldModel:
    project_id: str
    model_data: JsonObject
    version: int
    created_at: datetime
    updated_at: datetime


class ProvenanceAction(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"


@dataclass(frozen=True)
class ProvenanceEntry:
    id: str
    project_id: str
    version: int
    actor: Actor
    action: ProvenanceAction
    changed_fields: tuple[str, ...]
    reason: str
    changes: JsonObject
    created_at: datetime


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str = ""
