"""Fixtures every test level shares: a Postgres server for the session.

Which Postgres: ``CRUCIBLE_TEST_DATABASE_URL`` when set; else a testcontainers Postgres when a
Docker engine answers; else the same embedded Postgres that `make run` uses, in a temporary
directory. Each test module then gets a fresh database of its own (see ``fresh_database``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from crucible_common.embedded_postgres import drop_database, ensure_database, start_embedded_postgres

logger = logging.getLogger(__name__)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The browser tests last: Playwright's sync API keeps its event loop running in this thread
    until the session ends, and no asyncio test can start its own loop after it."""
    items.sort(key=lambda item: Path(str(item.path)).is_relative_to(Path(__file__).parent / "ui"))


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


@contextlib.contextmanager
def postgres_data_parent() -> Iterator[Path]:
    """A directory for embedded Postgres data, outside pytest's temporary tree.

    The server runs as another system user; pytest makes its base temporary directory private
    (0700) whenever a pytest process starts, which would lock that user out mid-run.
    """
    parent = Path(tempfile.mkdtemp(prefix="crucible-test-pg-"))
    parent.chmod(0o755)
    try:
        yield parent
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A URL (asyncpg driver) of a database on the session's Postgres with CREATEDB rights."""
    configured = os.environ.get("CRUCIBLE_TEST_DATABASE_URL")
    if configured:
        yield make_url(configured).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
        return
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:18", driver="asyncpg") as container:
            yield container.get_connection_url()
        return
    with postgres_data_parent() as parent:
        server = start_embedded_postgres(parent / "data")
        try:
            yield server.url("postgres")
        finally:
            server.stop()


@contextlib.asynccontextmanager
async def fresh_database(admin_url: str, label: str) -> AsyncIterator[str]:
    """Create an empty database for one test module, and drop it afterwards."""
    name = f"t_{re.sub(r'[^a-z0-9]+', '_', label.lower())[-40:]}_{uuid.uuid4().hex[:8]}"
    await ensure_database(admin_url, name)
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await drop_database(admin_url, name)


@pytest.fixture(scope="module")
async def database_url(postgres_admin_url: str, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    async with fresh_database(postgres_admin_url, request.module.__name__) as url:
        yield url


# Ports for the stacks the tests start are taken below the kernel's range of ephemeral ports: a port
# the kernel hands out for ``bind(0)`` is one it may also give, before the service binds it, to an
# outgoing connection of another process of the same stack (a service then failed to bind, and a
# stack said "up").
_PORTS = range(20_000, 32_000)
# The ports handed out so far in this process: a stack takes several before binding any of them.
_given: set[int] = set()


def free_port() -> int:
    low, _ = _ephemeral_range()
    candidates = range(_PORTS.start, min(_PORTS.stop, low))
    for port in random.sample(candidates, k=min(200, len(candidates))):
        if port in _given:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _given.add(port)
        return port
    # No range to choose from (a kernel whose ephemeral ports start low): as the kernel picks.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32_768, 60_999


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
