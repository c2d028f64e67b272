"""run_throughput: 20 concurrent runs of 3 candidates x 5 scenarios, two replicas of each worker service.

One machine: `crucible up` (its run service → its agent service) plus a second run service and a
second agent service on the same database, the second run service sending its model calls to the
second agent (CRUCIBLE_AGENT_ADDR). Half the runs are created and executed on each run service over
gRPC (ExecuteRun starts a run in the process that receives it); the emulator answers in 200 ms.

The bound is what a perfect system does under the LLM concurrency limit, from the settings the
processes run with. An agent process has at most ``llm_concurrency`` calls in flight per provider
(designer and evaluator share one by default), so at most L = agents x llm_concurrency x providers
calls are in flight; a run makes n calls (preflight's ``estimated_cost.calls``: design + scenarios
+ 15 evaluations = 17), and no run ends before its critical path: design ∥ scenarios, then
⌈15 ÷ run_concurrency⌉ waves of evaluations, 2 latencies. So
    bound seconds      = max(latency x (1 + ⌈C·S ÷ run_concurrency⌉), runs x n x latency ÷ L)
    runs/minute bound  = runs ÷ bound seconds x 60
At the default 64 calls per agent process the limit would hardly bind (0.53 s against a 0.4 s
critical path, on 2 cores a measure of CPU alone), so every process of the bench runs with
CRUCIBLE_LLM_CONCURRENCY=8: 20 x 17 x 0.2 ÷ 16 = 4.25 s, 282 runs per minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import httpx
import psutil
from pydantic_settings import BaseSettings

from crucible.run.v1 import run_service_pb2 as rp
from crucible.run.v1 import run_service_pb2_grpc as rg
from crucible.spec.v1 import spec_service_pb2_grpc as sg
from crucible_agent.config import AgentSettings
from crucible_run.config import RunSettings
from tests.bench.common import Result, RunningStack, stack
from tests.bench.run_pipeline import SETTLE_SECONDS, _create, _ready_project, _until_over
from tests.conftest import free_port, repo_root

NAME = "run_throughput"
RUNS = 20
CANDIDATES = 3
SCENARIOS = 5
LATENCY_SECONDS = 0.2
# Per agent process and provider: low enough that the limit, not the critical path, sets the bound.
LLM_CONCURRENCY = 8
PAIRS = 2  # run service → agent service: the stack's, and the replicas'
TIMEOUT_SECONDS = 300.0
ENDED = (rp.RUN_EVENT_TYPE_RUN_COMPLETED, rp.RUN_EVENT_TYPE_RUN_FAILED, rp.RUN_EVENT_TYPE_RUN_CANCELLED)

S = TypeVar("S", bound=BaseSettings)


@dataclass
class Measured:
    seconds: float
    calls_per_run: float
    preflight_calls: int
    # CPU seconds over the measured runs: the stack's run and agent services, then the replicas'.
    cpu: dict[str, float]


def run() -> list[Result]:
    env = {
        "CRUCIBLE_EMULATOR_LATENCY_MS": str(int(LATENCY_SECONDS * 1000)),
        "CRUCIBLE_LLM_CONCURRENCY": str(LLM_CONCURRENCY),
    }
    with stack(extra_env=env) as running:
        # The environment `crucible up` gives its services (the embedded database's URL included):
        # the replicas run with it, and the bound is worked out from it.
        service_env = _child(running, "run").environ()
        agent_env = _child(running, "agent").environ()
        logs = Path(running.env["CRUCIBLE_STATE_DIR"])
        try:
            measured = asyncio.run(_measure(running, service_env, logs))
        except BaseException as failed:
            tails = "\n".join(f"--- {p.name}:\n{p.read_text()[-3000:]}" for p in sorted(logs.glob("*2.log")))
            failed.add_note(f"the replicas' output:\n{tails}")
            raise
    agent = _settings(AgentSettings, agent_env)
    runs = _settings(RunSettings, service_env)
    providers = len({runs.run_designer_provider, runs.run_evaluator_provider})
    limit = PAIRS * agent.llm_concurrency * providers
    critical_path = LATENCY_SECONDS * (1 + math.ceil(CANDIDATES * SCENARIOS / runs.run_concurrency))
    bound_seconds = max(critical_path, RUNS * measured.preflight_calls * LATENCY_SECONDS / limit)
    per_minute = RUNS / measured.seconds * 60
    cpu = measured.cpu
    replica_share = (cpu["run2"] + cpu["agent2"]) / max(sum(cpu.values()), 1e-9)
    return [
        Result(NAME, "runs_per_minute", per_minute, "runs/min", round(RUNS / bound_seconds * 60, 2), True),
        Result(NAME, "wall_seconds", measured.seconds, "s", round(bound_seconds, 4)),
        Result(NAME, "calls_per_run", measured.calls_per_run, "count"),
        # About 0.5 when the replicas (run2 → agent2) carry their half of the work.
        Result(NAME, "replica_cpu_share", replica_share, "fraction"),
    ]


def _settings(cls: type[S], env: dict[str, str]) -> S:
    """The settings a service process reads from ``env``."""
    prefix = "CRUCIBLE_"
    values: dict[str, Any] = {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix)}
    return cls(**values)


def _child(running: RunningStack, service: str) -> psutil.Process:
    """The stack's process of ``service``."""
    module = f"crucible_{service}.entrypoints.main"
    for process in psutil.Process(running.process.pid).children(recursive=True):
        # The embedded Postgres may run as another user: its command line is not ours to read.
        with contextlib.suppress(psutil.Error):
            if module in process.cmdline():
                return process
    raise RuntimeError(f"the stack runs no {module}")


