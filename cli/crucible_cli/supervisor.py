"""``crucible up``: the whole stack as separate processes in the foreground.

Starts the embedded Postgres (unless ``CRUCIBLE_DATABASE_URL`` names one), the four services and
the gateway; waits until all are healthy; prints the URL and where the logs go. A process that
dies is reported and brings the stack down: nothing is restarted silently. Ctrl-C (or SIGTERM)
stops every child, then Postgres, well within ten seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from crucible_common.clients import open_channel
from crucible_common.embedded_postgres import EmbeddedPostgres, ensure_database, start_embedded_postgres
from crucible_common.settings import Settings
from crucible_common.tls import Tls

logger = logging.getLogger(__name__)

DATABASE_NAME = "crucible"
STOP_TIMEOUT = 8.0


class StackError(Exception):
    """The stack could not come up; the message says which part and why."""


@dataclass
class Child:
    name: str
    command: list[str]
    log_path: Path
    health: Callable[[], Awaitable[bool]]
    process: asyncio.subprocess.Process | None = None
    log_file: IO[bytes] | None = field(default=None, repr=False)
    # Where this process's own lines begin in its log, which keeps earlier starts' lines.
    log_start: int = 0

    def begin_log(self, why: str) -> None:
        """Mark a start in the process's log (which keeps earlier starts' lines): its tail is read
        from here."""
        assert self.log_file is not None
        self.log_file.write(f"\n===== {why} {time.strftime('%Y-%m-%dT%H:%M:%S')} =====\n".encode())
        self.log_file.flush()
        self.log_start = self.log_file.tell()

    def log_tail(self, lines: int = 25) -> str:
        """The last lines this process wrote: never an earlier start's (an old traceback read as
        the reason of this exit)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self.log_start)
                text = log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Supervisor:
    def __init__(
        self, settings: Settings, *, echo: Callable[[str], None] = print, environ: Mapping[str, str] | None = None
    ) -> None:
        self.settings = settings
        # What the children inherit (and what says which providers are offline): this process's own
        # environment, unless a harness (the chaos suite) gives the stack one of its own.
        self.environ = dict(os.environ if environ is None else environ)
        self.state_dir = settings.state_dir.resolve()
        self.log_dir = self.state_dir / "logs"
        self.echo = echo
        self.children: list[Child] = []
        self.postgres: EmbeddedPostgres | None = None
        # Providers without an API key (or a base URL of their own) are answered offline.
        self.offline = [
            provider
            for provider in ("openai", "anthropic")
            if not self.environ.get(f"{provider.upper()}_API_KEY")
            and not self.environ.get(f"CRUCIBLE_{provider.upper()}_BASE_URL")
        ]
        self._lock_file: IO[str] | None = None
        self._env: dict[str, str] = {}

    # ------------------------------------------------------------ lifecycle

    async def run(self) -> int:
        """Bring the stack up, hold it until a signal or a crash, then tear it down."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            started = time.monotonic()
            await self.start(stop)
            if self.offline:
                self.echo(
                    f"no API key for {' and '.join(self.offline)}: answered offline by the LLM emulator at "
                    f"{self.settings.emulator_url} (a deterministic stand-in, not a model)"
                )
            self.echo(
                f"Crucible is up in {time.monotonic() - started:.1f}s: {self.settings.gateway_url}\n"
                f"  logs: {self.log_dir}/<process>.log   traces: {self.state_dir / 'traces'}\n"
                "  Ctrl-C stops everything."
            )
            crashed = await self._watch(stop)
            if crashed is not None:
                self.echo(
                    f"{crashed.name} exited unexpectedly (code {crashed.process and crashed.process.returncode}):"
                )
                self.echo(crashed.log_tail())
                return 1
            return 0
        except StackError as exc:
            self.echo(f"crucible up failed: {exc}")
            return 1
        finally:
            await self.stop()

    async def start(self, stop: asyncio.Event | None = None) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        self._check_ports()
        database_url = self.settings.database_url or await self._start_postgres()
        self._env = self._child_env(database_url)
        self.children = self._children()
        for child in self.children:
            child.log_file = (self.log_dir / f"{child.name}.log").open("ab")
            await self._spawn(child, "crucible up")
        await self._wait_healthy(stop)

    def child(self, name: str) -> Child:
        for child in self.children:
            if child.name == name:
                return child
        raise KeyError(f"no process {name!r} in this stack")

    async def kill(self, name: str) -> None:
        """SIGKILL one process and what it started (its session), as a crash or an OOM kill of its
        container would (the chaos suite's fault)."""
        process = self.child(name).process
        assert process is not None, "started"
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()

    async def restart(self, name: str) -> None:
        """Start a process that stopped (or was killed) again, as an orchestrator would; wait until it is healthy."""
        child = self.child(name)
        if child.process is not None and child.process.returncode is None:
            raise StackError(f"{name} is still running")
        await self._spawn(child, "restarted")
        await self._wait_healthy(None, [child])

    async def restart_postgres(self) -> None:
        """Restart the embedded Postgres: every service's connections are cut, then it answers again."""
        if self.postgres is None:
            raise StackError("this stack uses CRUCIBLE_DATABASE_URL; only the embedded Postgres restarts here")
        await asyncio.to_thread(self.postgres.restart)

    async def _spawn(self, child: Child, why: str) -> None:
        child.begin_log(why)
        # Own session: Ctrl-C reaches only the supervisor, which stops children in order.
        child.process = await asyncio.create_subprocess_exec(
            *child.command,
            env=self._env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=child.log_file,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )

    async def stop(self) -> None:
        running = [c for c in self.children if c.process and c.process.returncode is None]
        # The gateway first, so no request starts against a stopping service.
        for child in sorted(running, key=lambda c: c.name != "gateway"):
            with contextlib.suppress(ProcessLookupError):
                assert child.process is not None
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in running:
            assert child.process is not None
            try:
                await asyncio.wait_for(child.process.wait(), max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                self.echo(f"{child.name} did not stop in time; killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGKILL)
                await child.process.wait()
        for child in self.children:
            if child.log_file is not None:
                child.log_file.close()
                child.log_file = None
        if self.postgres is not None:
            await asyncio.to_thread(self.postgres.stop)
            self.postgres = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    # ------------------------------------------------------------ parts

    def _take_lock(self) -> None:
        self._lock_file = (self.state_dir / "crucible-up.lock").open("w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StackError(f"another `crucible up` is running on {self.state_dir}") from None
        self._lock_file.write(str(os.getpid()))
        self._lock_file.flush()

    def _check_ports(self) -> None:
        addresses = dict(self.settings.service_addresses())
        addresses["gateway"] = f"{self.settings.gateway_host}:{self.settings.gateway_port}"
        if self.offline:
            addresses["emulator"] = f"{self.settings.emulator_host}:{self.settings.emulator_port}"
        for name, address in addresses.items():
            host, _, port = address.rpartition(":")
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                if sock.connect_ex((host or "127.0.0.1", int(port))) == 0:
                    raise StackError(f"{address} (for {name}) is already in use; stop whatever listens there")

    async def _start_postgres(self) -> str:
        data_dir = self.state_dir / "postgres"
        self.echo(f"starting the embedded Postgres on {data_dir}")
        try:
            self.postgres = await asyncio.to_thread(start_embedded_postgres, data_dir)
            await ensure_database(self.postgres.url("postgres"), DATABASE_NAME)
        except Exception as exc:
            raise StackError(f"the embedded Postgres did not start: {exc} (log: {data_dir / 'log'})") from exc
        return self.postgres.url(DATABASE_NAME)

    def _child_env(self, database_url: str) -> dict[str, str]:
        env = dict(self.environ)
        env.update(
            CRUCIBLE_DATABASE_URL=database_url,
            CRUCIBLE_STATE_DIR=str(self.state_dir),
            PYTHONUNBUFFERED="1",
        )
        emulator = self.settings.emulator_url
        for provider in self.offline:
            path = "/openai/v1" if provider == "openai" else "/anthropic"
            env[f"CRUCIBLE_{provider.upper()}_BASE_URL"] = emulator + path
        return env

    def _children(self) -> list[Child]:
        addresses = self.settings.service_addresses()
        python = sys.executable
        children = [
            Child(
                name=name,
                command=[python, "-m", f"crucible_{name}.entrypoints.main"],
                log_path=self.log_dir / f"{name}.log",
                health=functools.partial(_grpc_serving, addresses[name], Tls.from_settings(self.settings)),
            )
            for name in ("spec", "run", "snapshot", "agent")
        ]
        if self.offline:
            children.insert(
                0,
                Child(
                    name="emulator",
                    command=[python, "-m", "crucible_emulator"],
                    log_path=self.log_dir / "emulator.log",
                    health=functools.partial(_http_ok, f"{self.settings.emulator_url}/healthz"),
                ),
            )
        children.append(
            Child(
                name="gateway",
                command=[python, "-m", "crucible_gateway.main"],
                log_path=self.log_dir / "gateway.log",
                health=lambda: _http_ok(f"{self.settings.gateway_url}/healthz"),
            )
        )
        return children

    async def _wait_healthy(
        self, stop: asyncio.Event | None, children: list[Child] | None = None, timeout: float = 60.0
    ) -> None:
        deadline = time.monotonic() + timeout
        pending = list(self.children if children is None else children)
        while pending:
            if stop is not None and stop.is_set():
                raise StackError("interrupted while starting")
            for child in list(pending):
                assert child.process is not None
                if child.process.returncode is not None:
                    raise StackError(
                        f"{child.name} exited with code {child.process.returncode} while starting:\n{child.log_tail()}"
                    )
                if await child.health():
                    pending.remove(child)
            if time.monotonic() > deadline:
                names = ", ".join(c.name for c in pending)
                tails = "\n".join(f"--- {c.name}\n{c.log_tail(10)}" for c in pending)
                raise StackError(f"not healthy after {timeout:.0f}s: {names}\n{tails}")
            if pending:
                await asyncio.sleep(0.1)

    async def _watch(self, stop: asyncio.Event) -> Child | None:
        waits = {asyncio.ensure_future(c.process.wait()): c for c in self.children if c.process is not None}
        stopper = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait([stopper, *waits], return_when=asyncio.FIRST_COMPLETED)
        for task in [stopper, *waits]:
            if task not in done:
                task.cancel()
        crashed = [waits[t] for t in done if t in waits]
        if crashed and not stop.is_set():
            return crashed[0]
        self.echo("stopping Crucible…")
        return None


async def _grpc_serving(address: str, tls: Tls | None) -> bool:
    async with open_channel(address, tls=tls) as channel:
        try:
            response = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=0.5)
        except grpc.aio.AioRpcError:
            return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


async def _http_ok(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=1.0) as client:
            return (await client.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


def up(settings: Settings) -> int:
    logging.basicConfig(level=logging.WARNING)
    import uvloop

    return uvloop.run(Supervisor(settings).run())
