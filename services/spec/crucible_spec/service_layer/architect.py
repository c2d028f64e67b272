"""The Architect as the chat-turn use case sees it: two ports and their typed messages.

``ArchitectModel`` is the model behind the Architect (the agent service, in ``adapters``);
``RunAdvisor`` is what the spec context may ask the run service: a preflight and reads. It has
no way to create or execute a run, so no chat turn can start one whatever its messages say: the
run advisor contract holds by construction, not by the model's good behaviour.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from crucible_spec.domain.architect import ArchitectIntent, Preflight, RunWish, SpecPatch, WorldPatch
from crucible_spec.domain.model import ChatSessionMode, MessageRole, ProblemSpec, RunMode, WorldModel

# A piece of the reply as it is written; ``restart``: the model's answer was retried, discard it.
ReplyDeltaSink = Callable[[str, bool], Awaitable[None]]


@dataclass(frozen=True)
class ConversationLine:
    role: MessageRole
    content: str


@dataclass(frozen=True)
class RankedDigest:
    candidate_id: str
    title: str
    label: str
    i: float | None
    p: float | None
    r: float | None
    rejected: bool
    violated_constraints: tuple[str, ...]


@dataclass(frozen=True)
class RunDigest:
    """What an analysis session tells the Architect about one of the project's runs."""

    run_id: str
    mode: str
    status: str
    created_at: datetime
    candidates: int
    scenarios: int
    evaluations: int
    failed_evaluations: int
    top: tuple[RankedDigest, ...]


@dataclass(frozen=True)
class ArchitectRequest:
    project_id: str
    chat_session_id: str
    session_mode: ChatSessionMode
    # The user's message this turn answers.
    message: str
    message_id: str
    problem_spec: ProblemSpec | None
    world_model: WorldModel | None
    # The session's recent messages before this one, oldest first.
    history: tuple[ConversationLine, ...]
    # Analysis sessions: the project's latest runs and their results.
    runs: tuple[RunDigest, ...]


@dataclass(frozen=True)
class ArchitectAnswer:
    reply: str
    intent: ArchitectIntent
    spec_patch: SpecPatch | None
    world_patch: WorldPatch | None
    run_wish: RunWish | None
    llm_call_id: str
    provider: str
    model: str


class ArchitectModel(abc.ABC):
    @abc.abstractmethod
    async def answer(self, request: ArchitectRequest, on_delta: ReplyDeltaSink) -> ArchitectAnswer:
        """The model's answer, its reply streamed to ``on_delta`` as it is written.

        Raises ArchitectUnavailable (worth trying again) or ArchitectFailed.
        """


class RunAdvisor(abc.ABC):
    """The run service, as far as a chat may reach it: preflight and reads, nothing that starts a run."""

    @abc.abstractmethod
    async def preflight(
        self,
        project_id: str,
        chat_session_id: str,
        mode: RunMode | None,
        num_candidates: int,
        num_scenarios: int,
    ) -> Preflight: ...

    @abc.abstractmethod
    async def recent_runs(self, project_id: str, limit: int) -> tuple[RunDigest, ...]:
        """The project's newest runs with their top-ranked candidates, newest first."""
