"""The snapshot service over real gRPC: the servicer, its mapping and the one error interceptor, on
real Postgres; wired by bootstrap (neighbours unreachable) for the reads, and over faked neighbours
for what calls them (capture, replay, suites)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import pytest
from grpc_status import rpc_status
from sqlalchemy.ext.asyncio import AsyncEngine

from crucible.snapshot.v1 import snapshot_service_pb2 as pb
from crucible.snapshot.v1 import snapshot_service_pb2_grpc as pb_grpc
from crucible_common.errors import StatusDetails, decode_status
from crucible_common.grpc_server import ServiceDefinition, create_server
from crucible_common.protobuf import struct, struct_to_dict, value, value_to_python
from crucible_common.settings import Settings
from crucible_snapshot import bootstrap
from crucible_snapshot.entrypoints.grpc_servicer import SnapshotServicer
from crucible_snapshot.service_layer.handlers import SnapshotDeps
from tests.integration.snapshot_harness import Neighbours, SnapshotHarness, snapshot_engine
from tests.unit.snapshot.fakes import good_metrics
from tests.unit.snapshot.test_snapshot_data import SEED_1_0

if TYPE_CHECKING:  # the async stub type exists only in the generated .pyi
    from crucible.snapshot.v1.snapshot_service_pb2_grpc import SnapshotServiceAsyncStub

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with snapshot_engine(database_url) as engine:
        yield engine


async def _serve(deps: SnapshotDeps) -> tuple[grpc.aio.Server, grpc.aio.Channel]:
    servicer = SnapshotServicer(deps)
    definition = ServiceDefinition(
        bootstrap.SERVICE_NAME, lambda server: pb_grpc.add_SnapshotServiceServicer_to_server(servicer, server)
    )
    server, port, _ = create_server("127.0.0.1:0", [definition], domain="snapshot.crucible")
    await server.start()
    return server, grpc.aio.insecure_channel(f"127.0.0.1:{port}")


@pytest.fixture
async def world(engine: AsyncEngine) -> AsyncIterator[tuple[SnapshotServiceAsyncStub, SnapshotHarness]]:
    harness = SnapshotHarness.make(engine, Neighbours.make(latency=0.02))
    server, channel = await _serve(harness.deps)
    yield pb_grpc.SnapshotServiceStub(channel), harness
    await channel.close()
    await server.stop(None)
    await harness.close()


async def _error(call: object) -> StatusDetails:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    error = info.value
    return decode_status(error.code(), error.details() or "", rpc_status.from_call(error))


def _invariant(kind: str, data: object, description: str = "") -> pb.Invariant:
    return pb.Invariant(type=kind, value=value(data), description=description)


async def test_the_composition_root_builds_a_service_that_serves_the_reads(
    database_url: str, engine: AsyncEngine
) -> None:
    settings = Settings(database_url=database_url, snapshot_addr="127.0.0.1:0", run_addr="127.0.0.1:1")
    process = bootstrap.build(settings)
    server, port, _ = create_server("127.0.0.1:0", process.definitions, domain="snapshot.crucible")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = pb_grpc.SnapshotServiceStub(channel)
    try:
        listed = await stub.ListSnapshots(pb.ListSnapshotsRequest(tags=["nothing-has-this-tag"]))
        missing = await _error(stub.GetTestReport(pb.GetTestReportRequest(report_id=str(uuid.uuid4()))))
    finally:
        await channel.close()
        await server.stop(None)
        for close in process.closers:
            await close()
        await process.engine.dispose()
    assert list(listed.snapshots) == []
    assert (missing.code, missing.reason) == (grpc.StatusCode.NOT_FOUND, "TEST_REPORT_NOT_FOUND")
    assert process.background


async def test_a_snapshot_over_grpc_refuses_bad_invariants_naming_the_field_and_reads_back_whole(
    world: tuple[SnapshotServiceAsyncStub, SnapshotHarness],
) -> None:
    stub, harness = world
    project = harness.neighbours.spec.project()
    run = harness.neighbours.runs.reference(project, good_metrics(top_i=None))
    name = f"grpc {uuid.uuid4()}"
    invariants = [
        _invariant("min_candidates", 3, "at least three"),
        _invariant("run_status", "COMPLETED"),
        _invariant("custom", "evaluations == candidates * scenarios"),
    ]

    bad = await _error(
        stub.CreateSnapshot(
            pb.CreateSnapshotRequest(
                project_id=project,
                name=name,
                invariants=[*invariants[:2], _invariant("max_duration_seconds", "soon"), _invariant("custom", "x >")],
            )
        )
    )
    not_scalar = await _error(
        stub.CreateSnapshot(
            pb.CreateSnapshotRequest(project_id=project, name=name, invariants=[_invariant("min_candidates", [1])])
        )
    )
    created = (
        await stub.CreateSnapshot(
            pb.CreateSnapshotRequest(
                project_id=project, run_id=run, name=name, tags=["grpc", "smoke"], invariants=invariants
            )
        )
    ).snapshot
    read = (await stub.GetSnapshot(pb.GetSnapshotRequest(snapshot_id=created.id))).snapshot
    listed = (await stub.ListSnapshots(pb.ListSnapshotsRequest(tags=["smoke", "grpc"], name="GRPC"))).snapshots
    unconfirmed = await _error(stub.DeleteSnapshot(pb.DeleteSnapshotRequest(snapshot_id=created.id)))
    malformed = await _error(stub.GetSnapshot(pb.GetSnapshotRequest(snapshot_id="nope")))

    assert (bad.code, bad.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_FAILED")
    assert [v.field for v in bad.field_violations] == ["invariants[2].value", "invariants[3].value"]
    assert [v.field for v in not_scalar.field_violations] == ["invariants[0].value"]
    assert read == created
    assert read.version == "3.0"
    data = struct_to_dict(read.snapshot_data)
    assert data["problem_spec"]["constraints"][0] == {
        "name": "budget",
        "description": "stay under budget",
        "weight": 100,
    }
    assert data["run_config"] == {
        "mode": "full_search",
        "parameters": {
            "num_candidates": 3,
            "num_scenarios": 5,
            "seed_candidate_ids": [],
            "budget_tokens": None,
            "budget_usd": None,
            "max_runtime_s": None,
            "seed_candidates": [],
        },
    }
    assert read.reference_metrics.run_id == run
    assert not read.reference_metrics.HasField("top_i")
    assert [(i.type, value_to_python(i.value)) for i in read.invariants] == [
        ("min_candidates", 3),
        ("run_status", "COMPLETED"),
        ("custom", "evaluations == candidates * scenarios"),
    ]
    assert [s.id for s in listed] == [created.id]
    assert not listed[0].HasField("snapshot_data")
    assert (unconfirmed.code, unconfirmed.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "CONFIRMATION_REQUIRED")
    assert (malformed.code, malformed.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ID")
    await stub.DeleteSnapshot(pb.DeleteSnapshotRequest(snapshot_id=created.id, confirm=True))
    gone = await _error(stub.GetSnapshot(pb.GetSnapshotRequest(snapshot_id=created.id)))
    assert (gone.code, gone.reason) == (grpc.StatusCode.NOT_FOUND, "SNAPSHOT_NOT_FOUND")


async def test_replays_and_suites_over_grpc(world: tuple[SnapshotServiceAsyncStub, SnapshotHarness]) -> None:
    stub, harness = world
    project = harness.neighbours.spec.project()
    run = harness.neighbours.runs.reference(project, good_metrics())
    made = [
        (
            await stub.CreateSnapshot(
                pb.CreateSnapshotRequest(
                    project_id=project,
                    run_id=run,
                    name=f"suite {i} {uuid.uuid4()}",
                    invariants=[_invariant("min_candidates", 3), _invariant("custom", "top_i != null && top_i > 1.0")],
                )
            )
        ).snapshot
        for i in range(3)
    ]

    replay = await stub.ReplaySnapshot(
        pb.ReplaySnapshotRequest(
            snapshot_id=made[0].id,
            ui_trigger_id=str(uuid.uuid4()),
            options=pb.ReplayOptions(phases=pb.REPLAY_PHASES_DESIGN, num_candidates=2),
            wait=True,
        )
    )
    no_trigger = await _error(stub.ReplaySnapshot(pb.ReplaySnapshotRequest(snapshot_id=made[0].id)))
    request = pb.RunSnapshotTestsRequest(
        snapshot_ids=[s.id for s in made],
        options=pb.TestOptions(cost_limit_usd=0.25, concurrency=2, repetitions=1),
        ui_trigger_id=str(uuid.uuid4()),
    )
    events = [e async for e in stub.RunSnapshotTests(request)]
    report_id = events[0].started.report_id
    watched = [e async for e in stub.WatchTestReport(pb.WatchTestReportRequest(report_id=report_id))]
    fetched = (await stub.GetTestReport(pb.GetTestReportRequest(report_id=report_id))).report
    listed = (await stub.ListTestReports(pb.ListTestReportsRequest(page_size=1))).reports

    assert (replay.status, replay.metrics.candidates) == ("COMPLETED", 3)
    assert [value_to_python(i.actual) for i in replay.invariants] == [3, True]
    assert (no_trigger.code, no_trigger.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "TRIGGER_REQUIRED")
    told = [e.WhichOneof("event") for e in events]
    assert [k for k in told if k != "replay"] == ["started", "result", "result", "result", "report"]
    assert events[0].started.repetitions == 1
    report = events[-1].report
    assert report == fetched
    # Watched once it has ended: no replay is in progress any more, only the results and the report.
    assert [e.WhichOneof("event") for e in watched] == ["started"] + ["result"] * 3 + ["report"]
    assert report.status == pb.REPORT_STATUS_COMPLETED
    assert (report.summary.total, report.summary.passed, report.summary.skipped) == (3, 2, 1)
    assert [r.status for r in report.results] == [pb.RESULT_STATUS_PASSED] * 2 + [pb.RESULT_STATUS_SKIPPED]
    assert report.results[2].reason.startswith("cost limit")
    first = report.results[0]
    assert first.replay_run_id == first.replay_run_ids[0]
    assert first.metrics_delta["candidate_count"].baseline == 3
    assert first.metrics_delta["candidate_count"].delta == 0
    assert not first.metrics_delta["candidate_count"].flagged
    assert value_to_python(first.invariants[0].expected) == 3
    assert report.total_cost_usd == pytest.approx(0.20)
    assert report.snapshot_test_id == report.id
    assert report.options.cost_limit_usd == 0.25
    assert [r.id for r in listed] == [report.id]


async def test_an_import_stores_the_data_migrated_with_its_reference_and_no_project(
    world: tuple[SnapshotServiceAsyncStub, SnapshotHarness],
) -> None:
    stub, harness = world
    name = f"imported {uuid.uuid4()}"
    reference = pb.RunMetrics(run_id=str(uuid.uuid4()), status="COMPLETED", candidates=3, scenarios=3, top_i=2.0)
    request = pb.CreateSnapshotRequest(name=name, invariants=[_invariant("min_candidates", 3)])
    request.snapshot_data.CopyFrom(struct(SEED_1_0))
    request.reference_metrics.CopyFrom(reference)

    created = (await stub.CreateSnapshot(request)).snapshot
    read = (await stub.GetSnapshot(pb.GetSnapshotRequest(snapshot_id=created.id))).snapshot
    unreadable = pb.CreateSnapshotRequest(name=f"{name} 2")
    unreadable.snapshot_data.CopyFrom(struct({**SEED_1_0, "version": "9.0"}))
    refused = await _error(stub.CreateSnapshot(unreadable))
    misshapen = pb.CreateSnapshotRequest(name=f"{name} 4")
    misshapen.snapshot_data.CopyFrom(struct({**SEED_1_0, "problem_spec": {"goals": 5}, "run_config": 5}))
    wrong_shape = await _error(stub.CreateSnapshot(misshapen))
    # Wrong in two hundred places: refused as such, its first violations named (not a gRPC error
    # for details too large to send).
    many = pb.CreateSnapshotRequest(name=f"{name} 6")
    many.snapshot_data.CopyFrom(struct({**SEED_1_0, "problem_spec": {"goals": list(range(200))}}))
    too_many = await _error(stub.CreateSnapshot(many))
    second = pb.CreateSnapshotRequest(name=f"{name} 5")
    second.snapshot_data.CopyFrom(struct(SEED_1_0))
    second_created = (await stub.CreateSnapshot(second)).snapshot
    with_project = pb.CreateSnapshotRequest(name=f"{name} 3", project_id=harness.neighbours.spec.project())
    with_project.snapshot_data.CopyFrom(struct(SEED_1_0))
    mixed = await _error(stub.CreateSnapshot(with_project))
    into_nothing = await _error(
        stub.ReplaySnapshot(
            pb.ReplaySnapshotRequest(
                snapshot_id=created.id, ui_trigger_id=str(uuid.uuid4()), options=pb.ReplayOptions(reuse_project=True)
            )
        )
    )

    assert read == created
    # Each import keeps the name it was given (a second one included).
    assert (read.name, second_created.name) == (name, f"{name} 5")
    assert (read.project_id, read.run_id, read.version) == ("", "", "3.0")
    data = struct_to_dict(read.snapshot_data)
    # Migrated from 1.0: goals are objects, run_config.config became parameters.
    assert data["problem_spec"]["goals"] == [{"description": "carry traffic"}, {"description": "look good"}]
    assert data["run_config"]["parameters"]["num_candidates"] == 3
    assert read.reference_metrics == reference
    assert [v.field for v in refused.field_violations] == ["snapshot_data"]
    assert wrong_shape.code == grpc.StatusCode.INVALID_ARGUMENT
    assert too_many.code == grpc.StatusCode.INVALID_ARGUMENT
    assert too_many.field_violations[0].field == "snapshot_data.problem_spec.goals[0]"
    assert too_many.field_violations[-1].description == "… and 181 more like these"
    assert [v.field for v in wrong_shape.field_violations] == [
        "snapshot_data.problem_spec.goals",
        "snapshot_data.run_config",
    ]
    assert [v.field for v in mixed.field_violations] == ["project_id"]
    assert [v.field for v in into_nothing.field_violations] == ["options.reuse_project"]
