"""The snapshot schema on real Postgres: the database refuses to change a snapshot; listing filters
(every tag, a name substring, the project) and pages; old snapshot_data read as the current version."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from crucible_snapshot.domain.model import Invariant
from crucible_snapshot.domain.snapshot_data import CURRENT_VERSION
from crucible_snapshot.service_layer import commands as c
from crucible_snapshot.service_layer import handlers as h
from tests.integration.snapshot_harness import Neighbours, SnapshotHarness, snapshot_engine
from tests.unit.snapshot.fakes import good_metrics, snapshot
from tests.unit.snapshot.test_snapshot_data import SEED_1_0

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with snapshot_engine(database_url) as engine:
        yield engine


@pytest.fixture
async def harness(engine: AsyncEngine) -> AsyncIterator[SnapshotHarness]:
    made = SnapshotHarness.make(engine, Neighbours.make())
    yield made
    await made.close()


@pytest.mark.parametrize(
    "change",
    [
        "snapshot_data = '{}'::jsonb",
        "invariants = '[]'::jsonb",
        "reference_metrics = NULL",
        "name = name || ' (edited)'",
        "tags = ARRAY['other']",
    ],
)
async def test_the_database_refuses_to_change_a_snapshot(harness: SnapshotHarness, change: str) -> None:
    project = harness.neighbours.spec.project()
    run = harness.neighbours.runs.reference(project, good_metrics())
    made = await h.create_snapshot(
        c.CreateSnapshot(f"frozen {uuid.uuid4()}", project, run, invariants=(Invariant("min_candidates", 1),)),
        harness.deps,
    )

    with pytest.raises(DBAPIError, match="is immutable"):
        async with harness.engine.begin() as conn:
            await conn.execute(text(f"UPDATE snapshot.snapshots SET {change} WHERE id = :id"), {"id": made.id})

    assert await h.get_snapshot(made.id, harness.deps.uow) == made
    # Deleting is allowed (with the API's confirmation).
    await h.delete_snapshot(c.DeleteSnapshot(made.id, confirm=True), harness.deps.uow)


async def test_listing_filters_by_every_tag_a_name_substring_and_the_project_and_pages(
    harness: SnapshotHarness,
) -> None:
    project, other = str(uuid.uuid4()), str(uuid.uuid4())
    mark = uuid.uuid4().hex[:8]
    a, b, d, e = await harness.add(
        snapshot(f"{mark} Alpha 100%_smoke", tags=("smoke", "ui"), project_id=project),
        snapshot(f"{mark} beta SMOKE", tags=("smoke",), project_id=project),
        snapshot(f"{mark} gamma", tags=("ui", "smoke", "slow"), project_id=other),
        snapshot(f"{mark} 100x_smoke", tags=(), project_id=project),
    )

    async def names(**filters: object) -> list[str]:
        found, _ = await h.list_snapshots(c.ListSnapshots(**filters), harness.deps.uow)  # type: ignore[arg-type]
        return [s.name for s in found]

    assert await names(tags=("smoke", "ui"), name=mark) == [d.name, a.name]
    assert await names(tags=("ui", "smoke"), project_id=project) == [a.name]
    assert await names(name=f"{mark} ALPHA") == [a.name]
    # % and _ are the name's own characters, not wildcards.
    assert await names(name="100%_smoke") == [a.name]
    assert await names(project_id=project, name=mark) == [e.name, b.name, a.name]
    first, token = await h.list_snapshots(c.ListSnapshots(name=mark, page_size=3), harness.deps.uow)
    rest, end = await h.list_snapshots(c.ListSnapshots(name=mark, page_size=3, page_token=token), harness.deps.uow)
    assert [s.name for s in first + rest] == [e.name, d.name, b.name, a.name]
    assert end == ""
    assert all(s.data is None for s in first)


async def test_a_stored_seed_1_0_document_reads_as_the_current_version(harness: SnapshotHarness) -> None:
    (made,) = await harness.add(snapshot(f"old {uuid.uuid4()}"))
    async with harness.engine.begin() as conn:
        # A snapshot written by an older service: insert it as it would have been stored.
        await conn.execute(text("DELETE FROM snapshot.snapshots WHERE id = :id"), {"id": made.id})
        await conn.execute(
            text(
                "INSERT INTO snapshot.snapshots (id, name, description, tags, project_id, snapshot_data, invariants, "
                "version, created_at, updated_at) VALUES (:id, :name, '', '{}', :project, CAST(:data AS jsonb), "
                "'[]'::jsonb, '1.0', now(), now())"
            ),
            {"id": made.id, "name": made.name, "project": made.project_id, "data": json.dumps(SEED_1_0)},
        )

    read = await h.get_snapshot(made.id, harness.deps.uow)

    assert read.stored_version == "1.0"
    assert read.data is not None
    assert read.data.version == CURRENT_VERSION
    assert read.data.problem_spec is not None
    assert [g.description for g in read.data.problem_spec.goals] == ["carry traffic", "look good"]


async def test_a_snapshot_reads_back_whole(harness: SnapshotHarness) -> None:
    (made,) = await harness.add(
        snapshot(
            f"whole {uuid.uuid4()}",
            tags=("a", "b"),
            invariants=(Invariant("custom", "candidates > 1", "d"), Invariant("no_hard_constraint_violations", True)),
            reference_metrics=good_metrics(top_i=None, duration_seconds=None),
        )
    )

    read = await h.get_snapshot(made.id, harness.deps.uow)

    assert replace(read, created_at=made.created_at, updated_at=made.updated_at) == made
