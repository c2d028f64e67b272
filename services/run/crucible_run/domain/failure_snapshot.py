"""A failed run captured where it failed: the snapshot a project with auto_snapshot_failed_runs gets of it."""

from __future__ import annotations

from dataclasses import dataclass

from crucible_run.domain.model import Run, RunStatus, TriggerSource

TAGS = ("failure", "auto")
MAX_DESCRIPTION = 2_000


@dataclass(frozen=True)
class FailureSnapshot:
    project_id: str
    run_id: str
    # Derived from the run alone: a retry, or another process after a restart, asks for the same
    # name, which the snapshot service holds once (ALREADY_EXISTS is then done, not a failure).
    name: str
    description: str
    tags: tuple[str, ...] = TAGS


def wants_snapshot(status: RunStatus, trigger: TriggerSource) -> bool:
    """Whether a run that ends so may call for a failure snapshot (its project's setting decides).

    Not a snapshot test's replay: its suite reports the failure, and a snapshot of it would join
    the next suite over every snapshot, failing it again.
    """
    return status is RunStatus.FAILED and trigger is not TriggerSource.SNAPSHOT_TEST


def failure_snapshot(run: Run) -> FailureSnapshot:
    reason = run.failure_reason or "no reason recorded"
    description = f"Run {run.id} ({run.mode.value}) failed: {reason}"
    if run.error_summary and run.error_summary not in reason:
        description += f". {run.error_summary}"
    return FailureSnapshot(run.project_id, run.id, f"failed run {run.id}", description[:MAX_DESCRIPTION])
