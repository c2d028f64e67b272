"""auto_snapshot_failed_runs on real Postgres: a failed run is snapshotted once, after its end, durably.

The run service asks the project's setting (the spec service) and the snapshot service
(``FakeSnapshots``) after the run has ended; a snapshot service that is away leaves the step
pending for a later claim, never the run's end; a retry or a restart never makes two.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from crucible.spec.v1 import spec_service_pb2 as spec_pb
from crucible.spec.v1 import spec_service_pb2_grpc as spec_grpc
from crucible_run.adapters import tables as t
from crucible_run.adapters.spec_client import SpecClient
from crucible_run.domain.model import Run, RunStatus, TriggerSource
from crucible_run.service_layer import commands as c
from crucible_run.service_layer import handlers as h
from crucible_run.service_layer import pipeline
from crucible_run.service_layer.pipeline import RunExecutor
from tests.integration.run_fakes import RECKLESS, FakeModels, FakeSnapshots
from tests.integration.run_harness import Harness, Idle, run_engine, steal

pytestmark = pytest.mark.integration

# Every evaluation fails, so every run fails ("no evaluation succeeded").
FAILING = ("Design 0", RECKLESS)


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with run_engine(database_url) as engine:
        yield engine


@pytest.fixture(autouse=True)
def no_retry_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    """One try per step and claim: a service that is away is left to the next claim at once."""
    monkeypatch.setattr(pipeline, "AFTER_END_ATTEMPTS", 1)


@pytest.fixture
async def failing(engine: AsyncEngine) -> AsyncIterator[Harness]:
    made = Harness.make(engine, FakeModels(failing_titles=FAILING))
    yield made
    await made.close()


async def _failed_run(harness: Harness, *, setting: bool, **options: Any) -> tuple[str, Run]:
    project = harness.spec.project()
    if setting:
        harness.spec.snapshotting.add(project)
    run = await harness.run(project, num_candidates=2, num_scenarios=2, **options)
    return project, run


async def test_a_failed_run_of_a_project_with_the_setting_is_snapshotted_once(failing: Harness) -> None:
    project, run = await _failed_run(failing, setting=True)

    assert run.status is RunStatus.FAILED
    assert not run.snapshot_pending
    (made,) = failing.snapshots.made
    assert (made.project_id, made.run_id, made.name) == (project, run.id, f"failed run {run.id}")
    assert made.tags == ("failure", "auto")
    assert made.description.startswith(f"Run {run.id} (full_search) failed: no evaluation succeeded")
    assert "STRUCTURED_OUTPUT_INVALID" in made.description
    assert failing.snapshots.asked == 1
    # The end did not wait for it: the summary was posted as for any run.
    assert failing.spec.posted[0].summary["status"] == "FAILED"


async def test_without_the_setting_nothing_is_snapshotted(failing: Harness) -> None:
    _, run = await _failed_run(failing, setting=False)

    assert run.status is RunStatus.FAILED
    assert not run.snapshot_pending
    assert failing.spec.setting_reads == 1
    assert failing.snapshots.asked == 0


async def test_a_completed_run_asks_nothing(engine: AsyncEngine) -> None:
    harness = Harness.make(engine)
    try:
        project = harness.spec.project()
        harness.spec.snapshotting.add(project)
        run = await harness.run(project, num_candidates=2, num_scenarios=2)
    finally:
        await harness.close()

    assert run.status is RunStatus.COMPLETED
    assert (harness.spec.setting_reads, harness.snapshots.asked) == (0, 0)


async def test_a_snapshot_tests_failed_replay_is_left_to_its_suite(failing: Harness) -> None:
    _, run = await _failed_run(failing, setting=True, source=TriggerSource.SNAPSHOT_TEST)

    assert run.status is RunStatus.FAILED
    assert (failing.spec.setting_reads, failing.snapshots.asked) == (0, 0)


async def test_a_refusal_is_not_retried_and_does_not_touch_the_run(engine: AsyncEngine) -> None:
    harness = Harness.make(engine, FakeModels(failing_titles=FAILING), snapshots=FakeSnapshots(refuse="NO: why"))
    try:
        _, run = await _failed_run(harness, setting=True)
    finally:
        await harness.close()

    assert run.status is RunStatus.FAILED
    assert not run.snapshot_pending
    assert harness.snapshots.asked == 1


async def test_a_snapshot_service_that_is_away_is_asked_again_by_a_later_claim_and_never_twice(
    engine: AsyncEngine,
) -> None:
    snapshots = FakeSnapshots(down=True)
    harness = Harness.make(engine, FakeModels(failing_titles=FAILING), launch=False, snapshots=snapshots)
    assert isinstance(harness.scheduler, Idle)
    project = harness.spec.project()
    harness.spec.snapshotting.add(project)
    run = await harness.create(project, num_candidates=2, num_scenarios=2)
    await h.execute_run(c.ExecuteRun(run.id), harness.deps)

    await RunExecutor(harness.pipeline, harness.scheduler.launched[-1]).run()
    ended = await h.get_run(run.id, harness.deps.uow)
    # The run ended as it would have, summary posted; only the snapshot is still to make.
    assert ended.status is RunStatus.FAILED
    assert ended.run_summary_message_id
    assert ended.snapshot_pending
    assert snapshots.made == []
    # Still leased work: once its lease lapses, any process claims it.
    await _lapse(engine, run.id)
    assert run.id in {lease.id for lease in await harness.pipeline.leases.claim_stale(100)}

    snapshots.down = False
    await RunExecutor(harness.pipeline, await steal(engine, run.id, "p2")).run()
    done = await h.get_run(run.id, harness.deps.uow)
    assert not done.snapshot_pending
    assert [m.name for m in snapshots.made] == [f"failed run {run.id}"]
    await _lapse(engine, run.id)
    assert run.id not in {lease.id for lease in await harness.pipeline.leases.claim_stale(100)}

    # A process that made it and died before storing so: the next one asks again, under the same name.
    async with engine.begin() as conn:
        await conn.execute(update(t.runs).where(t.runs.c.id == run.id).values(snapshot_pending=True))
    await RunExecutor(harness.pipeline, await steal(engine, run.id, "p3")).run()

    assert len(snapshots.made) == 1
    assert snapshots.asked == 3
    assert len(harness.spec.posted) == 1
    assert not (await h.get_run(run.id, harness.deps.uow)).snapshot_pending


async def _lapse(engine: AsyncEngine, run_id: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(t.runs).where(t.runs.c.id == run_id).values(lease_expires_at=t.runs.c.created_at))


async def test_the_setting_is_the_spec_services(spec_stub: spec_grpc.SpecServiceAsyncStub) -> None:
    """The project setting through the real spec service, as the run service's client reads it."""
    spec = SpecClient(spec_stub, timeout=10, wait_seconds=0)
    created = await spec_stub.CreateProject(spec_pb.CreateProjectRequest(title="Bridge"))
    project = created.project.id
    assert not created.project.auto_snapshot_failed_runs
    assert not await spec.auto_snapshot_failed_runs(project)

    updated = await spec_stub.UpdateProject(
        spec_pb.UpdateProjectRequest(
            project_id=project,
            update_mask=FieldMask(paths=["auto_snapshot_failed_runs"]),
            auto_snapshot_failed_runs=True,
        )
    )
    # An empty mask changes title and description only.
    renamed = await spec_stub.UpdateProject(
        spec_pb.UpdateProjectRequest(project_id=project, title="Bridge 2", description="")
    )

    assert (updated.project.auto_snapshot_failed_runs, updated.project.title) == (True, "Bridge")
    assert (renamed.project.auto_snapshot_failed_runs, renamed.project.title) == (True, "Bridge 2")
    assert await spec.auto_snapshot_failed_runs(project)
    assert not await spec.auto_snapshot_failed_runs(str(uuid.uuid4()))
