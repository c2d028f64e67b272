"""Replicas share the work: a second run service and a second agent service on the stack's database
take runs and sprints, are SIGKILLed mid-work, and the stack's own services finish everything —
each evaluation once, one summary per run, every sprint to its hello.py — while a watcher on the
stack's agent service follows a sprint the replica ran (its events reach it by LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
import websockets

from crucible.agent.v1 import sprint_service_pb2 as sp
from crucible.agent.v1 import sprint_service_pb2_grpc as sg
from crucible.run.v1 import run_service_pb2 as rp
from crucible.run.v1 import run_service_pb2_grpc as rg
from tests.conftest import free_port, repo_root
from tests.system.conftest import Stack
from tests.system.test_runs import _finished, _messages, _project
from tests.system.test_sprint_workflow import _spec

pytestmark = pytest.mark.system

RUNS_ON_REPLICA = 2
PAIRS = 4 * 5


async def _replica(stack: Stack, service: str, **env: str) -> tuple[asyncio.subprocess.Process, str]:
    """Another process of ``service`` on the stack's database and neighbours, on a port of its own."""
    address = f"127.0.0.1:{free_port()}"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        f"crucible_{service}.entrypoints.main",
        cwd=repo_root(),
        env={**stack.env, f"CRUCIBLE_{service.upper()}_ADDR": address, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, address


async def _ready(channel: grpc.aio.Channel) -> None:
    await asyncio.wait_for(channel.channel_ready(), 60)


async def _sprint_ended(http: httpx.AsyncClient, sprint_id: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sprint: dict[str, Any] = (await http.get(f"/api/sprints/{sprint_id}")).json()
        if sprint["status"] in ("completed", "failed", "cancelled"):
            return sprint
        await asyncio.sleep(0.5)
    raise AssertionError(f"sprint {sprint_id} did not end: {sprint}")


async def _follow(stack: Stack, sprint_id: str) -> AsyncIterator[dict[str, Any]]:
    url = stack.url.replace("http://", "ws://") + f"/api/ws/sprints/{sprint_id}"
    async with websockets.connect(url) as socket:
        async for frame in socket:
            yield json.loads(frame)


async def _events_until_the_end(stack: Stack, sprint_id: str) -> list[str]:
    return [event["type"] async for event in _follow(stack, sprint_id)]


async def test_replicas_killed_mid_work_lose_nothing_and_repeat_no_stored_result(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    emulator = f"http://127.0.0.1:{stack.env['CRUCIBLE_EMULATOR_PORT']}"
    async with httpx.AsyncClient() as client:
        await client.put(f"{emulator}/emulator/config", json={"latency_ms": 200})
    # Two evaluations at a time, so that the kill finds some stored, some in flight, some not begun.
    run_replica, run_address = await _replica(stack, "run", CRUCIBLE_RUN_CONCURRENCY="2")
    # The providers as `crucible up` gives them to its own agent service: the emulator.
    agent_replica, agent_address = await _replica(
        stack,
        "agent",
        CRUCIBLE_OPENAI_BASE_URL=f"{emulator}/openai/v1",
        CRUCIBLE_ANTHROPIC_BASE_URL=f"{emulator}/anthropic",
    )
    try:
        project_id = await _project(http)
        specs = [await _spec(http, "Write a Python program that prints hello world") for _ in range(2)]
        async with (
            grpc.aio.insecure_channel(run_address) as run_channel,
            grpc.aio.insecure_channel(agent_address) as agent_channel,
        ):
            await _ready(run_channel)
            await _ready(agent_channel)
            runs = rg.RunServiceStub(run_channel)
            sprints = sg.SprintServiceStub(agent_channel)
            # The sprints first: the runs' progress is what the kill waits for.
            sprint_ids = []
            for spec in specs:
                made = (await http.post("/api/sprints", json={"spec_id": spec["id"], "name": "replica"})).json()
                await sprints.StartSprint(
                    sp.StartSprintRequest(sprint_id=made["id"], trigger=sp.Trigger(id=str(uuid.uuid4()), source="api"))
                )
                sprint_ids.append(made["id"])
            run_ids = []
            for _ in range(RUNS_ON_REPLICA):
                created = await runs.CreateRun(
                    rp.CreateRunRequest(
                        project_id=project_id,
                        mode=rp.RUN_MODE_FULL_SEARCH,
                        parameters=rp.RunParameters(num_candidates=4, num_scenarios=5),
                        ui_trigger_id=str(uuid.uuid4()),
                        ui_trigger_source=rp.TRIGGER_SOURCE_INTEGRATION_TEST,
                    )
                )
                await runs.ExecuteRun(rp.ExecuteRunRequest(run_id=created.run.id))
                run_ids.append(created.run.id)
            # One watcher on the stack's agent service follows a sprint the replica is running.
            watched = asyncio.create_task(_events_until_the_end(stack, sprint_ids[0]))
            # Work on both replicas is under way: some evaluations stored, the sprints past their start.
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                stored = [
                    len((await http.get(f"/api/runs/{r}/evaluations", params={"page_size": 100})).json()["evaluations"])
                    for r in run_ids
                ]
                if min(stored) >= 3:
                    break
                await asyncio.sleep(0.05)
            at_kill = [(await http.get(f"/api/sprints/{s}")).json()["status"] for s in sprint_ids]
            run_replica.send_signal(signal.SIGKILL)
            agent_replica.send_signal(signal.SIGKILL)
            await asyncio.wait_for(asyncio.gather(run_replica.wait(), agent_replica.wait()), 10)
        assert all(0 < n < PAIRS for n in stored), stored
        assert at_kill == ["active"] * len(sprint_ids)

        # The stack's services claim the dead replicas' work once its leases lapse, and finish it.
        done = [await _finished(http, r, timeout=180) for r in run_ids]
        ended = [await _sprint_ended(http, s) for s in sprint_ids]
        events = await asyncio.wait_for(watched, 60)
    finally:
        for process in (run_replica, agent_replica):
            if process.returncode is None:
                process.kill()
                await process.wait()
        async with httpx.AsyncClient() as client:
            await client.put(f"{emulator}/emulator/config", json={"latency_ms": 0})

    for run in done:
        assert run["status"] == "COMPLETED", run["failure_reason"]
        assert run["counts"]["evaluations"] == PAIRS
        evaluations = (await http.get(f"/api/runs/{run['id']}/evaluations", params={"page_size": 100})).json()
        pairs = [(e["candidate_id"], e["scenario_id"]) for e in evaluations["evaluations"]]
        assert len(pairs) == len(set(pairs)) == PAIRS
        # Every pair's evaluation was paid for exactly once, across the replica and the stack.
        usage = (await http.get("/api/usage", params={"run_id": run["id"], "purpose": "evaluation"})).json()
        assert usage["total"]["calls"] == PAIRS
    summaries = [m for m in await _messages(http, project_id) if m["metadata"].get("run_summary")]
    assert sorted(m["metadata"]["run_summary"]["run_id"] for m in summaries) == sorted(run_ids)
    for sprint in ended:
        assert sprint["status"] == "completed", (sprint["failure_reason"], sprint["phases"])
        listing = (await http.get(f"/api/sprints/{sprint['id']}/artifacts")).json()["artifacts"]
        assert "hello.py" in [a["path"] for a in listing]
    assert events[-1] == "sprint.completed"
    assert "sprint.started" in events
