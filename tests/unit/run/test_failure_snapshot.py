"""The failure snapshot a run gets: which runs, under which name, saying what."""

from __future__ import annotations

import pytest

from crucible_run.domain.failure_snapshot import MAX_DESCRIPTION, failure_snapshot, wants_snapshot
from crucible_run.domain.model import Run, RunStatus, TriggerSource
from tests.unit.run.runs import a_run


def failed(reason: str = "design failed: PROVIDER_UNAVAILABLE: openai: down", errors: str = "") -> Run:
    return a_run(failure_reason=reason, error_summary=errors)


def test_its_name_is_the_runs_and_its_tags_say_failure_and_auto() -> None:
    run = failed()

    snapshot = failure_snapshot(run)

    assert snapshot.name == f"failed run {run.id}"
    assert failure_snapshot(run).name == snapshot.name
    assert snapshot.tags == ("failure", "auto")
    assert (snapshot.project_id, snapshot.run_id) == (run.project_id, run.id)
    assert (
        snapshot.description == f"Run {run.id} (full_search) failed: design failed: PROVIDER_UNAVAILABLE: openai: down"
    )


def test_its_description_adds_the_error_summary_once_and_stays_bounded() -> None:
    summary = "2 of 4 evaluations failed (STRUCTURED_OUTPUT_INVALID: 2)"

    added = failure_snapshot(failed("stopped at max_runtime_s (60 s)", summary)).description
    contained = failure_snapshot(failed(f"no evaluation succeeded ({summary})", summary)).description
    long = failure_snapshot(failed("x" * 5_000)).description

    assert added.endswith(f"stopped at max_runtime_s (60 s). {summary}")
    assert contained.count(summary) == 1
    assert len(long) == MAX_DESCRIPTION


@pytest.mark.parametrize(
    ("status", "source", "wanted"),
    [
        (RunStatus.FAILED, TriggerSource.RUN_CONFIG_PANEL, True),
        (RunStatus.FAILED, TriggerSource.API_CLIENT, True),
        (RunStatus.COMPLETED, TriggerSource.RUN_CONFIG_PANEL, False),
        (RunStatus.CANCELLED, TriggerSource.CLI_TOOL, False),
        # A suite's replay: its suite reports it; a snapshot of it would join the next suite.
        (RunStatus.FAILED, TriggerSource.SNAPSHOT_TEST, False),
    ],
)
def test_only_a_failed_run_that_is_no_snapshot_test_is_wanted(
    status: RunStatus, source: TriggerSource, wanted: bool
) -> None:
    assert wants_snapshot(status, source) is wanted
