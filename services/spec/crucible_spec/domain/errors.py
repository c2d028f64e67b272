"""The spec context's errors: domain meanings on top of the shared tree."""

from __future__ import annotations

from collections.abc import Mapping

from crucible_common.errors import (
    AlreadyExists,
    Conflict,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from crucible_common.wording import counted


class ProjectNotFound(NotFound):
    def __init__(self, project_id: str) -> None:
        super().__init__(
            f"project {project_id} not found", reason="PROJECT_NOT_FOUND", metadata={"project_id": project_id}
        )


class ChatSessionNotFound(NotFound):
    def __init__(self, chat_session_id: str) -> None:
        super().__init__(
            f"chat session {chat_session_id} not found",
            reason="CHAT_SESSION_NOT_FOUND",
            metadata={"chat_session_id": chat_session_id},
        )


class ChatMessageNotFound(NotFound):
    def __init__(self, chat_message_id: str) -> None:
        super().__init__(
            f"chat message {chat_message_id} not found",
            reason="CHAT_MESSAGE_NOT_FOUND",
            metadata={"chat_message_id": chat_message_id},
        )


class ChatMessageIdTaken(AlreadyExists):
    """The id names a message already, and not this one again: another session's, or another turn."""

    def __init__(self, chat_message_id: str, whose: str = "another session") -> None:
        super().__init__(
            f"chat message id {chat_message_id} is taken by a message of {whose}",
            reason="CHAT_MESSAGE_ID_TAKEN",
            metadata={"chat_message_id": chat_message_id},
        )


class ProblemSpecNotFound(NotFound):
    def __init__(self, project_id: str) -> None:
        super().__init__(
            f"project {project_id} has no ProblemSpec yet",
            reason="PROBLEM_SPEC_NOT_FOUND",
            metadata={"project_id": project_id},
        )


class WorldModelNotFound(NotFound):
    def __init__(self, project_id: str) -> None:
        super().__init__(
            f"project {project_id} has no WorldModel yet",
            reason="WORLD_MODEL_NOT_FOUND",
            metadata={"project_id": project_id},
        )


class VersionConflict(Conflict):
    def __init__(self, what: str, expected: int, actual: int) -> None:
        super().__init__(
            f"{what} is at version {actual}, not {expected}; re-read it and retry",
            reason="VERSION_MISMATCH",
            metadata={"expected_version": str(expected), "actual_version": str(actual)},
        )


class SpecNotFound(NotFound):
    def __init__(self, spec_id: str) -> None:
        super().__init__(f"spec {spec_id} not found", reason="SPEC_NOT_FOUND", metadata={"spec_id": spec_id})


class SpecValidated(FailedPrecondition):
    def __init__(self, spec_id: str) -> None:
        super().__init__(
            f"spec {spec_id} is validated; its planning can no longer change",
            reason="SPEC_VALIDATED",
            metadata={"spec_id": spec_id},
        )


class UnknownQuestions(InvalidArgument):
    """Answers name questions the spec does not have; each one is listed."""

    def __init__(self, violations: list[FieldViolation]) -> None:
        super().__init__(
            f"{counted(len(violations), 'answer')} name a question the spec does not have; "
            "send each question exactly as the spec states it",
            violations=violations,
            reason="UNKNOWN_QUESTION",
        )


class PlanningInterviewFailed(FailedPrecondition):
    """The interview could not produce questions, and retrying as it is will not help."""

    def __init__(self, message: str, *, metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(f"planning interview failed: {message}", reason="PLANNING_INTERVIEW_FAILED", metadata=metadata)


class PlanningInterviewUnavailable(Unavailable):
    """The interview could not run now (agent service down, models failing); retrying may help."""

    def __init__(self, message: str, *, metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(f"planning interview failed: {message}", reason="PLANNING_INTERVIEW_FAILED", metadata=metadata)


class SpecNotAnswered(FailedPrecondition):
    def __init__(self, spec_id: str, unanswered: int) -> None:
        super().__init__(
            f"spec {spec_id} has {counted(unanswered, 'unanswered planning question')}; "
            "answer them before creating a sprint",
            reason="SPEC_NOT_ANSWERED",
            metadata={"spec_id": spec_id, "unanswered": str(unanswered)},
        )


class ArchitectFailed(FailedPrecondition):
    """The Architect gave no usable answer (its model failed for good); the user's message is kept."""

    def __init__(self, message: str, *, metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(f"the Architect could not answer: {message}", reason="ARCHITECT_FAILED", metadata=metadata)


class ArchitectUnavailable(Unavailable):
    """The Architect could not answer now (agent service or provider down); sending the turn again may help."""

    def __init__(self, message: str, *, metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(
            f"the Architect could not answer now: {message}", reason="ARCHITECT_UNAVAILABLE", metadata=metadata
        )


class RunServiceUnavailable(Unavailable):
    """The run service did not answer a preflight or a read."""

    def __init__(self, message: str) -> None:
        super().__init__(f"the run service is unavailable: {message}", reason="RUN_SERVICE_UNAVAILABLE")
