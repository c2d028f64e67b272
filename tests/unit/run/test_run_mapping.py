"""A run as the API returns it says what it replays and for which snapshot test suite."""

from __future__ import annotations

from crucible_run.domain.model import RunStatus, TriggerSource
from crucible_run.entrypoints.proto_mapping import run_pb
from tests.unit.run.runs import a_run


def test_a_run_carries_its_replay_source_and_suite() -> None:
    source = "aaaaaaaa-2222-4333-8444-555555555555"
    run = a_run(RunStatus.CREATED, TriggerSource.SNAPSHOT_TEST, replay_of_run_id=source, snapshot_test_id="suite-1")

    message = run_pb(run)

    assert (message.replay_of_run_id, message.snapshot_test_id) == (source, "suite-1")
