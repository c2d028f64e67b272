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
    # Each of its runs that ends FAILED is snapshotted (by the run service, which reads this).
    auto_snapshot_failed_runs: bool = False
    # The snapshot it was restored from to replay it (made by the snapshot service); "" for a
    # user's project.
    replay_of_snapshot_id: str = ""


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
    # For a change the Architect made: the user's chat message that asked for it.
    chat_message_id: str = ""


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str = ""


# ---------------------------------------------------------------- specs and their planning interview


class SpecStatus(enum.StrEnum):
    DRAFT = "draft"
    VALIDATED = "validated"


class PlanningStatus(enum.StrEnum):
    NEEDS_ANSWERS = "needs_answers"
    ANSWERED = "answered"


class InterviewMode(enum.StrEnum):
    DUAL_SUBAGENT = "dual_subagent"
    SINGLE = "single"
    STUB = "stub"


@dataclass(frozen=True)
class PlanningQuestion:
    question: str
    rationale: str


@dataclass(frozen=True)
class PlanningAnswer:
    question: str
    answer: str


@dataclass(frozen=True)
class PlanningInterview:
    status: PlanningStatus
    questions: tuple[PlanningQuestion, ...]
    answers: tuple[PlanningAnswer, ...]
    # How the questions were obtained (mode, candidates, judge, ...): a record, passed on as it is.
    metadata: JsonObject

    @classmethod
    def asked(cls, questions: tuple[PlanningQuestion, ...], metadata: JsonObject) -> PlanningInterview:
        return cls(PlanningStatus.NEEDS_ANSWERS, questions, (), metadata)

    def unanswered(self) -> tuple[str, ...]:
        answered = {a.question for a in self.answers}
        return tuple(q.question for q in self.questions if q.question not in answered)

    def with_answers(self, answers: tuple[PlanningAnswer, ...]) -> PlanningInterview:
        """Later answers replace earlier ones to the same question; kept in question order."""
        by_question = {a.question: a for a in self.answers} | {a.question: a for a in answers}
        merged = tuple(by_question[q.question] for q in self.questions if q.question in by_question)
        done = len(merged) == len(self.questions)
        return PlanningInterview(
            PlanningStatus.ANSWERED if done else PlanningStatus.NEEDS_ANSWERS, self.questions, merged, self.metadata
        )

    def to_json(self) -> JsonObject:
        return {
            "status": self.status.value,
            "questions": [{"question": q.question, "rationale": q.rationale} for q in self.questions],
            "answers": [{"question": a.question, "answer": a.answer} for a in self.answers],
            "metadata": self.metadata,
        }

    @classmethod
    def from_json(cls, value: JsonObject) -> PlanningInterview:
        return cls(
            PlanningStatus(value["status"]),
            tuple(PlanningQuestion(q["question"], q["rationale"]) for q in value["questions"]),
            tuple(PlanningAnswer(a["question"], a["answer"]) for a in value["answers"]),
            value["metadata"],
        )


@dataclass(frozen=True)
class Spec:
    id: str
    status: SpecStatus
    task: str
    title: str
    planning: PlanningInterview
    created_at: datetime
    updated_at: datetime

    def artifacts(self) -> JsonObject:
        """What the ``artifacts`` column holds (and the API shows)."""
        return {"planning": self.planning.to_json()}
