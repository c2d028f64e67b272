"""How every gRPC service process runs: migrate, serve, stop cleanly."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import uvloop
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.ext.asyncio import AsyncEngine

from crucible_common.database import migrate
from crucible_common.gc_tuning import freeze_startup_objects, tune_collector
from crucible_common.grpc_server import (
    ServiceDefinition,
    create_server,
    serve_until_signalled,
    set_serving,
)
from crucible_common.logs import configure_logging
from crucible_common.settings import Settings
from crucible_common.telemetry import setup_tracing
from crucible_common.tls import Tls

logger = logging.getLogger(__name__)

S = TypeVar("S", bound=Settings)


@dataclass
class ServiceProcess:
    """What a service's composition root hands to the runtime."""

    name: str
    address: str
    definitions: list[ServiceDefinition]
    engine: AsyncEngine
    schema: str
    migrations: Path
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Loops that run while the service serves (resuming abandoned work, ...); cancelled on stop.
    background: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    # Run as the service starts to stop, before in-flight calls get their grace: they end the
    # streams that never end by themselves (a change feed), which would otherwise hold it all.
    draining: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


async def run_service(process: ServiceProcess, settings: Settings, tracer: TracerProvider) -> None:
    try:
        await migrate(process.engine, schema=process.schema, script_location=process.migrations)
        server, port, health_servicer = create_server(
            process.address,
            process.definitions,
            domain=f"{process.name}.crucible",
            max_message_bytes=settings.grpc_max_message_bytes,
            tls=Tls.from_settings(settings),
        )
        await server.start()
        await set_serving(health_servicer, process.definitions)
        logger.info("%s service serving on %s (port %d)", process.name, process.address, port)
        tasks = [asyncio.create_task(loop()) for loop in process.background]
        freeze_startup_objects()

        async def close() -> None:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for closer in process.closers:
                await closer()
            await process.engine.dispose()

        await serve_until_signalled(
            server,
            health_servicer,
            grace_seconds=settings.shutdown_grace_seconds,
            on_draining=lambda: drain(process.name, process.draining),
            on_stop=close,
        )
    finally:
        tracer.shutdown()


async def drain(name: str, steps: Sequence[Callable[[], Awaitable[None]]]) -> None:
    """Run a stopping service's draining steps in order: one that fails must cost neither the
    others nor the graceful stop that follows them."""
    for step in steps:
        try:
            await step()
        except Exception:
            logger.exception("%s: a draining step failed; stopping anyway", name)


def main(
    name: str,
    build: Callable[[S], ServiceProcess],
    settings_type: Callable[[], S] = Settings,  # type: ignore[assignment]
) -> None:
    """Console entry point of a service: settings → logging → tracing → build → run."""
    tune_collector()
    settings = settings_type()
    configure_logging(name, settings.log_level)
    if not settings.database_url:
        logger.error(
            "CRUCIBLE_DATABASE_URL is not set; start the stack with `make run` "
            "(which provides a database) or point it at a Postgres"
        )
        sys.exit(2)
    tracer = setup_tracing(name, settings.state_dir, read_ratio=settings.trace_read_ratio)
    try:
        uvloop.run(_build_and_run(name, build, settings, tracer))
    except KeyboardInterrupt:
        pass
    except Exception:
        logger.exception("%s service failed", name)
        sys.exit(1)


async def _build_and_run(name: str, build: Callable[[S], ServiceProcess], settings: S, tracer: TracerProvider) -> None:
    process = build(settings)
    await run_service(process, settings, tracer)
    logger.info("%s service stopped", name)


__all__ = ["ServiceProcess", "main", "run_service"]
