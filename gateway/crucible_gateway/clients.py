"""The gateway's gRPC clients: one channel per service, opened at start, closed at stop."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from crucible.agent.v1 import agent_service_pb2_grpc, sprint_service_pb2_grpc
from crucible.run.v1 import run_service_pb2_grpc
from crucible.snapshot.v1 import snapshot_service_pb2_grpc
from crucible.spec.v1 import spec_service_pb2_grpc
from crucible_common.clients import service_channel
from crucible_common.settings import Settings
from crucible_gateway.project_cache import ProjectCache

SERVICES = ("spec", "run", "snapshot", "agent")


@dataclass
class ServiceClients:
    channels: dict[str, grpc.aio.Channel]
    spec: spec_service_pb2_grpc.SpecServiceAsyncStub
    agent: agent_service_pb2_grpc.AgentServiceAsyncStub
    sprints: sprint_service_pb2_grpc.SprintServiceAsyncStub
    runs: run_service_pb2_grpc.RunServiceAsyncStub
    snapshots: snapshot_service_pb2_grpc.SnapshotServiceAsyncStub
    # Deadline for one call to a service; a slow service becomes 504, not a hung request.
    timeout: float = 10.0
    # Calls that wait for language models get longer.
    llm_timeout: float = 900.0
    # Project reads, from memory while the spec service's change feed runs (the app follows it).
    projects: ProjectCache = field(init=False)

    def __post_init__(self) -> None:
        self.projects = ProjectCache(self.spec)

    @classmethod
    def connect(cls, settings: Settings) -> ServiceClients:
        addresses = settings.service_addresses()
        channels = {name: service_channel(addresses[name], settings) for name in SERVICES}
        return cls(
            channels=channels,
            spec=spec_service_pb2_grpc.SpecServiceStub(channels["spec"]),
            agent=agent_service_pb2_grpc.AgentServiceStub(channels["agent"]),
            sprints=sprint_service_pb2_grpc.SprintServiceStub(channels["agent"]),
            runs=run_service_pb2_grpc.RunServiceStub(channels["run"]),
            snapshots=snapshot_service_pb2_grpc.SnapshotServiceStub(channels["snapshot"]),
        )

    async def health(self, timeout: float = 1.0) -> dict[str, str]:
        """Each service's overall health status name (SERVING, NOT_SERVING, UNAVAILABLE, ...)."""

        async def check(name: str) -> tuple[str, str]:
            stub = health_pb2_grpc.HealthStub(self.channels[name])
            try:
                response = await stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
            except grpc.aio.AioRpcError as exc:
                return name, exc.code().name
            return name, health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)

        return dict(await asyncio.gather(*(check(name) for name in SERVICES)))

    async def close(self) -> None:
        await asyncio.gather(*(channel.close() for channel in self.channels.values()))
