"""The spec service's composition root: the only place its parts are built and wired."""

from __future__ import annotations

from pathlib import Path

from crucible.spec.v1 import spec_service_pb2, spec_service_pb2_grpc
from crucible_common.database import create_engine
from crucible_common.grpc_server import ServiceDefinition
from crucible_common.runtime import ServiceProcess
from crucible_common.settings import Settings
from crucible_spec.adapters.tables import SCHEMA
from crucible_spec.entrypoints.grpc_servicer import SpecServicer
from crucible_spec.service_layer.unit_of_work import SqlUnitOfWork

MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_NAME = spec_service_pb2.DESCRIPTOR.services_by_name["SpecService"].full_name


def build(settings: Settings) -> ServiceProcess:
    assert settings.database_url, "checked by the runtime before build()"
    engine = create_engine(settings.database_url, pool_size=settings.db_pool_size, application_name="crucible-spec")
    servicer = SpecServicer(uow=lambda: SqlUnitOfWork(engine), read_uow=lambda: SqlUnitOfWork(engine, read_only=True))
    return ServiceProcess(
        name="spec",
        address=settings.spec_addr,
        definitions=[
            ServiceDefinition(
                SERVICE_NAME, lambda server: spec_service_pb2_grpc.add_SpecServiceServicer_to_server(servicer, server)
            )
        ],
        engine=engine,
        schema=SCHEMA,
        migrations=MIGRATIONS,
    )
