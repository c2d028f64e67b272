"""run_pipeline: one run of 10 candidates x 20 scenarios through the real services and the emulator.

Seconds from ExecuteRun to the run's COMPLETED event on WatchRun, the median of five runs. At
200 ms per model call with 50 evaluations in flight, the critical path is design ∥ scenarios (one
call each), then ⌈200 ÷ 50⌉ waves of evaluations: 5 x 200 ms = 1.0 s, the bound.
``run_pipeline_overhead`` is the same run with the emulator answering at once: what Crucible
itself costs (target ≤ 1.0 s). Both print the CPU each process spent per evaluation over the
five runs, which other load on a shared machine moves less than it moves their wall times, and
where the wall time went (medians, by the times the run service gave its phase events; a watcher
reads at most every 200 ms, so when it sees them says less): until the evaluate phase started
(bound: one call), the evaluate phase (bound: its waves), and from its end to COMPLETED seen; and
each wave of the evaluate phase (bound: one call), which shows where the phase's time goes over.

And where an evaluation call's time went beyond the model's, from the spans the stack itself
traced (the run service's client span of each evaluation ``Complete``, the agent service's server
span of it and the ``chat`` span inside), median and 90th percentile over the five runs' calls:
reaching the agent's handler (sending, and the handler's turn on a busy machine), the handler up to
the model call (checks, the key's claim), the model call beyond the emulator's latency (SDK,
emulator, re-asks), storing the call, and the answer's way back.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import field_mask_pb2, struct_pb2

from crucible.run.v1 import run_service_pb2 as rp
from crucible.run.v1 import run_service_pb2_grpc as rg
from crucible.spec.v1 import spec_service_pb2 as sp
from crucible.spec.v1 import spec_service_pb2_grpc as sg
from crucible_common.trace_files import read_spans
from tests.bench.common import CpuMeter, Result, stack

# The stack is measured settled: the agent service imports its provider SDKs just after start.
SETTLE_SECONDS = 6.0
RUNS = 5
CANDIDATES = 10
SCENARIOS = 20
CONCURRENCY = 50
LATENCY_SECONDS = 0.2
# The agent service's RPC whose client span (run service) and server span (agent service) an
# evaluation call is.
COMPLETE_METHOD = "/crucible.agent.v1.AgentService/Complete"


def run() -> list[Result]:
    return [*_measure("run_pipeline", LATENCY_SECONDS), *_measure("run_pipeline_overhead", 0.0)]


def _measure(name: str, latency: float) -> list[Result]:
    env = {
        "CRUCIBLE_EMULATOR_LATENCY_MS": str(int(latency * 1000)),
        "CRUCIBLE_RUN_CONCURRENCY": str(CONCURRENCY),
        "CRUCIBLE_LLM_CONCURRENCY": str(CONCURRENCY * 2),
    }
    with tempfile.TemporaryDirectory(prefix="crucible-bench-") as tmp:
        state = Path(tmp) / "state"
        with stack(state_dir=state, extra_env=env) as running:
            timings, evaluations, spent, trace_ids = asyncio.run(
                _one_run(running.env["CRUCIBLE_SPEC_ADDR"], running.env["CRUCIBLE_RUN_ADDR"], CpuMeter(running))
            )
        # Read once the stack has stopped: every process has exported its last spans by then.
        spans = read_spans(state / "traces", trace_ids)
    runs_calls = [list(_evaluation_calls([s for s in spans if s["trace_id"] == trace_id])) for trace_id in trace_ids]
    # One Complete a pair: a partial trace would print figures of some calls as if of all.
    for trace_id, run_calls in zip(trace_ids, runs_calls, strict=True):
        if len(run_calls) != CANDIDATES * SCENARIOS:
            raise RuntimeError(
                f"{len(run_calls)} evaluation calls traced in trace {trace_id}, of {CANDIDATES * SCENARIOS}"
            )
    calls = [call for run_calls in runs_calls for call in run_calls]
    waves = math.ceil(CANDIDATES * SCENARIOS / CONCURRENCY)
    bound = latency * (1 + waves) if latency else 1.0
    phases = [
        Result(name, "seconds_to_evaluate_phase", _median(timings, lambda t: t.evaluate_started), "s", latency or None),
        Result(
            name, "evaluate_phase_seconds", _median(timings, lambda t: t.evaluate_phase), "s", latency * waves or None
        ),
        Result(name, "seconds_after_evaluate_phase", _median(timings, lambda t: t.after_evaluate), "s"),
    ]
    # What a run costs each process, per evaluation (its design and scenario calls included): the
    # bound can only be reached when the evaluations' CPU fits into their waves on two cores.
    cpu = [
        Result(name, f"cpu_ms_per_evaluation_{process}", seconds_spent * 1000 / (RUNS * evaluations), "ms")
        for process, seconds_spent in spent.items()
        if process in ("run", "agent", "emulator", "postgres")
    ]
    wall = Result(name, "wall_seconds", _median(timings, lambda t: t.wall), "s", bound)
    return [
        wall,
        Result(name, "evaluations", evaluations, "count"),
        *phases,
        *_waves(name, runs_calls, latency),
        *cpu,
        *_call_parts(name, calls, latency),
    ]


def _waves(name: str, runs_calls: list[list[_Call]], latency: float) -> list[Result]:
    """Each wave's seconds (median over the runs): from the previous wave's last answer (the first
    wave: from the first call sent) to this one's last answer, a wave being the next CONCURRENCY
    calls in the order they were sent. Bound: one model call each. Calls sent together come back
    together, and the services' work on a wave's answers and on the next wave's calls then queues
    on two cores: the first waves pay for it most, until the calls have spread out."""
    waves = math.ceil(CANDIDATES * SCENARIOS / CONCURRENCY)
    seconds: list[list[float]] = [[] for _ in range(waves)]
    for run_calls in runs_calls:
        in_order = sorted(run_calls, key=lambda c: c.sent)
        before = in_order[0].sent
        for wave in range(waves):
            ended = max(c.answered for c in in_order[wave * CONCURRENCY : (wave + 1) * CONCURRENCY])
            seconds[wave].append((ended - before) / 1e9)
            before = ended
    return [
        Result(name, f"evaluate_wave_{wave + 1}_seconds", statistics.median(values), "s", latency or None)
        for wave, values in enumerate(seconds)
    ]


@dataclass(frozen=True)
class _Call:
    """One evaluation call's moments (ns): the run service's client span, the agent service's
    server span and its ``chat`` span."""

    sent: int
    answered: int
    handled: int
    handler_done: int
    model_asked: int
    model_answered: int


def _call_parts(name: str, calls: list[_Call], latency: float) -> list[Result]:
    parts: dict[str, Callable[[_Call], float]] = {
        "to_handler": lambda c: c.handled - c.sent,
        "before_model": lambda c: c.model_asked - c.handled,
        "model_beyond_latency": lambda c: c.model_answered - c.model_asked - latency * 1e9,
        "after_model": lambda c: c.handler_done - c.model_answered,
        "back": lambda c: c.answered - c.handler_done,
    }
    results = []
    for part, of in parts.items():
        values = sorted(of(c) / 1e6 for c in calls)
        results.append(Result(name, f"evaluation_call_{part}_ms", statistics.median(values), "ms"))
        results.append(Result(name, f"evaluation_call_{part}_p90_ms", values[int(0.9 * (len(values) - 1))], "ms"))
    return results


def _evaluation_calls(run_spans: list[dict[str, Any]]) -> Iterator[_Call]:
    """The evaluation calls among one run's spans, as the run and agent services traced them."""
    spans = {s["span_id"]: s for s in run_spans}
    for chat in spans.values():
        if chat["attributes"].get("crucible.purpose") != "evaluation":
            continue
        server = spans.get(chat["parent_span_id"] or "")
        client = spans.get(server["parent_span_id"] or "") if server else None
        if server is None or client is None or server["name"] != COMPLETE_METHOD or client["name"] != COMPLETE_METHOD:
            raise RuntimeError(f"an evaluation call's spans are not client → server → chat: {chat['span_id']}")
        yield _Call(
            client["start_ns"], client["end_ns"], server["start_ns"], server["end_ns"], chat["start_ns"], chat["end_ns"]
        )


