"""The run context's errors, on top of the shared tree."""

from __future__ import annotations

from collections.abc import Sequence

from crucible_common.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PreconditionViolation,
)


class RunNotFound(NotFound):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id} not found", reason="RUN_NOT_FOUND", metadata={"run_id": run_id})


class ProjectNotFound(NotFound):
    def __init__(self, project_id: str) -> None:
        super().__init__(
            f"project {project_id} not found", reason="PROJECT_NOT_FOUND", metadata={"project_id": project_id}
        )


class TriggerRequired(InvalidArgument):
    def __init__(self) -> None:
        super().__init__(
            "a run is created only by an explicit action: give ui_trigger_id (a click's id, a command's id, ...)",
            violations=[FieldViolation("ui_trigger_id", "required")],
            reason="TRIGGER_REQUIRED",
        )


class RunBlocked(FailedPrecondition):
    """Preflight is not ready: each blocker is a precondition violation (type = its code)."""

    def __init__(self, violations: Sequence[PreconditionViolation]) -> None:
        codes = ", ".join(v.type for v in violations)
        super().__init__(f"the run cannot start: {codes}", violations=violations, reason="RUN_BLOCKED")


class RecommendationInvalid(FailedPrecondition):
    def __init__(self, message_id: str, why: str) -> None:
        super().__init__(
            f"recommended_message_id {message_id}: {why}",
            violations=[PreconditionViolation("RECOMMENDATION", message_id, why)],
            reason="RECOMMENDATION_INVALID",
            metadata={"recommended_message_id": message_id},
        )


class RunNotCreated(FailedPrecondition):
    def __init__(self, run_id: str, status: str) -> None:
        super().__init__(
            f"run {run_id} is {status}; only a created run can be executed (create another run to run again)",
            reason="RUN_NOT_CREATED",
            metadata={"run_id": run_id, "status": status},
        )


class RunFinished(FailedPrecondition):
    def __init__(self, run_id: str, status: str) -> None:
        super().__init__(
            f"run {run_id} is already {status}", reason="RUN_FINISHED", metadata={"run_id": run_id, "status": status}
        )


class TriggerReused(FailedPrecondition):
    def __init__(self, trigger_id: str, run_id: str) -> None:
        super().__init__(
            f"ui_trigger_id {trigger_id!r} already created run {run_id}, of another project",
            reason="TRIGGER_REUSED",
            metadata={"ui_trigger_id": trigger_id, "run_id": run_id},
        )


class ReplaySourceNotFound(InvalidArgument):
    def __init__(self, run_id: str) -> None:
        super().__init__(
            f"replay_of_run_id {run_id}: no such run to replay",
            violations=[FieldViolation("replay_of_run_id", "no such run")],
            reason="REPLAY_SOURCE_NOT_FOUND",
            metadata={"replay_of_run_id": run_id},
        )


class ReplaySourceNotEnded(FailedPrecondition):
    def __init__(self, run_id: str, status: str) -> None:
        super().__init__(
            f"run {run_id} is {status}: only an ended run's calls can answer a replay",
            violations=[PreconditionViolation("REPLAY_SOURCE", run_id, f"the run is {status}, not ended")],
            reason="REPLAY_SOURCE_NOT_ENDED",
            metadata={"replay_of_run_id": run_id, "status": status},
        )
