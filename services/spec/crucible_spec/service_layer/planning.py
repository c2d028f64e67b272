"""The planning interview as the handlers see it: a port, its typed answer, and the stub mode.

The models are reached through an adapter (``adapters/agent_client.py``, the agent service); the
handlers know only ``PlanningInterviewer``, so they are tested with a fake.
"""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass

from crucible_spec.domain.model import InterviewMode, JsonObject, PlanningQuestion


@dataclass(frozen=True)
class InterviewRequest:
    # The spec the questions are for; it is stored only once the interview has succeeded.
    spec_id: str
    task: str
    max_questions: int
    mode: InterviewMode


@dataclass(frozen=True)
class CandidateRecord:
    """One model's proposed questions."""

    name: str
    provider: str
    model_name: str
    questions: tuple[PlanningQuestion, ...]
    # duration_ms, input_tokens, output_tokens, usd, ... as the agent service reports them.
    metrics: JsonObject

    def to_json(self) -> JsonObject:
        return {
            "name": self.name,
            "provider": self.provider,
            "model_name": self.model_name,
            "questions": [{"question": q.question, "rationale": q.rationale} for q in self.questions],
            "metrics": self.metrics,
        }


@dataclass(frozen=True)
class JudgeRecord:
    # The judge the run was configured with; when ``fallback`` is set it did not decide.
    provider: str
    model_name: str
    rationale: str
    fallback: bool
    fallback_reason: str

    def to_json(self) -> JsonObject:
        return {
            "provider": self.provider,
            "model_name": self.model_name,
            "rationale": self.rationale,
            "fallback": self.fallback,
            "fallback_reason": self.fallback_reason,
        }


@dataclass(frozen=True)
class SelectedCandidate:
    name: str
    provider: str
    model_name: str

    def to_json(self) -> JsonObject:
        return {"name": self.name, "provider": self.provider, "model_name": self.model_name}


@dataclass(frozen=True)
class InterviewError:
    """A subagent that failed while the others answered."""

    name: str
    provider: str
    model_name: str
    reason: str
    message: str

    def to_json(self) -> JsonObject:
        return {
            "name": self.name,
            "provider": self.provider,
            "model_name": self.model_name,
            "reason": self.reason,
            "message": self.message,
        }


@dataclass(frozen=True)
class InterviewMetadata:
    mode: InterviewMode
    candidates: tuple[CandidateRecord, ...] = ()
    judge: JudgeRecord | None = None
    selected_candidate: SelectedCandidate | None = None
    errors: tuple[InterviewError, ...] = ()
    agent_run_id: str | None = None
    llm_call_id: str | None = None

    def to_json(self) -> JsonObject:
        """Every key is always present (null when it does not apply), so readers need not guess."""
        return {
            "mode": self.mode.value,
            "agent_run_id": self.agent_run_id,
            "llm_call_id": self.llm_call_id,
            "candidates": [c.to_json() for c in self.candidates],
            "judge": self.judge.to_json() if self.judge else None,
            "selected_candidate": self.selected_candidate.to_json() if self.selected_candidate else None,
            "errors": [e.to_json() for e in self.errors],
        }


@dataclass(frozen=True)
class InterviewResult:
    questions: tuple[PlanningQuestion, ...]
    metadata: InterviewMetadata


class PlanningInterviewer(abc.ABC):
    """Asks models for clarifying questions about a task (modes dual_subagent and single).

    Raises ``PlanningInterviewFailed`` or ``PlanningInterviewUnavailable`` when no questions came back.
    """

    @abc.abstractmethod
    async def interview(self, request: InterviewRequest) -> InterviewResult: ...


# ---------------------------------------------------------------- stub mode

_STUB_QUESTIONS: tuple[tuple[str, str], ...] = (
    (
        "What exact output should {subject} produce, and in which format?",
        "The output format decides what the tests check.",
    ),
    (
        "Which inputs and edge cases must {subject} handle, and how?",
        "Edge cases are where a simple solution usually breaks.",
    ),
    (
        "How will we know {subject} is done: which checks must pass?",
        "Explicit success criteria tell the coding phase when to stop.",
    ),
    (
        "Which language version, libraries and environment may {subject} use?",
        "Environment constraints rule out some designs before any code is written.",
    ),
    ("What is out of scope for {subject}?", "A stated scope keeps the work small."),
    ("How should {subject} report errors?", "Error behaviour is part of the contract users rely on."),
    ("Which files and layout should {subject} have?", "The layout decides where tests and code go."),
    ("How will {subject} be run or called?", "The entry point shapes the interface."),
    ("Are there limits on time or memory for {subject}?", "Performance limits change the algorithm."),
    ("What documentation should come with {subject}?", "Documentation is easier to plan than to add."),
)
_SUBJECT_WORDS = 8


def stub_interview(task: str, max_questions: int) -> InterviewResult:
    """Fixed questions about the task, with no model call: for cheap checks only, not real planning."""
    words = re.sub(r"\s+", " ", task).strip().split(" ")
    subject = " ".join(words[:_SUBJECT_WORDS]) + ("..." if len(words) > _SUBJECT_WORDS else "")
    questions = tuple(
        PlanningQuestion(question.format(subject=f'"{subject}"'), rationale)
        for question, rationale in _STUB_QUESTIONS[:max_questions]
    )
    return InterviewResult(questions, InterviewMetadata(InterviewMode.STUB))
