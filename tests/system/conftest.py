"""The real stack: `crucible up` as a child process on free ports, driven over HTTP and gRPC."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import free_port, fresh_database, repo_root


@dataclass
class Stack:
    process: subprocess.Popen[str]
    url: str
    addresses: dict[str, str]
    state_dir: Path
    env: dict[str, str]
    output: list[str]

    def stop(self, timeout: float = 10.0) -> int:
        """Ctrl-C, as a person would; returns the exit code."""
        descendants = psutil.Process(self.process.pid).children(recursive=True) if self.process.poll() is None else []
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            # A hung stop fails the test, but must not leave processes behind for the next one.
            for proc in [psutil.Process(self.process.pid), *descendants]:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            self.process.wait(5)
            raise
        finally:
            self.output.extend((self.process.stdout.read() if self.process.stdout else "").splitlines())


def stack_env(
    state_dir: Path, database_url: str | None, *, keep_provider_keys: bool = False
) -> tuple[dict[str, str], dict[str, str], str]:
    addresses = {name: f"127.0.0.1:{free_port()}" for name in ("spec", "run", "snapshot", "agent")}
    gateway_port = free_port()
    # Offline and isolated: no real provider keys (unless asked), no settings from the developer's shell.
    dropped = () if keep_provider_keys else ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRUCIBLE_") and k not in dropped}
    env.update({f"CRUCIBLE_{name.upper()}_ADDR": address for name, address in addresses.items()})
    env.update(
        CRUCIBLE_GATEWAY_PORT=str(gateway_port),
        CRUCIBLE_EMULATOR_PORT=str(free_port()),
        CRUCIBLE_STATE_DIR=str(state_dir),
        CRUCIBLE_SHUTDOWN_GRACE_SECONDS="2",
        PYTHONUNBUFFERED="1",
        # Flush spans quickly so a test can follow a trace across the processes' files.
        OTEL_BSP_SCHEDULE_DELAY="200",
    )
    if database_url:
        env["CRUCIBLE_DATABASE_URL"] = database_url
    return env, addresses, f"http://127.0.0.1:{gateway_port}"


def start_stack(
    state_dir: Path,
    database_url: str | None,
    timeout: float = 90.0,
    *,
    keep_provider_keys: bool = False,
    extra_env: dict[str, str] | None = None,
) -> Stack:
    env, addresses, url = stack_env(state_dir, database_url, keep_provider_keys=keep_provider_keys)
    env.update(extra_env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "crucible_cli.main", "up"],
        cwd=repo_root(),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stack = Stack(process, url, addresses, state_dir, env, [])
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        stack.output.append(line.rstrip())
        if line.startswith("Crucible is up"):
            return stack
    process.kill()
    process.wait()
    raise AssertionError("the stack did not come up:\n" + "\n".join(stack.output))


@pytest.fixture(scope="session")
async def stack_database_url(postgres_admin_url: str) -> AsyncIterator[str]:
    async with fresh_database(postgres_admin_url, "system") as url:
        yield url


@pytest.fixture(scope="session")
def stack(stack_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack for the system tests that only use it (the supervisor tests start their own)."""
    running = start_stack(tmp_path_factory.mktemp("stack"), stack_database_url)
    yield running
    assert running.stop() == 0, "\n".join(running.output)


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
        yield client
