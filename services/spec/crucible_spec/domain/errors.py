"""The spec context's errors: domain meanings on top of the shared tree."""

from __future__ import annotations

from crucible_common.errors import Conflict, FieldViolation, InvalidArgument, NotFound


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


class ValidationFailed(InvalidArgument):
    """One or more fields are invalid; every violation is listed, not just the first."""

    def __init__(self, violations: list[FieldViolation]) -> None:
        summary = "; ".join(f"{v.field}: {v.description}" for v in violations[:5])
        more = f" (and {len(violations) - 5} more)" if len(violations) > 5 else ""
        super().__init__(f"invalid request: {summary}{more}", violations=violations, reason="VALIDATION_FAILED")
