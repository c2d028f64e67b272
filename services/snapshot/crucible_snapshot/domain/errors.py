"""The snapshot context's errors, on top of the shared tree (mapped to gRPC codes once, in common)."""

from __future__ import annotations

from crucible_common.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)


class SnapshotNotFound(NotFound):
    def __init__(self, snapshot_id: str) -> None:
        super().__init__(
            f"snapshot {snapshot_id} not found", reason="SNAPSHOT_NOT_FOUND", metadata={"snapshot_id": snapshot_id}
        )


class ReportNotFound(NotFound):
    def __init__(self, report_id: str) -> None:
        super().__init__(
            f"test report {report_id} not found", reason="TEST_REPORT_NOT_FOUND", metadata={"report_id": report_id}
        )


class ProjectNotFound(NotFound):
    def __init__(self, project_id: str) -> None:
        super().__init__(
            f"project {project_id} not found", reason="PROJECT_NOT_FOUND", metadata={"project_id": project_id}
        )


class RunNotFound(NotFound):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id} not found", reason="RUN_NOT_FOUND", metadata={"run_id": run_id})


class SnapshotNameTaken(AlreadyExists):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"a snapshot named {name!r} exists already (snapshots never change: choose another name)",
            reason="SNAPSHOT_NAME_TAKEN",
            metadata={"name": name},
        )


class ConfirmationRequired(FailedPrecondition):
    def __init__(self, snapshot_id: str) -> None:
        super().__init__(
            f"deleting snapshot {snapshot_id} cannot be undone: send confirm = true",
            reason="CONFIRMATION_REQUIRED",
            metadata={"snapshot_id": snapshot_id},
        )


class RunNotEnded(FailedPrecondition):
    def __init__(self, run_id: str, status: str) -> None:
        super().__init__(
            f"run {run_id} is {status}: a snapshot takes its reference metrics from an ended run",
            reason="RUN_NOT_ENDED",
            metadata={"run_id": run_id, "status": status},
        )


class RecordedReplayUnavailable(FailedPrecondition):
    def __init__(self, snapshot_id: str) -> None:
        super().__init__(
            f"snapshot {snapshot_id} was made without a run: there are no recorded answers to replay (use live)",
            reason="RECORDING_UNAVAILABLE",
            metadata={"snapshot_id": snapshot_id},
        )


class TriggerRequired(InvalidArgument):
    def __init__(self) -> None:
        super().__init__(
            "a replay or a suite starts runs, so only by an explicit action: give ui_trigger_id",
            violations=[FieldViolation("ui_trigger_id", "required")],
            reason="TRIGGER_REQUIRED",
        )


class TriggerReused(FailedPrecondition):
    def __init__(self, trigger_id: str, what: str) -> None:
        super().__init__(
            f"ui_trigger_id {trigger_id!r} already started {what}",
            reason="TRIGGER_REUSED",
            metadata={"ui_trigger_id": trigger_id},
        )


class SnapshotDataUnreadable(FailedPrecondition):
    def __init__(self, snapshot_id: str, why: str) -> None:
        super().__init__(
            f"snapshot {snapshot_id}: {why}", reason="SNAPSHOT_DATA_UNREADABLE", metadata={"snapshot_id": snapshot_id}
        )
