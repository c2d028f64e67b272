"""The fault suite: a stack the harness can break, the faults, and the books it keeps on each.

The stack is `crucible up`'s own supervisor (embedded Postgres, the emulator, the four services,
the gateway) driven from here, so that one process can be SIGKILLed and started again as an
orchestrator would, and Postgres restarted under the services. Leases are short (4 s, renewed
every second) so that work a dead process held passes on quickly.

For each fault the books are:

- ``started / completed / failed / lost``: the workload's pieces (see ``workload``); a failure
  must carry its reason, and a piece that did not end, misses a result or did something twice
  is lost.
- ``paid_twice``: provider answers Crucible paid for again although it had stored one for the same
  call — the agent service's call log holding two paid answers for one request of one piece of
  work — plus answers the emulator delivered that were never stored (the work was then redone),
  unless the agent service itself was killed: the answers in flight at that instant are counted
  apart as ``in_flight_repeated``.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from crucible_cli.supervisor import Supervisor
from crucible_common.settings import Settings
from tests.chaos.workload import Fixtures, Outcome, Retrying, Workload
from tests.conftest import free_port, postgres_data_parent

# Every process of the stack: short leases, a short provider timeout (the slow-answer fault holds
# answers past it), quick provider retries, few evaluations at a time (so a kill finds a run
# part-way), and a provider latency that makes the work take a few seconds.
CHILD_ENV = {
    "CRUCIBLE_LEASE_SECONDS": "4",
    "CRUCIBLE_LEASE_HEARTBEAT_SECONDS": "1",
    "CRUCIBLE_RUN_CONCURRENCY": "3",
    "CRUCIBLE_LLM_TIMEOUT_SECONDS": "3",
    "CRUCIBLE_LLM_RETRY_BASE_SECONDS": "0.05",
    "CRUCIBLE_SHUTDOWN_GRACE_SECONDS": "1",
    "CRUCIBLE_EMULATOR_LATENCY_MS": "150",
    "PYTHONUNBUFFERED": "1",
}
# The emulator's PUT changes only the fields it names: every fault rate is named, so that one
# fault's misbehaviour does not carry into the next.
EMULATOR_BASE: dict[str, Any] = {
    "latency_ms": 150,
    "timeout_seconds": 6,
    "error_rate": 0.0,
    "rate_limit_rate": 0.0,
    "malformed_rate": 0.0,
    "timeout_rate": 0.0,
    "truncated_rate": 0.0,
    "faults": [],
}
WORK_TIMEOUT = 150.0


@dataclass
class ChaosStack:
    supervisor: Supervisor
    http: httpx.AsyncClient
    emulator: httpx.AsyncClient
    database_url: str
    fixtures: Fixtures | None = None

    async def db_now(self) -> Any:
        conn = await asyncpg.connect(self.database_url)
        try:
            return await conn.fetchval("SELECT now()")
        finally:
            await conn.close()

    async def stored_calls(self, since: Any) -> tuple[int, int]:
        """Answers the agent service stored since ``since``: how many were paid, how many repeated one."""
        conn = await asyncpg.connect(self.database_url)
        try:
            row = await conn.fetchrow(
                """
                SELECT count(*) FILTER (WHERE status IN ('succeeded', 'invalid_output')) AS paid,
                       count(*) FILTER (WHERE status = 'succeeded')
                       - count(DISTINCT (project_id, run_id, sprint_id, snapshot_test_id, agent_run_id, purpose,
                                         idempotency_key, request_hash)) FILTER (WHERE status = 'succeeded')
                         AS repeated
                FROM agent.llm_calls WHERE created_at >= $1
                """,
                since,
            )
        finally:
            await conn.close()
        assert row is not None
        return int(row["paid"]), int(row["repeated"])

    async def emulator_config(self, config: dict[str, Any]) -> None:
        response = await self.emulator.put("/emulator/config", json={**EMULATOR_BASE, **config})
        response.raise_for_status()

    async def emulator_counts(self) -> tuple[int, int]:
        """The emulator's answers delivered in full, and the faults it injected, so far."""
        stats = (await self.emulator.get("/emulator/stats")).json()
        return int(stats["answered"]), int(stats["faults_injected_total"])


@contextlib.asynccontextmanager
async def chaos_stack(log: Callable[[str], None] = lambda _: None) -> AsyncIterator[ChaosStack]:
    with postgres_data_parent() as parent:
        state = parent / "state"
        environ = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CRUCIBLE_") and k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")
        }
        environ |= CHILD_ENV
        ports = {name: f"127.0.0.1:{free_port()}" for name in ("spec", "run", "snapshot", "agent")}
        environ |= {f"CRUCIBLE_{name.upper()}_ADDR": address for name, address in ports.items()}
        settings = Settings(
            database_url=None,
            state_dir=state,
            spec_addr=ports["spec"],
            run_addr=ports["run"],
            snapshot_addr=ports["snapshot"],
            agent_addr=ports["agent"],
            gateway_port=free_port(),
            emulator_port=free_port(),
        )
        environ |= {
            "CRUCIBLE_GATEWAY_PORT": str(settings.gateway_port),
            "CRUCIBLE_EMULATOR_PORT": str(settings.emulator_port),
        }
        supervisor = Supervisor(settings, echo=log, environ=environ)
        try:
            await supervisor.start()
            assert supervisor.postgres is not None, "the chaos stack runs its own embedded Postgres"
            database_url = supervisor.postgres.url("crucible").replace("postgresql+asyncpg://", "postgresql://")
            async with (
                Retrying(base_url=settings.gateway_url, timeout=30) as http,
                httpx.AsyncClient(base_url=settings.emulator_url, timeout=10) as emulator,
            ):
                stack = ChaosStack(supervisor, http, emulator, database_url)
                await stack.emulator_config({})
                stack.fixtures = await Fixtures.make(http)
                yield stack
        finally:
            await supervisor.stop()
            # The harness's record, for whoever reads a failing row: the processes' own logs.
            _keep_logs(state, log)