async def _replica(env: dict[str, str], service: str, log: Path) -> tuple[asyncio.subprocess.Process, str]:
    """Another process of ``service`` on the stack's database and neighbours, on a port of its own."""
    address = f"127.0.0.1:{free_port()}"
    with log.open("w") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            f"crucible_{service}.entrypoints.main",
            cwd=repo_root(),
            env={**env, f"CRUCIBLE_{service.upper()}_ADDR": address},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, address


async def _measure(running: RunningStack, service_env: dict[str, str], logs: Path) -> Measured:
    emulator = f"http://127.0.0.1:{running.env['CRUCIBLE_EMULATOR_PORT']}"
    processes: dict[str, psutil.Process] = {"run1": _child(running, "run"), "agent1": _child(running, "agent")}
    agent2, agent2_address = await _replica(
        {
            **service_env,
            "CRUCIBLE_OPENAI_BASE_URL": f"{emulator}/openai/v1",
            "CRUCIBLE_ANTHROPIC_BASE_URL": f"{emulator}/anthropic",
        },
        "agent",
        logs / "agent2.log",
    )
    run2: asyncio.subprocess.Process | None = None
    try:
        run2, run2_address = await _replica(
            {**service_env, "CRUCIBLE_AGENT_ADDR": agent2_address}, "run", logs / "run2.log"
        )
        processes |= {"run2": psutil.Process(run2.pid), "agent2": psutil.Process(agent2.pid)}
        async with asyncio.timeout(TIMEOUT_SECONDS):
            return await _throughput(running, run2_address, agent2_address, processes)
    finally:
        for process in (run2, agent2):
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()


async def _throughput(
    running: RunningStack, run2_address: str, agent2_address: str, processes: dict[str, psutil.Process]
) -> Measured:
    async with (
        grpc.aio.insecure_channel(running.env["CRUCIBLE_SPEC_ADDR"]) as spec_channel,
        grpc.aio.insecure_channel(running.env["CRUCIBLE_RUN_ADDR"]) as run1_channel,
        grpc.aio.insecure_channel(run2_address) as run2_channel,
        grpc.aio.insecure_channel(agent2_address) as agent2_channel,
        httpx.AsyncClient(base_url=running.url, timeout=30) as http,
    ):
        for channel in (run2_channel, agent2_channel):
            await asyncio.wait_for(channel.channel_ready(), 60)
        services = [rg.RunServiceStub(run1_channel), rg.RunServiceStub(run2_channel)]
        project_id = await _ready_project(sg.SpecServiceStub(spec_channel))
        preflight = (
            await http.post(
                f"/api/projects/{project_id}/runs/preflight",
                json={"mode": "full_search", "parameters": {"num_candidates": CANDIDATES, "num_scenarios": SCENARIOS}},
            )
        ).json()
        if not preflight["ready"]:
            raise RuntimeError(f"the benchmark's runs are not ready to run: {preflight['blocker_details']}")
        # Settled (the agent services import their provider SDKs just after start) and warm: a
        # small run on each pair opens every connection the measured ones use.
        await asyncio.sleep(SETTLE_SECONDS)
        await asyncio.gather(*(_warm(runs, project_id) for runs in services))

        # Half the runs on each run service, each executed where it was created.
        placed = [
            (services[i % PAIRS], await _create(services[i % PAIRS], project_id, CANDIDATES, SCENARIOS))
            for i in range(RUNS)
        ]
        cpu_before = {name: _cpu(p) for name, p in processes.items()}
        started = time.perf_counter()
        ended = await asyncio.gather(*(_execute(runs, run_id) for runs, run_id in placed))
        seconds = max(ended) - started
        cpu = {name: _cpu(p) - cpu_before[name] for name, p in processes.items()}

        calls = 0
        for runs, run_id in placed:
            found = (await runs.GetRun(rp.GetRunRequest(run_id=run_id))).run
            _check(found)
            calls += found.usage.calls
        # Every summary posted: the stack stops on a quiet database.
        await asyncio.gather(*(_until_over(runs, run_id) for runs, run_id in placed))
    return Measured(seconds, calls / RUNS, int(preflight["estimated_cost"]["calls"]), cpu)


async def _warm(runs: rg.RunServiceAsyncStub, project_id: str) -> None:
    run_id = await _create(runs, project_id, 2, 2)
    await _execute(runs, run_id)
    _check((await runs.GetRun(rp.GetRunRequest(run_id=run_id))).run, 2, 2)
    await _until_over(runs, run_id)


async def _execute(runs: rg.RunServiceAsyncStub, run_id: str) -> float:
    """ExecuteRun, then the moment its end event arrives."""
    await runs.ExecuteRun(rp.ExecuteRunRequest(run_id=run_id))
    async for response in runs.WatchRun(rp.WatchRunRequest(run_id=run_id)):
        if response.event.type in ENDED:
            return time.perf_counter()
    raise RuntimeError(f"run {run_id}: its watch ended before the run did")


def _check(run: rp.Run, candidates: int = CANDIDATES, scenarios: int = SCENARIOS) -> None:
    """A benchmark of broken runs is worthless: every run COMPLETED, with every evaluation."""
    counts = run.counts
    if (
        run.status != rp.RUN_STATUS_COMPLETED
        or counts.candidates != candidates
        or counts.scenarios != scenarios
        or counts.evaluations != candidates * scenarios
        or counts.failed_evaluations
    ):
        raise RuntimeError(
            f"run {run.id} ended {rp.RunStatus.Name(run.status)} ({run.failure_reason or 'no failure reason'}) with "
            f"{counts.candidates} candidates, {counts.scenarios} scenarios, {counts.evaluations} evaluations "
            f"({counts.failed_evaluations} failed); {candidates * scenarios} evaluations expected"
        )


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system
