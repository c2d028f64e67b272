"""snapshot_suite: a suite of 10 snapshots of a 3 x 5 run, replayed at once, through the real services.

Seconds from RunSnapshotTests to its report, the median of three suites, against the emulator at
200 ms per call. Each replay restores its snapshot into a new project and runs it: its critical
path is design ∥ scenarios (one call each), then its 15 evaluations in one wave — 2 x 200 ms =
0.4 s, the bound, since the ten replays run side by side (target ratio ≤ 2).
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
import uuid

import grpc

from crucible.run.v1 import run_service_pb2 as rp
from crucible.run.v1 import run_service_pb2_grpc as rg
from crucible.snapshot.v1 import snapshot_service_pb2 as pb
from crucible.snapshot.v1 import snapshot_service_pb2_grpc as pg
from crucible.spec.v1 import spec_service_pb2_grpc as sg
from crucible_common.protobuf import value
from tests.bench.common import CpuMeter, Result, stack
from tests.bench.run_pipeline import SETTLE_SECONDS, _create, _ready_project, _until_over

SNAPSHOTS = 10
SUITES = 3
CANDIDATES = 3
SCENARIOS = 5
LATENCY_SECONDS = 0.2
RUN_CONCURRENCY = 50


def run() -> list[Result]:
    env = {
        "CRUCIBLE_EMULATOR_LATENCY_MS": str(int(LATENCY_SECONDS * 1000)),
        "CRUCIBLE_RUN_CONCURRENCY": str(RUN_CONCURRENCY),
        "CRUCIBLE_SNAPSHOT_CONCURRENCY": str(SNAPSHOTS),
        "CRUCIBLE_LLM_CONCURRENCY": str(SNAPSHOTS * CANDIDATES * SCENARIOS),
    }
    with stack(extra_env=env) as running:
        seconds, passed, spent = asyncio.run(
            _suites(
                running.env["CRUCIBLE_SPEC_ADDR"],
                running.env["CRUCIBLE_RUN_ADDR"],
                running.env["CRUCIBLE_SNAPSHOT_ADDR"],
                CpuMeter(running),
            )
        )
    waves = math.ceil(CANDIDATES * SCENARIOS / RUN_CONCURRENCY)
    bound = LATENCY_SECONDS * (1 + waves)
    # What one replay costs each process (restore, run, watch, measure, its share of the report):
    # ten replays side by side on two cores reach the bound only if their CPU fits in it.
    cpu = [
        Result("snapshot_suite", f"cpu_ms_per_replay_{process}", seconds_spent * 1000 / (SUITES * SNAPSHOTS), "ms")
        for process, seconds_spent in spent.items()
        if process != "gateway"
    ]
    return [
        Result("snapshot_suite", "wall_seconds", seconds, "s", bound),
        Result("snapshot_suite", "passed", passed, "count"),
        *cpu,
    ]


async def _suites(
    spec_address: str, run_address: str, snapshot_address: str, meter: CpuMeter
) -> tuple[float, int, dict[str, float]]:
    async with (
        grpc.aio.insecure_channel(spec_address) as spec_channel,
        grpc.aio.insecure_channel(run_address) as run_channel,
        grpc.aio.insecure_channel(snapshot_address) as snapshot_channel,
    ):
        runs = rg.RunServiceStub(run_channel)
        snapshots = pg.SnapshotServiceStub(snapshot_channel)
        project_id = await _ready_project(sg.SpecServiceStub(spec_channel))
        await asyncio.sleep(SETTLE_SECONDS)
        run_id = await _create(runs, project_id, CANDIDATES, SCENARIOS)
        await runs.ExecuteRun(rp.ExecuteRunRequest(run_id=run_id))
        await _until_over(runs, run_id)
        ids = []
        for i in range(SNAPSHOTS):
            made = await snapshots.CreateSnapshot(
                pb.CreateSnapshotRequest(
                    project_id=project_id,
                    run_id=run_id,
                    name=f"bench {uuid.uuid4()} {i}",
                    invariants=[pb.Invariant(type="min_candidates", value=value(CANDIDATES))],
                )
            )
            ids.append(made.snapshot.id)
        # Warm: one replay opens the connections and fills the caches the suites use.
        await _suite(snapshots, ids[:1])
        timings = []
        before = meter.read()
        for _ in range(SUITES):
            started = time.perf_counter()
            report = await _suite(snapshots, ids)
            timings.append(time.perf_counter() - started)
            if report.summary.passed != SNAPSHOTS:
                raise RuntimeError(f"the benchmark suite did not pass: {report}")
        return statistics.median(timings), report.summary.passed, CpuMeter.spent(before, meter.read())


async def _suite(snapshots: pg.SnapshotServiceAsyncStub, ids: list[str]) -> pb.TestReport:
    request = pb.RunSnapshotTestsRequest(
        snapshot_ids=ids, ui_trigger_id=str(uuid.uuid4()), options=pb.TestOptions(concurrency=len(ids))
    )
    async for response in snapshots.RunSnapshotTests(request):
        if response.HasField("report"):
            return response.report
    raise RuntimeError("the suite's stream ended without a report")
