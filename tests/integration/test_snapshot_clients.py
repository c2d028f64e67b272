"""The snapshot service's clients against the real spec and run services over gRPC: a project's state
captured whole and restored into another project (provenance naming the snapshot); a replay's run
created once per trigger, executed, followed to its end and measured like its reference."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import pytest

from crucible.common.v1 import actor_pb2
from crucible.run.v1 import run_service_pb2_grpc
from crucible.spec.v1 import spec_service_pb2 as pb
from crucible_common.errors import RelayedError
from crucible_common.grpc_server import ServiceDefinition, create_server
from crucible_common.protobuf import struct
from crucible_run.entrypoints.grpc_servicer import RunServicer
from crucible_snapshot.adapters.run_client import RunClient
from crucible_snapshot.adapters.spec_client import SpecClient
from crucible_snapshot.domain.errors import ProjectNotFound
from crucible_snapshot.domain.model import RunPhase
from crucible_snapshot.domain.snapshot_data import RunConfig, RunParameters, SnapshotData
from crucible_snapshot.service_layer.ports import NewRun
from tests.integration.run_harness import Harness, run_engine

if TYPE_CHECKING:  # the async stub type exists only in the generated .pyi
    from crucible.spec.v1.spec_service_pb2_grpc import SpecServiceAsyncStub

pytestmark = pytest.mark.integration


async def test_a_project_is_captured_whole_and_restored_into_another(spec_stub: SpecServiceAsyncStub) -> None:
    client = SpecClient(spec_stub, timeout=10)
    project = (await spec_stub.CreateProject(pb.CreateProjectRequest(title="Source"))).project.id
    user = actor_pb2.Actor(kind=actor_pb2.ACTOR_KIND_USER, id="ada")
    await spec_stub.UpdateProblemSpec(
        pb.UpdateProblemSpecRequest(
            problem_spec=pb.ProblemSpec(
                project_id=project,
                constraints=[pb.Constraint(name="budget", description="under budget", weight=100)],
                goals=[pb.Goal(description="carry traffic")],
                resolution=pb.RESOLUTION_COARSE,
                mode=pb.RUN_MODE_FULL_SEARCH,
            ),
            allow_missing=True,
            actor=user,
            reason="first draft",
        )
    )
    await spec_stub.UpdateWorldModel(
        pb.UpdateWorldModelRequest(
            world_model=pb.WorldModel(project_id=project, model_data=struct({"actors": [{"name": "commuters"}]})),
            allow_missing=True,
            actor=user,
        )
    )
    session = (
        await spec_stub.CreateChatSession(
            pb.CreateChatSessionRequest(project_id=project, mode=pb.CHAT_SESSION_MODE_SETUP)
        )
    ).chat_session.id
    for i in range(4):
        await spec_stub.CreateChatMessage(
            pb.CreateChatMessageRequest(chat_session_id=session, role=pb.MESSAGE_ROLE_USER, content=f"message {i}")
        )

    state = await client.capture(project, 3)

    assert state.problem_spec is not None
    assert state.problem_spec.constraints[0].weight == 100
    assert (state.problem_spec.resolution, state.problem_spec.mode) == ("coarse", "full_search")
    (entry,) = state.problem_spec.provenance_log
    assert (entry.actor.kind, entry.actor.id, entry.reason) == ("user", "ada", "first draft")
    assert state.world_model is not None
    assert state.world_model.model_data["actors"] == [{"name": "commuters"}]
    assert len(state.world_model.provenance) == 1
    assert [m.content for m in state.chat_context] == ["message 1", "message 2", "message 3"]

    target = await client.create_project("Replay: source", "restored", "7d3c29a2-4c6e-4a43-9d2c-4c7f1b1c2f11")
    data = SnapshotData(state.problem_spec, state.world_model, RunConfig())
    await client.restore(target, data, "restored from snapshot s (id)")

    copied = await client.capture(target, 0)
    assert copied.problem_spec is not None
    assert copied.problem_spec.constraints == state.problem_spec.constraints
    assert copied.problem_spec.goals == state.problem_spec.goals
    assert copied.world_model is not None
    assert copied.world_model.model_data == state.world_model.model_data
    (restored,) = copied.problem_spec.provenance_log
    assert (restored.actor.kind, restored.actor.id) == ("system", "snapshot-restore")
    assert restored.reason == "restored from snapshot s (id)"
    await client.delete_project(target)
    with pytest.raises(ProjectNotFound):
        await client.capture(target, 0)


@pytest.fixture(scope="module")
async def run_stub(database_url: str) -> AsyncIterator[RunClient]:
    """The real run service (servicer, interceptors, repositories) with its own neighbours faked."""
    async with run_engine(database_url) as engine:
        harness = Harness.make(engine)
        servicer = RunServicer(harness.deps)
        definition = ServiceDefinition(
            "crucible.run.v1.RunService",
            lambda server: run_service_pb2_grpc.add_RunServiceServicer_to_server(servicer, server),
        )
        server, port, _ = create_server("127.0.0.1:0", [definition], domain="run.crucible")
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        client = RunClient(run_service_pb2_grpc.RunServiceStub(channel), timeout=10, wait_seconds=5)
        client.harness = harness  # type: ignore[attr-defined]
        yield client
        await channel.close()
        await server.stop(None)
        await harness.scheduler.close()


async def test_a_replay_run_is_created_once_executed_followed_and_measured(run_stub: RunClient) -> None:
    harness: Harness = run_stub.harness  # type: ignore[attr-defined]
    project = harness.spec.project()
    config = RunConfig("full_search", RunParameters(num_candidates=2, num_scenarios=2))
    new = NewRun(project, config, f"snapshot-test:{uuid.uuid4()}:0:0", trigger_metadata={"snapshot_id": "s"})

    estimate = await run_stub.estimate_usd(project, config)
    created = await run_stub.create_run(new)
    again = await run_stub.create_run(new)
    started = await run_stub.execute_run(created.id, (RunPhase.EVALUATE, RunPhase.RANK))
    started_again = await run_stub.execute_run(created.id, ())
    ended = await run_stub.wait_ended(created.id)
    metrics = await run_stub.metrics(created.id)

    assert estimate is not None
    assert estimate > 0
    assert again.id == created.id
    assert created.status == "CREATED"
    assert started.status == "RUNNING"
    assert started_again.id == created.id
    assert ended.status == "COMPLETED"
    assert (metrics.status, metrics.candidates, metrics.scenarios, metrics.evaluations) == ("COMPLETED", 2, 2, 4)
    assert metrics.coverage == 1.0
    assert metrics.duration_seconds is not None
    assert metrics.top_i is not None
    assert metrics.usd > 0
    assert metrics.llm_calls == 6
    # The run the reference is read from: the same code, the same config back.
    info = await run_stub.get_run(created.id)
    assert info is not None
    assert info.config.parameters.num_candidates == 2
    assert info.project_id == project
    assert await run_stub.get_run(str(uuid.uuid4())) is None
    # A full_search run has no seeds; a run the service does not have, none to give.
    assert await run_stub.seed_candidates(created.id) == ()
    assert await run_stub.seed_candidates(str(uuid.uuid4())) == ()


async def test_a_run_is_cancelled_once_and_cancelling_it_again_is_not_an_error(run_stub: RunClient) -> None:
    harness: Harness = run_stub.harness  # type: ignore[attr-defined]
    config = RunConfig("full_search", RunParameters(num_candidates=2, num_scenarios=2))
    created = await run_stub.create_run(NewRun(harness.spec.project(), config, f"snapshot-test:{uuid.uuid4()}:0:0"))

    await run_stub.cancel_run(created.id, "the suite failed")
    await run_stub.cancel_run(created.id, "the suite failed")

    info = await run_stub.get_run(created.id)
    assert info is not None
    assert info.status == "CANCELLED"
    with pytest.raises(RelayedError) as unknown:
        await run_stub.cancel_run(str(uuid.uuid4()), "the suite failed")
    assert unknown.value.code is grpc.StatusCode.NOT_FOUND
