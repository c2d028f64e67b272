"""Recorded replay end to end: the run pipeline, the real agent service and its call log, the emulator.

A run is replayed from another's calls as the agent service stored them (the recording key
``run:<id>``), with no recording made for it: no request reaches a model, every call of the replay
is in the call log as replayed at $0, and the ranking is the source's, candidate for candidate. A
replay that asks what its source never did fails saying so; a suite's calls are summed by its id.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from crucible.agent.v1 import agent_service_pb2 as pb
from crucible.agent.v1 import agent_service_pb2_grpc as pb_grpc
from crucible_agent import bootstrap as agent_bootstrap
from crucible_common.database import migrate
from crucible_run.adapters.agent_client import AgentModels
from crucible_run.domain.model import RankedCandidate, Run, RunStatus
from crucible_run.service_layer import handlers as h
from tests.integration.agent_fixtures import Emulator, agent_core, agent_settings, agent_stub, serve_emulator
from tests.integration.run_harness import Harness, run_engine

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with run_engine(database_url) as engine:
        await migrate(engine, schema="agent", script_location=agent_bootstrap.MIGRATIONS)
        yield engine


@pytest.fixture(scope="module")
async def emulator() -> AsyncIterator[Emulator]:
    async with serve_emulator() as running:
        yield running


@pytest.fixture
async def agent(engine: AsyncEngine, emulator: Emulator) -> AsyncIterator[pb_grpc.AgentServiceAsyncStub]:
    await emulator.configure()
    async with agent_core(engine, agent_settings(emulator)) as core, agent_stub(core) as stub:
        yield stub


@pytest.fixture
async def harness(engine: AsyncEngine, agent: pb_grpc.AgentServiceAsyncStub) -> AsyncIterator[Harness]:
    made = Harness.make(engine, agent=AgentModels(agent, call_timeout=60, wait_seconds=5))
    yield made
    await made.close()


async def _usage(agent: pb_grpc.AgentServiceAsyncStub, **filter_: str) -> pb.Usage:
    return (await agent.GetUsage(pb.GetUsageRequest(filter=pb.Correlation(**filter_)))).total


async def _ranked(harness: Harness, run: Run) -> list[tuple[object, ...]]:
    _, ranking = await h.run_results(run.id, harness.deps.uow)
    return [_said(r) for r in ranking]


def _said(r: RankedCandidate) -> tuple[object, ...]:
    return (r.rank, r.title, r.label, r.i, r.p, r.r, r.violated_constraints, r.evaluations, r.failed_evaluations)


async def test_a_run_replayed_from_the_call_log_pays_nothing_and_ranks_identically(
    harness: Harness, agent: pb_grpc.AgentServiceAsyncStub, emulator: Emulator
) -> None:
    project = harness.spec.project()
    source = await harness.run(project, num_candidates=3, num_scenarios=2)
    assert source.status is RunStatus.COMPLETED, source.failure_reason
    served = await emulator.requests_served()
    suite = f"suite-{uuid.uuid4()}"

    # Into another project with the same problem, as a snapshot's replay restores it: the requests
    # carry the problem, the candidates and the scenarios, never an id.
    elsewhere = harness.spec.project()
    replay = await harness.run(elsewhere, replay_of=source.id, suite=suite, num_candidates=3, num_scenarios=2)

    assert replay.status is RunStatus.COMPLETED, replay.failure_reason
    assert await emulator.requests_served() == served
    paid, replayed = await _usage(agent, run_id=source.id), await _usage(agent, run_id=replay.id)
    assert paid.usd > 0
    # 1 design + 1 scenarios + 6 evaluations, each answered from the source's call, at $0.
    assert (replayed.calls, replayed.replayed_calls, replayed.failed_calls, replayed.usd) == (8, 8, 0, 0.0)
    assert replay.usage.usd == 0.0
    ranking = await _ranked(harness, replay)
    assert ranking == await _ranked(harness, source)
    assert len(ranking) == 3
    # The suite's cost is what its runs' calls recorded: here, nothing.
    suite_usage = await _usage(agent, snapshot_test_id=suite)
    assert (suite_usage.calls, suite_usage.usd) == (8, 0.0)
    calls = await agent.ListLlmCalls(pb.ListLlmCallsRequest(filter=pb.Correlation(run_id=replay.id), page_size=50))
    assert {x.status for x in calls.llm_calls} == {pb.LLM_CALL_STATUS_REPLAYED}
    assert {x.correlation.snapshot_test_id for x in calls.llm_calls} == {suite}


async def test_a_replay_that_diverges_fails_with_the_reason_and_pays_nothing(
    harness: Harness, agent: pb_grpc.AgentServiceAsyncStub, emulator: Emulator
) -> None:
    project = harness.spec.project()
    source = await harness.run(project, num_candidates=2, num_scenarios=2)
    served = await emulator.requests_served()

    replay = await harness.run(project, replay_of=source.id, num_candidates=3, num_scenarios=2)

    assert replay.status is RunStatus.FAILED
    assert replay.failure_reason.startswith(
        f"the replay diverged from run {source.id}: that run never made this design call (request "
    )
    assert await emulator.requests_served() == served
    assert (await _usage(agent, run_id=replay.id)).usd == 0.0
    assert replay.counts.candidates == 0


async def test_a_live_suite_run_costs_what_its_calls_recorded(
    harness: Harness, agent: pb_grpc.AgentServiceAsyncStub
) -> None:
    suite = f"suite-{uuid.uuid4()}"

    run = await harness.run(harness.spec.project(), suite=suite, num_candidates=2, num_scenarios=2)

    assert run.status is RunStatus.COMPLETED, run.failure_reason
    by_suite, by_run = await _usage(agent, snapshot_test_id=suite), await _usage(agent, run_id=run.id)
    assert by_suite.calls == by_run.calls == 6
    assert by_suite.usd == pytest.approx(by_run.usd)
    assert by_suite.usd > 0
