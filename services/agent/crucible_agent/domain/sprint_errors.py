"""Errors of sprints."""

from __future__ import annotations

from crucible_common.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound


class SprintNotFound(NotFound):
    def __init__(self, sprint_id: str) -> None:
        super().__init__(f"sprint {sprint_id} not found", reason="SPRINT_NOT_FOUND", metadata={"sprint_id": sprint_id})


class SpecNotAnswered(FailedPrecondition):
    def __init__(self, spec_id: str, status: str) -> None:
        super().__init__(
            f"spec {spec_id} has planning status {status!r}; answer its planning questions before creating a sprint",
            reason="SPEC_NOT_ANSWERED",
            metadata={"spec_id": spec_id, "planning_status": status},
        )


class SprintNotPlanned(FailedPrecondition):
    def __init__(self, sprint_id: str, status: str) -> None:
        super().__init__(
            f"sprint {sprint_id} is {status}; only a planned sprint can be started",
            reason="SPRINT_NOT_PLANNED",
            metadata={"sprint_id": sprint_id, "status": status},
        )


class SprintFinished(FailedPrecondition):
    def __init__(self, sprint_id: str, status: str) -> None:
        super().__init__(
            f"sprint {sprint_id} is already {status}",
            reason="SPRINT_FINISHED",
            metadata={"sprint_id": sprint_id, "status": status},
        )


class TriggerRequired(InvalidArgument):
    def __init__(self, missing: list[str]) -> None:
        super().__init__(
            "a sprint starts only by an explicit action: give the trigger's id and source",
            violations=[FieldViolation(f"trigger.{name}", "required") for name in missing],
            reason="TRIGGER_REQUIRED",
        )


class ArtifactNotFound(NotFound):
    def __init__(self, sprint_id: str, path: str) -> None:
        super().__init__(
            f"sprint {sprint_id} has no artifact {path!r}",
            reason="ARTIFACT_NOT_FOUND",
            metadata={"sprint_id": sprint_id, "path": path},
        )
