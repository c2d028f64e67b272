"""The run service's composition root: the only place its parts are built and wired."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from crucible.agent.v1 import agent_service_pb2_grpc
from crucible.run.v1 import run_service_pb2, run_service_pb2_grpc
from crucible.snapshot.v1 import snapshot_service_pb2_grpc
from crucible.spec.v1 import spec_service_pb2_grpc
from crucible_common.clients import service_channel
from crucible_common.database import create_engine
from crucible_common.grpc_server import ServiceDefinition
from crucible_common.leases import LEASE_SECONDS, Lease, SqlLeaseStore, Workers, process_owner
from crucible_common.notify import Listener
from crucible_common.runtime import ServiceProcess
from crucible_common.settings import Settings
from crucible_common.telemetry import otlp_endpoint, traces_dir
from crucible_run.adapters.agent_client import AgentModels
from crucible_run.adapters.repository import RUN_EVENTS_CHANNEL
from crucible_run.adapters.snapshot_client import SnapshotClient
from crucible_run.adapters.spec_client import SpecClient
from crucible_run.adapters.tables import LEASED_RUNS, SCHEMA
from crucible_run.adapters.trace_store import ExportedTraces, LocalTraceFiles
from crucible_run.adapters.unit_of_work import SqlUnitOfWork
from crucible_run.config import RunSettings
from crucible_run.entrypoints.grpc_servicer import RunServicer
from crucible_run.service_layer.handlers import PipelineModels, RunDeps
from crucible_run.service_layer.pipeline import PipelineDeps, RunExecutor
from crucible_run.service_layer.ports import TraceStore
from crucible_run.service_layer.unit_of_work import AbstractUnitOfWork, UowFactory

MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_NAME = run_service_pb2.DESCRIPTOR.services_by_name["RunService"].full_name


def uow_factory(engine: AsyncEngine, lease_seconds: float = LEASE_SECONDS) -> UowFactory:
    def make(
        *, read_only: bool = False, single_statement: bool = False, lease: Lease | None = None
    ) -> AbstractUnitOfWork:
        return SqlUnitOfWork(
            engine, read_only=read_only, single_statement=single_statement, lease=lease, lease_seconds=lease_seconds
        )

    return make


def trace_store(settings: Settings) -> TraceStore:
    """Where this stack's spans can be read back: where ``telemetry.setup_tracing`` sends them."""
    endpoint = otlp_endpoint()
    return ExportedTraces(endpoint) if endpoint else LocalTraceFiles(traces_dir(settings.state_dir))


def build(settings: Settings) -> ServiceProcess:
    config = settings if isinstance(settings, RunSettings) else RunSettings(**settings.model_dump())
    assert config.database_url, "checked by the runtime before build()"
    engine = create_engine(config.database_url, pool_size=config.db_pool_size, application_name="crucible-run")
    spec_channel = service_channel(config.spec_addr, config)
    agent_channel = service_channel(config.agent_addr, config)
    snapshot_channel = service_channel(config.snapshot_addr, config)
    owner = process_owner()
    uow = uow_factory(engine, config.lease_seconds)
    spec = SpecClient(
        spec_service_pb2_grpc.SpecServiceStub(spec_channel), timeout=10.0, wait_seconds=config.run_agent_wait_seconds
    )
    models = AgentModels(
        agent_service_pb2_grpc.AgentServiceStub(agent_channel),
        call_timeout=config.run_call_timeout_seconds,
        wait_seconds=config.run_agent_wait_seconds,
    )
    # A snapshot reads the run, its project and its usage from three services: it gets more time.
    snapshots = SnapshotClient(
        snapshot_service_pb2_grpc.SnapshotServiceStub(snapshot_channel),
        timeout=30.0,
        wait_seconds=config.run_agent_wait_seconds,
    )
    designer = (config.run_designer_provider, config.run_designer_model)
    evaluator = (config.run_evaluator_provider, config.run_evaluator_model)
    pipeline = PipelineDeps(
        uow=uow,
        spec=spec,
        models=models,
        leases=SqlLeaseStore(engine, LEASED_RUNS, owner, seconds=config.lease_seconds),
        snapshots=snapshots,
        designer=designer,
        evaluator=evaluator,
        concurrency=config.run_concurrency,
        heartbeat_seconds=config.lease_heartbeat_seconds,
    )
    scheduler = Workers(
        pipeline.leases, lambda lease: RunExecutor(pipeline, lease).run(), heartbeat_seconds=pipeline.heartbeat_seconds
    )
    updates = Listener(config.database_url, RUN_EVENTS_CHANNEL)
    servicer = RunServicer(
        RunDeps(uow, spec, models, PipelineModels(designer, evaluator), scheduler, owner, updates, trace_store(config))
    )
    return ServiceProcess(
        name="run",
        address=config.run_addr,
        definitions=[
            ServiceDefinition(
                SERVICE_NAME, lambda server: run_service_pb2_grpc.add_RunServiceServicer_to_server(servicer, server)
            )
        ],
        engine=engine,
        schema=SCHEMA,
        migrations=MIGRATIONS,
        closers=[scheduler.close, updates.close, spec_channel.close, agent_channel.close, snapshot_channel.close],
        background=[scheduler.resume_forever],
    )
