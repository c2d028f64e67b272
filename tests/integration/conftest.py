from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from crucible.spec.v1 import spec_service_pb2_grpc
from crucible_common.database import create_engine, migrate
from crucible_common.grpc_server import create_server
from crucible_common.settings import Settings
from crucible_spec import bootstrap as spec_bootstrap


@pytest.fixture(scope="module")
async def spec_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The spec schema, migrated the way the service migrates it at start-up."""
    engine = create_engine(database_url, pool_size=4)
    await migrate(engine, schema="spec", script_location=spec_bootstrap.MIGRATIONS)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
async def spec_stub(
    database_url: str, spec_engine: AsyncEngine
) -> AsyncIterator[spec_service_pb2_grpc.SpecServiceAsyncStub]:
    """The real spec service (servicer, interceptors, repositories) on a free loopback port."""
    settings = Settings(database_url=database_url, spec_addr="127.0.0.1:0")
    process = spec_bootstrap.build(settings)
    server, port, _ = create_server(settings.spec_addr, process.definitions, domain="spec.crucible")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield spec_service_pb2_grpc.SpecServiceStub(channel)
    await channel.close()
    await server.stop(None)
    await process.engine.dispose()