@dataclass(frozen=True)
class _Timing:
    """One run's seconds: in all, until the evaluate phase started, in it, and after it."""

    wall: float
    evaluate_started: float
    evaluate_phase: float
    after_evaluate: float


def _median(timings: list[_Timing], what: Callable[[_Timing], float]) -> float:
    return statistics.median(what(t) for t in timings)


async def _one_run(
    spec_address: str, run_address: str, meter: CpuMeter
) -> tuple[list[_Timing], int, dict[str, float], list[str]]:
    async with (
        grpc.aio.insecure_channel(spec_address) as spec_channel,
        grpc.aio.insecure_channel(run_address) as run_channel,
    ):
        spec = sg.SpecServiceStub(spec_channel)
        runs = rg.RunServiceStub(run_channel)
        project_id = await _ready_project(spec)
        await asyncio.sleep(SETTLE_SECONDS)
        # Warm: a small run opens every connection the big one uses.
        await _complete(runs, project_id, 2, 2)
        timings: list[_Timing] = []
        trace_ids: list[str] = []
        before = meter.read()
        for _ in range(RUNS):
            run_id = await _create(runs, project_id, CANDIDATES, SCENARIOS)
            # The services run on this machine: their clock is this one.
            started, started_at = time.perf_counter(), time.time()
            seen: dict[str, float] = {}
            await runs.ExecuteRun(rp.ExecuteRunRequest(run_id=run_id))
            async for response in runs.WatchRun(rp.WatchRunRequest(run_id=run_id)):
                event = response.event
                if event.data.fields.get("phase", struct_pb2.Value()).string_value == "evaluate":
                    at = event.time.ToNanoseconds() / 1e9 - started_at
                    if event.type == rp.RUN_EVENT_TYPE_PHASE_STARTED:
                        seen["evaluate_started"] = at
                    elif event.type == rp.RUN_EVENT_TYPE_PHASE_COMPLETED:
                        seen["evaluate_completed"] = at
                if event.type in (rp.RUN_EVENT_TYPE_RUN_COMPLETED, rp.RUN_EVENT_TYPE_RUN_FAILED):
                    break
            wall = time.perf_counter() - started
            # COMPLETED seen, on the clock the phase events' times are read on.
            seen_completed = time.time() - started_at
            run = (await runs.GetRun(rp.GetRunRequest(run_id=run_id))).run
            trace_ids.append(run.trace_id)
            if run.status != rp.RUN_STATUS_COMPLETED:
                raise RuntimeError(f"the benchmark run ended {rp.RunStatus.Name(run.status)}: {run.failure_reason}")
            evaluate_started, evaluate_completed = seen["evaluate_started"], seen["evaluate_completed"]
            timings.append(
                _Timing(
                    wall, evaluate_started, evaluate_completed - evaluate_started, seen_completed - evaluate_completed
                )
            )
            # The previous run's summary is posted: the next one starts on a quiet stack.
            await _until_over(runs, run_id)
        return timings, run.counts.evaluations, CpuMeter.spent(before, meter.read()), trace_ids