def _keep_logs(state: Path, log: Callable[[str], None]) -> None:
    target = Path(tempfile.gettempdir()) / "crucible-chaos-logs"
    target.mkdir(exist_ok=True)
    for path in (state / "logs").glob("*.log"):
        (target / path.name).write_bytes(path.read_bytes())
    log(f"process logs: {target}")


# ---------------------------------------------------------------- the faults


@dataclass(frozen=True)
class Fault:
    name: str
    # What breaks mid-work (a process killed and started again, Postgres restarted), if anything.
    inject: Callable[[ChaosStack], Awaitable[None]] | None = None
    # The emulator's misbehaviour for the whole of the work, if any.
    emulator: dict[str, Any] = field(default_factory=dict)
    # The agent service is killed: answers in flight then are counted apart.
    kills_agent: bool = False


def _kill(name: str) -> Callable[[ChaosStack], Awaitable[None]]:
    async def inject(stack: ChaosStack) -> None:
        await stack.supervisor.kill(name)
        await stack.supervisor.restart(name)

    return inject


async def _restart_postgres(stack: ChaosStack) -> None:
    await stack.supervisor.restart_postgres()


FAULTS: tuple[Fault, ...] = (
    *(
        Fault(f"sigkill {name}", inject=_kill(name), kills_agent=name == "agent")
        for name in ("spec", "run", "snapshot", "agent", "gateway")
    ),
    Fault("postgres restart", inject=_restart_postgres),
    Fault("emulator 20% errors", emulator={"error_rate": 0.2}),
    Fault("emulator 429s", emulator={"rate_limit_rate": 0.2}),
    Fault("emulator malformed answers", emulator={"malformed_rate": 0.2}),
    Fault("emulator truncated answers", emulator={"truncated_rate": 0.2}),
    Fault("emulator slow past the timeout", emulator={"timeout_rate": 0.1}),
    # All of them together: some work may then fail (a design call out of retries), with its reason.
    Fault(
        "emulator all at once",
        emulator={
            "error_rate": 0.2,
            "rate_limit_rate": 0.2,
            "malformed_rate": 0.2,
            "truncated_rate": 0.2,
            "timeout_rate": 0.1,
        },
    ),
)


@dataclass
class Row:
    fault: str
    started: int
    completed: int
    failed: int
    lost: int
    paid_twice: int
    in_flight_repeated: int
    # Faults the emulator injected into the work's model calls (its own misbehaviour faults).
    injected: int
    seconds: float
    failures: list[str]
    problems: list[str]

    def json(self) -> str:
        return json.dumps({"name": "chaos", **asdict(self)})


async def run_fault(stack: ChaosStack, fault: Fault) -> Row:
    assert stack.fixtures is not None
    started = time.monotonic()
    since = await stack.db_now()
    answered_before, injected_before = await stack.emulator_counts()
    await stack.emulator_config(fault.emulator)
    try:
        work = await Workload.start(stack.http, stack.fixtures)
        if fault.inject is not None:
            await work.under_way(stack.http)
            await fault.inject(stack)
        outcome: Outcome = await work.outcome(stack.http, WORK_TIMEOUT)
    finally:
        await stack.emulator_config({})
    answered_after, injected_after = await stack.emulator_counts()
    answered, injected = answered_after - answered_before, injected_after - injected_before
    paid, repeated = await stack.stored_calls(since)
    unstored = max(answered - paid, 0)
    return Row(
        fault=fault.name,
        started=outcome.started,
        completed=outcome.completed,
        failed=outcome.failed,
        lost=outcome.lost,
        paid_twice=repeated + (0 if fault.kills_agent else unstored),
        in_flight_repeated=unstored if fault.kills_agent else 0,
        injected=injected,
        seconds=round(time.monotonic() - started, 1),
        failures=outcome.failures,
        problems=outcome.problems,
    )


def table(rows: list[Row]) -> str:
    """For people: one line per fault, then what failed and what was lost."""
    head = ("fault", "started", "completed", "failed", "lost", "paid twice", "in flight", "injected", "seconds")
    lines = [
        (r.fault, r.started, r.completed, r.failed, r.lost, r.paid_twice, r.in_flight_repeated, r.injected, r.seconds)
        for r in rows
    ]
    widths = [max(len(str(x)) for x in column) for column in zip(head, *lines, strict=True)]
    out = []
    for line in (head, *lines):
        cells = [
            str(x).ljust(w) if i == 0 else str(x).rjust(w) for i, (x, w) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells))
    out.insert(1, "  ".join("-" * w for w in widths))
    for r in rows:
        out += [f"  {r.fault}: failed: {f}" for f in r.failures]
        out += [f"  {r.fault}: LOST: {p}" for p in r.problems]
    return "\n".join(out)
