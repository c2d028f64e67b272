"""Killing the agent service mid-sprint: a new process continues it without redoing finished phases."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from crucible.agent.v1 import agent_service_pb2 as agent_pb
from crucible.agent.v1 import agent_service_pb2_grpc as agent_grpc
from crucible.agent.v1 import sprint_service_pb2 as pb
from crucible.agent.v1 import sprint_service_pb2_grpc as pb_grpc
from tests.conftest import free_port, fresh_database, repo_root
from tests.integration.agent_fixtures import Emulator, serve_emulator

pytestmark = pytest.mark.system


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with serve_emulator() as running:
        # Slow enough that the kill lands inside a phase.
        await running.configure(latency_ms=250)
        yield running


def _agent(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "crucible_agent.entrypoints.main"],
        cwd=repo_root(),
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


async def _serving(address: str, timeout: float = 60) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with grpc.aio.insecure_channel(address) as channel:
            try:
                reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"agent service not serving on {address}")


async def test_a_restarted_agent_service_finishes_the_sprint_without_redoing_phases(
    postgres_admin_url: str, emulator: Emulator, tmp_path: Path
) -> None:
    async with fresh_database(postgres_admin_url, "restart") as database_url:
        address = f"127.0.0.1:{free_port()}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRUCIBLE_")}
        env.update(
            CRUCIBLE_DATABASE_URL=database_url,
            CRUCIBLE_AGENT_ADDR=address,
            CRUCIBLE_STATE_DIR=str(tmp_path),
            OPENAI_API_KEY="test",
            ANTHROPIC_API_KEY="test",
            CRUCIBLE_OPENAI_BASE_URL=f"{emulator.url}/openai/v1",
            CRUCIBLE_ANTHROPIC_BASE_URL=f"{emulator.url}/anthropic",
            CRUCIBLE_SHUTDOWN_GRACE_SECONDS="1",
        )
        log = tmp_path / "agent.log"
        first = _agent(env, log)
        second: subprocess.Popen[bytes] | None = None
        try:
            await _serving(address)
            async with grpc.aio.insecure_channel(address) as channel:
                sprints = pb_grpc.SprintServiceStub(channel)
                spec = pb.SpecSnapshot(
                    spec_id="5f0c6a3e-1b2c-4d5e-8f90-123456789abc",
                    title="hello",
                    task="Create a Python script that prints 'hello world' to stdout.",
                    planning_status=pb.PLANNING_STATUS_ANSWERED,
                    answers=[pb.PlanningAnswer(question="Output?", answer="Exactly hello world.")],
                )
                sprint = (await sprints.CreateSprint(pb.CreateSprintRequest(name="restart", spec=spec))).sprint
                await sprints.StartSprint(
                    pb.StartSprintRequest(sprint_id=sprint.id, trigger=pb.Trigger(id="t-1", source="test"))
                )
                # Wait until Discovery is done and Coding has begun, then kill the process outright.
                deadline = time.monotonic() + 90
                while time.monotonic() < deadline:
                    current = (await sprints.GetSprint(pb.GetSprintRequest(sprint_id=sprint.id))).sprint
                    if any(p.phase == pb.SPRINT_PHASE_CODING for p in current.phases):
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError(f"coding never started: {current}")
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            discovery = next(p for p in current.phases if p.phase == pb.SPRINT_PHASE_DISCOVERY)
            assert discovery.status == pb.PHASE_ATTEMPT_STATUS_COMPLETED

            second = _agent(env, log)
            await _serving(address)
            async with grpc.aio.insecure_channel(address) as channel:
                sprints = pb_grpc.SprintServiceStub(channel)
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    final = (await sprints.GetSprint(pb.GetSprintRequest(sprint_id=sprint.id))).sprint
                    if final.status in (pb.SPRINT_STATUS_COMPLETED, pb.SPRINT_STATUS_FAILED):
                        break
                    await asyncio.sleep(0.25)
                assert final.status == pb.SPRINT_STATUS_COMPLETED, (final, log.read_text()[-3000:])
                discoveries = [p for p in final.phases if p.phase == pb.SPRINT_PHASE_DISCOVERY]
                assert len(discoveries) == 1
                assert discoveries[0].agent_run_id == discovery.agent_run_id
                usage = await agent_grpc.AgentServiceStub(channel).GetUsage(
                    agent_pb.GetUsageRequest(filter=agent_pb.Correlation(agent_run_id=discovery.agent_run_id))
                )
                assert usage.total.calls == 3  # its two planners and its judge, paid once
        finally:
            for process in (first, second):
                if process is not None and process.poll() is None:
                    process.terminate()
                    process.wait(10)
