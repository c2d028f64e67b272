"""The snapshot service's composition root: the only place its parts are built and wired."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from crucible.agent.v1 import agent_service_pb2_grpc
from crucible.run.v1 import run_service_pb2_grpc
from crucible.snapshot.v1 import snapshot_service_pb2, snapshot_service_pb2_grpc
from crucible.spec.v1 import spec_service_pb2_grpc
from crucible_common.clients import service_channel
from crucible_common.database import create_engine
from crucible_common.grpc_server import ServiceDefinition
from crucible_common.leases import LEASE_SECONDS, Lease, SqlLeaseStore, Workers, process_owner
from crucible_common.notify import Listener
from crucible_common.runtime import ServiceProcess
from crucible_common.settings import Settings
from crucible_snapshot.adapters.agent_client import AgentUsage
from crucible_snapshot.adapters.repository import REPORT_EVENTS_CHANNEL
from crucible_snapshot.adapters.run_client import RunClient
from crucible_snapshot.adapters.spec_client import SpecClient
from crucible_snapshot.adapters.tables import LEASED_REPORTS, SCHEMA
from crucible_snapshot.adapters.unit_of_work import SqlUnitOfWork
from crucible_snapshot.config import SnapshotSettings
from crucible_snapshot.entrypoints.grpc_servicer import SnapshotServicer
from crucible_snapshot.service_layer.handlers import SnapshotDeps
from crucible_snapshot.service_layer.suites import SuiteRunner
from crucible_snapshot.service_layer.unit_of_work import AbstractUnitOfWork, UowFactory

MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_NAME = snapshot_service_pb2.DESCRIPTOR.services_by_name["SnapshotService"].full_name


def uow_factory(engine: AsyncEngine, lease_seconds: float = LEASE_SECONDS) -> UowFactory:
    def make(
        *, read_only: bool = False, single_statement: bool = False, lease: Lease | None = None
    ) -> AbstractUnitOfWork:
        return SqlUnitOfWork(
            engine, read_only=read_only, single_statement=single_statement, lease=lease, lease_seconds=lease_seconds
        )

    return make


def build(settings: Settings) -> ServiceProcess:
    config = settings if isinstance(settings, SnapshotSettings) else SnapshotSettings(**settings.model_dump())
    assert config.database_url, "checked by the runtime before build()"
    engine = create_engine(config.database_url, pool_size=config.db_pool_size, application_name="crucible-snapshot")
    channels = {
        name: service_channel(address, config)
        for name, address in (("spec", config.spec_addr), ("run", config.run_addr), ("agent", config.agent_addr))
    }
    timeout = config.snapshot_call_timeout_seconds
    owner = process_owner()
    leases = SqlLeaseStore(engine, LEASED_REPORTS, owner, seconds=config.lease_seconds)
    deps: SnapshotDeps
    scheduler = Workers(
        leases, lambda lease: SuiteRunner(deps, lease).run(), heartbeat_seconds=config.lease_heartbeat_seconds
    )
    updates = Listener(config.database_url, REPORT_EVENTS_CHANNEL)
    deps = SnapshotDeps(
        uow=uow_factory(engine, config.lease_seconds),
        spec=SpecClient(spec_service_pb2_grpc.SpecServiceStub(channels["spec"]), timeout=timeout),
        runs=RunClient(
            run_service_pb2_grpc.RunServiceStub(channels["run"]),
            timeout=timeout,
            wait_seconds=config.snapshot_wait_seconds,
        ),
        usage=AgentUsage(agent_service_pb2_grpc.AgentServiceStub(channels["agent"]), timeout=timeout),
        updates=updates,
        scheduler=scheduler,
        owner=owner,
        concurrency=config.snapshot_concurrency,
        cost_margin=config.snapshot_cost_margin,
    )
    servicer = SnapshotServicer(deps)
    return ServiceProcess(
        name="snapshot",
        address=config.snapshot_addr,
        definitions=[
            ServiceDefinition(
                SERVICE_NAME,
                lambda server: snapshot_service_pb2_grpc.add_SnapshotServiceServicer_to_server(servicer, server),
            )
        ],
        engine=engine,
        schema=SCHEMA,
        migrations=MIGRATIONS,
        closers=[scheduler.close, updates.close, *(channel.close for channel in channels.values())],
        background=[scheduler.resume_forever],
    )
