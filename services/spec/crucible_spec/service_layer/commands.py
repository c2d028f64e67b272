"""The spec context's use cases, one evolvable input dataclass each."""

from __future__ import annotations

from dataclasses import dataclass, field

from crucible_spec.domain.model import (
    Actor,
    ChatSessionMode,
    Constraint,
    Goal,
    InterviewMode,
    JsonObject,
    MessageRole,
    PlanningAnswer,
    Resolution,
    RunMode,
)


@dataclass(frozen=True)
class CreateProject:
    title: str
    description: str = ""
    replay_of_snapshot_id: str = ""


@dataclass(frozen=True)
class GetProject:
    project_id: str


@dataclass(frozen=True)
class ListProjects:
    page_size: int = 0
    page_token: str = ""
    include_replays: bool = False


@dataclass(frozen=True)
class UpdateProject:
    project_id: str
    # Which of "title" / "description" / "auto_snapshot_failed_runs" to change; empty means title and
    # description (the setting changes only when named).
    update_mask: tuple[str, ...] = ()
    title: str = ""
    description: str = ""
    auto_snapshot_failed_runs: bool = False


@dataclass(frozen=True)
class DeleteProject:
    project_id: str


@dataclass(frozen=True)
class CreateChatSession:
    project_id: str
    mode: ChatSessionMode | None
    title: str = ""


@dataclass(frozen=True)
class GetChatSession:
    chat_session_id: str


@dataclass(frozen=True)
class ListChatSessions:
    project_id: str
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class CreateChatMessage:
    chat_session_id: str
    role: MessageRole | None
    content: str
    metadata: JsonObject = field(default_factory=dict)
    # Chosen by the caller for an idempotent create; "" lets the service choose.
    chat_message_id: str = ""


@dataclass(frozen=True)
class CreateChatTurn:
    chat_session_id: str
    content: str
    # The user message's id, chosen by the caller: sending the turn again does not repeat it.
    chat_message_id: str = ""


@dataclass(frozen=True)
class GetChatMessage:
    chat_message_id: str


@dataclass(frozen=True)
class ListChatMessages:
    chat_session_id: str
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class GetProblemSpec:
    project_id: str


@dataclass(frozen=True)
class UpdateProblemSpec:
    project_id: str
    constraints: tuple[Constraint, ...] = ()
    goals: tuple[Goal, ...] = ()
    # None leaves the stored value as it is (or takes the default when creating).
    resolution: Resolution | None = None
    mode: RunMode | None = None
    # Paths among "constraints", "goals", "resolution", "mode"; empty means all.
    update_mask: tuple[str, ...] = ()
    allow_missing: bool = False
    expected_version: int = 0
    actor: Actor = field(default_factory=Actor)
    reason: str = ""
    # The chat message that asked for the change (the Architect's edits); empty for manual edits.
    chat_message_id: str = ""


@dataclass(frozen=True)
class GetWorldModel:
    project_id: str


@dataclass(frozen=True)
class UpdateWorldModel:
    project_id: str
    model_data: JsonObject
    # "model_data" (the default) or "model_data.<section>" to replace single sections.
    update_mask: tuple[str, ...] = ()
    allow_missing: bool = False
    expected_version: int = 0
    actor: Actor = field(default_factory=Actor)
    reason: str = ""
    chat_message_id: str = ""


@dataclass(frozen=True)
class ListProvenance:
    project_id: str
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class CreateSpecWithPlanning:
    task: str
    # Empty: the first words of the task.
    title: str = ""
    # 0 means the default (5).
    max_questions: int = 0
    # None means dual_subagent.
    mode: InterviewMode | None = None


@dataclass(frozen=True)
class SavePlanningAnswers:
    spec_id: str
    answers: tuple[PlanningAnswer, ...]


@dataclass(frozen=True)
class GetSpec:
    spec_id: str


@dataclass(frozen=True)
class ListSpecs:
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class CreateSprint:
    spec_id: str
    name: str
    goal: str = ""
