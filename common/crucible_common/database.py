"""The async SQLAlchemy engine of one service, and its migrations (Alembic, own schema)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from crucible_common.errors import DatabaseUnavailable, FailedPrecondition

logger = logging.getLogger(__name__)

T = TypeVar("T")

VERSION_TABLE = "alembic_version"

# Alembic keeps its migration context in module globals, so two migrations in one process must
# not interleave; the advisory lock below does the same job between processes (replicas).
_MIGRATION_LOCK = asyncio.Lock()


def asyncpg_url(url: str) -> str:
    """Normalise any Postgres URL (``postgres://``, ``postgresql://``, ``+psycopg``) to asyncpg."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise FailedPrecondition(
            f"CRUCIBLE_DATABASE_URL must be a PostgreSQL URL, got {parsed.drivername!r}",
            reason="DATABASE_URL_INVALID",
        )
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


# SQLSTATE classes that mean "the server is away", not "the statement is wrong": connection
# exceptions, and the shutdown / crash-recovery / starting-up states of a restart or failover.
_AWAY_STATES = ("57P01", "57P02", "57P03")


def deadlocked(exc: BaseException) -> bool:
    """Whether ``exc`` is Postgres ending one of two transactions that waited on each other: the
    statement was fine, and run again it goes through."""
    return isinstance(exc, DBAPIError) and str(getattr(exc.orig, "sqlstate", "") or "") == "40P01"


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is away for now (restarting, failing over, unreachable).

    Work that meets it waits and goes on from what it stored; it must not fail, and a paid model
    answer must not be dropped for it.
    """
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(exc, InterfaceError):
            return True
        state = str(getattr(exc.orig, "sqlstate", "") or "")
        return state.startswith("08") or state in _AWAY_STATES or isinstance(exc.orig, OSError)
    return isinstance(exc, DatabaseUnavailable)


async def while_database_unavailable(operation: Callable[[], Awaitable[T]], *, what: str, seconds: float = 60.0) -> T:
    """``operation()``, tried again (with a growing pause) while the database is away, for up to ``seconds``.

    For the writes whose loss costs money: a model answer already paid for is stored once the
    database answers again, instead of being dropped and bought a second time.
    """
    deadline = time.monotonic() + seconds
    pause = 0.1
    while True:
        try:
            return await operation()
        except Exception as exc:
            if not database_unavailable(exc) or time.monotonic() + pause > deadline:
                raise
            logger.warning("%s: the database is unavailable (%s); trying again in %.1fs", what, exc, pause)
        await asyncio.sleep(pause)
        pause = min(pause * 2, 2.0)


def create_engine(url: str, *, pool_size: int = 10, application_name: str = "crucible") -> AsyncEngine:
    return create_async_engine(
        asyncpg_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        connect_args={"server_settings": {"application_name": application_name}},
        # JSONB columns through orjson: several times faster than the json module either way,
        # which shows when every evaluation and model call stores and reads JSON.
        json_serializer=_json_text,
        json_deserializer=orjson.loads,
    )


def _json_text(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def alembic_config(script_location: Path, schema: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["schema"] = schema
    return config


async def migrate(engine: AsyncEngine, *, schema: str, script_location: Path) -> None:
    """Bring ``schema`` to the newest revision; safe when several replicas start at once."""
    config = alembic_config(script_location, schema)
    async with _MIGRATION_LOCK, engine.begin() as conn:
        # Serialises concurrent starts of the same service on one database.
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"crucible.migrate.{schema}"})
        # The version table lives in the schema, so the schema must exist before Alembic runs.
        await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        await conn.run_sync(_upgrade, config)
    logger.info("schema %s is at the newest revision", schema)


def _upgrade(connection: Connection, config: Config) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def run_alembic_env(schema: str) -> None:
    """The body of every service's ``migrations/env.py``: migrate ``schema`` only.

    ``migrate()`` hands over its connection; the Alembic CLI (for writing revisions) gets one
    from ``CRUCIBLE_DATABASE_URL``.
    """
    from alembic import context  # only importable while Alembic runs an env script

    connection = context.config.attributes.get("connection")
    if connection is None:
        _run_from_cli(schema)
        return
    _configure_and_run(connection, schema)


def _configure_and_run(connection: Connection, schema: str) -> None:
    from alembic import context

    context.configure(
        connection=connection,
        version_table=VERSION_TABLE,
        version_table_schema=schema,
        include_schemas=False,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_from_cli(schema: str) -> None:
    from crucible_common.settings import Settings

    url = Settings().database_url
    if not url:
        raise SystemExit("set CRUCIBLE_DATABASE_URL to run Alembic by hand")

    async def run() -> None:
        engine = create_engine(url, pool_size=1)
        async with engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            await conn.run_sync(_configure_and_run, schema)
        await engine.dispose()

    asyncio.run(run())
