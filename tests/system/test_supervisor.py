"""`crucible up` itself: embedded Postgres, clean Ctrl-C, data kept across restarts, loud failure."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import postgres_data_parent, repo_root
from tests.system.conftest import Stack, stack_env, start_stack

pytestmark = pytest.mark.system


def _listening(address: str) -> bool:
    host, _, port = address.rpartition(":")
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) == 0


def _stop_and_check_nothing_left(stack: Stack) -> None:
    children = psutil.Process(stack.process.pid).children(recursive=True)
    started = time.monotonic()
    code = stack.stop(timeout=10)  # stop first: a failed check must not leave a stack running
    elapsed = time.monotonic() - started
    assert code == 0, "\n".join(stack.output)
    assert elapsed < 10
    # Four services, the gateway, and the LLM emulator (the tests run without API keys).
    assert len(children) == 6, children
    alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], alive
    gateway = stack.url.removeprefix("http://")
    for address in [*stack.addresses.values(), gateway]:
        assert not _listening(address), f"{address} still listening"


def test_embedded_postgres_stack_stops_cleanly_and_keeps_data() -> None:
    with postgres_data_parent() as parent:
        _stack_stops_cleanly_and_keeps_data(parent / "state")


def _stack_stops_cleanly_and_keeps_data(state: Path) -> None:
    first = start_stack(state, database_url=None)
    try:
        assert any(line.startswith("Crucible is up") and first.url in line for line in first.output)
        assert httpx.get(f"{first.url}/healthz", timeout=5).status_code == 200
        created = httpx.post(f"{first.url}/api/projects", json={"title": "survives restarts"}, timeout=5).json()
        # pg_ctl daemonises the server, so it is found by its pid file, not as a child.
        postmaster = psutil.Process(int((state / "postgres" / "postmaster.pid").read_text().split()[0]))
        assert postmaster.is_running()
    finally:
        _stop_and_check_nothing_left(first)
    assert not postmaster.is_running() or postmaster.status() == psutil.STATUS_ZOMBIE
    assert not (state / "postgres" / "postmaster.pid").exists()
    assert (state / "logs" / "spec.log").read_text()

    second = start_stack(state, database_url=None)
    try:
        fetched = httpx.get(f"{second.url}/api/projects/{created['id']}", timeout=5)
        assert fetched.status_code == 200
        assert fetched.json()["title"] == "survives restarts"
    finally:
        _stop_and_check_nothing_left(second)


def test_a_service_that_cannot_start_fails_the_stack_with_its_error(tmp_path: Path) -> None:
    # Nothing listens on port 9: every service fails to migrate.
    env, _, _ = stack_env(tmp_path, "postgresql://postgres@127.0.0.1:9/none")
    result = subprocess.run(
        [sys.executable, "-m", "crucible_cli.main", "up"],
        cwd=repo_root(),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "crucible up failed" in result.stdout
    assert "exited with code 1 while starting" in result.stdout
    assert "Connect call failed" in result.stdout or "Connection refused" in result.stdout


def test_a_busy_port_is_reported_before_anything_starts(tmp_path: Path) -> None:
    env, addresses, _ = stack_env(tmp_path, "postgresql://postgres@127.0.0.1:9/none")
    host, _, port = addresses["spec"].rpartition(":")
    with socket.socket() as blocker:
        blocker.bind((host, int(port)))
        blocker.listen()
        result = subprocess.run(
            [sys.executable, "-m", "crucible_cli.main", "up"],
            cwd=repo_root(),
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert f"{addresses['spec']} (for spec) is already in use" in result.stdout


def test_the_spec_service_stops_at_once_while_a_gateway_follows_its_change_feed(
    tmp_path: Path, stack_database_url: str
) -> None:
    # A grace far longer than a stop takes: a feed left open would hold the spec service for all of it.
    stack = start_stack(tmp_path, stack_database_url, extra_env={"CRUCIBLE_SHUTDOWN_GRACE_SECONDS": "60"})
    try:
        created = httpx.post(f"{stack.url}/api/projects", json={"title": "followed"}, timeout=5).json()
        for _ in range(2):  # the gateway keeps it, by the feed it follows
            assert httpx.get(f"{stack.url}/api/projects/{created['id']}", timeout=5).status_code == 200
        spec = next(
            child
            for child in psutil.Process(stack.process.pid).children(recursive=True)
            if "crucible_spec.entrypoints.main" in child.cmdline()
        )
        spec.terminate()
        spec.wait(30)
    finally:
        stack.stop(timeout=30)