async def _ready_project(spec: sg.SpecServiceAsyncStub) -> str:
    project = (await spec.CreateProject(sp.CreateProjectRequest(title="bench"))).project
    await spec.UpdateProblemSpec(
        sp.UpdateProblemSpecRequest(
            allow_missing=True,
            problem_spec=sp.ProblemSpec(
                project_id=project.id,
                constraints=[sp.Constraint(name="budget", description="must stay under budget", weight=100)],
                goals=[sp.Goal(description="carry traffic across the river")],
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["constraints", "goals"]),
        )
    )
    data = struct_pb2.Struct()
    data.update({"actors": [{"name": "commuters", "description": "people crossing the river"}]})
    await spec.UpdateWorldModel(
        sp.UpdateWorldModelRequest(
            allow_missing=True,
            world_model=sp.WorldModel(project_id=project.id, model_data=data),
            update_mask=field_mask_pb2.FieldMask(paths=["model_data"]),
        )
    )
    return project.id


async def _create(runs: rg.RunServiceAsyncStub, project_id: str, candidates: int, scenarios: int) -> str:
    run = (
        await runs.CreateRun(
            rp.CreateRunRequest(
                project_id=project_id,
                mode=rp.RUN_MODE_FULL_SEARCH,
                parameters=rp.RunParameters(num_candidates=candidates, num_scenarios=scenarios),
                ui_trigger_id=str(uuid.uuid4()),
                ui_trigger_source=rp.TRIGGER_SOURCE_INTEGRATION_TEST,
            )
        )
    ).run
    return run.id


async def _complete(runs: rg.RunServiceAsyncStub, project_id: str, candidates: int, scenarios: int) -> None:
    run_id = await _create(runs, project_id, candidates, scenarios)
    await runs.ExecuteRun(rp.ExecuteRunRequest(run_id=run_id))
    await _until_over(runs, run_id)


async def _until_over(runs: rg.RunServiceAsyncStub, run_id: str) -> None:
    """The watch ends once the run has ended and its summary is posted."""
    async for _ in runs.WatchRun(rp.WatchRunRequest(run_id=run_id)):
        pass
