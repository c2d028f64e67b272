"""Leased work: one mechanism for every kind of long work (agent runs, sprints, pipeline runs).

Work in progress is a row with three lease columns: ``lease_owner`` (the process executing it),
``lease_token`` (a fencing token, raised by every claim) and ``lease_expires_at``. The owner
renews the lease while it works (the heartbeat). A lease that is not renewed lapses; a live
process then claims the row (``FOR UPDATE SKIP LOCKED``, so two processes never claim the same
one), takes a new token and continues the work from what is stored.

Every write of leased work is fenced: the unit of work that writes it first locks the row
(``FOR NO KEY UPDATE``) where owner and token are still the writer's own. A process that lost its
lease therefore cannot commit even one more step, and a claim waits until a fenced write in
flight has committed. Fenced writes of one piece of work take turns on its row, which also
orders what they append to it (checkpoint sequences); each is one short transaction. Times come
from the database clock, so replicas on hosts whose clocks differ agree on when a lease lapsed.

Why hand-written: pgqueuer's jobs have heartbeats and re-pickup, but a job queue cannot fence
the writes our own tables receive inside our own transactions; DBOS Transact was measured and
rejected (a dead replica's workflows stay stuck without its proprietary add-on; about 3.5 ms of
CPU per checkpointed step). What is needed is these few statements.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import grpc
from sqlalchemy import ColumnElement, Table, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from crucible_common.database import database_unavailable
from crucible_common.errors import CrucibleError, Unavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")

LEASE_SECONDS = 15.0
HEARTBEAT_SECONDS = 5.0


def process_owner() -> str:
    """This process's name in the leases it takes: host and pid, plus a random part (pids repeat)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Lease:
    """The right to execute one piece of work; ``token`` fences its writes."""

    resource: str
    id: str
    owner: str
    token: int


class LeaseLost(CrucibleError):
    """Another process holds the work now: stop without writing anything more."""

    code = grpc.StatusCode.ABORTED
    default_reason = "LEASE_LOST"

    def __init__(self, lease: Lease) -> None:
        super().__init__(f"{lease.resource} {lease.id}: lease lost by {lease.owner}", metadata={"id": lease.id})
        self.lease = lease


class LeaseStore(Protocol):
    """What holding and reclaiming work needs of the database (a fake in unit tests)."""

    async def claim_stale(self, limit: int) -> list[Lease]: ...

    async def renew(self, lease: Lease) -> bool: ...


@dataclass(frozen=True)
class LeasedTable:
    """A table of leased work: ``live`` says which rows are still work in progress."""

    resource: str
    table: Table
    live: ColumnElement[bool]

    @property
    def _c(self) -> Any:
        return self.table.c


def expires_in(seconds: float | ColumnElement[Any]) -> ColumnElement[Any]:
    """``seconds`` from now by the database clock: when a lease (or claim) taken now lapses."""
    return func.now() + func.make_interval(0, 0, 0, 0, 0, 0, seconds)


async def take(
    conn: AsyncConnection, leased: LeasedTable, id_: str, owner: str, seconds: float = LEASE_SECONDS
) -> Lease:
    """Give ``owner`` the lease of row ``id_`` in the caller's transaction (new or started work)."""
    c = leased._c
    token = await conn.scalar(
        update(leased.table)
        .where(c.id == id_)
        .values(lease_owner=owner, lease_token=c.lease_token + 1, lease_expires_at=expires_in(seconds))
        .returning(c.lease_token)
    )
    if token is None:
        raise LookupError(f"{leased.resource} {id_} does not exist")
    return Lease(leased.resource, id_, owner, int(token))


async def revoke(conn: AsyncConnection, leased: LeasedTable, id_: str) -> None:
    """Take the lease of row ``id_`` from whoever holds it (a cancel): their next fenced write fails."""
    c = leased._c
    await conn.execute(
        update(leased.table)
        .where(c.id == id_)
        .values(lease_owner="", lease_token=c.lease_token + 1, lease_expires_at=None)
    )


async def assert_held(conn: AsyncConnection, leased: LeasedTable, lease: Lease) -> None:
    """The fence: lock the row for the rest of the transaction if ``lease`` is still its lease.

    An exclusive lock, not a shared one: writers that go on to lock the row for an update of
    their own would otherwise deadlock, each holding a share the other waits on.
    """
    c = leased._c
    held = await conn.scalar(
        select(c.id)
        .where(c.id == lease.id, c.lease_owner == lease.owner, c.lease_token == lease.token)
        .with_for_update(key_share=True)
    )
    if held is None:
        raise LeaseLost(lease)


class SqlLeaseStore:
    """Claims and renews the leases of one table, each in a short transaction of its own."""

    def __init__(self, engine: AsyncEngine, leased: LeasedTable, owner: str, *, seconds: float = LEASE_SECONDS) -> None:
        self._engine = engine
        self._leased = leased
        self.owner = owner
        self._seconds = seconds

    async def claim_stale(self, limit: int) -> list[Lease]:
        c = self._leased._c
        stale = (
            select(c.id)
            .where(self._leased.live, or_(c.lease_expires_at.is_(None), c.lease_expires_at < func.now()))
            .order_by(c.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self._engine.begin() as conn:
            rows = await conn.execute(
                update(self._leased.table)
                .where(c.id.in_(stale.scalar_subquery()))
                .values(
                    lease_owner=self.owner, lease_token=c.lease_token + 1, lease_expires_at=expires_in(self._seconds)
                )
                .returning(c.id, c.lease_token)
            )
            claimed = [Lease(self._leased.resource, str(id_), self.owner, int(token)) for id_, token in rows]
        return claimed

    async def renew(self, lease: Lease) -> bool:
        c = self._leased._c
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(self._leased.table)
                .where(c.id == lease.id, c.lease_owner == lease.owner, c.lease_token == lease.token, self._leased.live)
                .values(lease_expires_at=expires_in(self._seconds))
            )
        return bool(result.rowcount)


async def hold(
    store: LeaseStore, lease: Lease, work: Awaitable[T], *, heartbeat_seconds: float = HEARTBEAT_SECONDS
) -> T:
    """Await ``work`` while renewing ``lease``; if another process takes it, cancel the work and raise LeaseLost.

    A renewal that fails (the database away for a moment) is retried at the next beat: the lease
    still has time, and the fence stops any write should it lapse meanwhile.
    """
    task = asyncio.ensure_future(work)
    lost = asyncio.Event()

    async def beat() -> None:
        while not task.done():
            await asyncio.sleep(heartbeat_seconds)
            try:
                held = await store.renew(lease)
            except (SQLAlchemyError, OSError):
                logger.warning("%s %s: could not renew its lease", lease.resource, lease.id, exc_info=True)
                continue
            if not held:
                logger.warning("%s %s: lease lost; its work here stops", lease.resource, lease.id)
                lost.set()
                task.cancel()
                return

    heartbeat = asyncio.create_task(beat())
    try:
        return await task
    except asyncio.CancelledError:
        me = asyncio.current_task()
        if lost.is_set() and (me is None or not me.cancelling()):
            raise LeaseLost(lease) from None
        raise
    finally:
        heartbeat.cancel()


async def reclaim(store: LeaseStore, launch: Callable[[Lease], object], *, batch: int = 10) -> int:
    """Claim up to ``batch`` pieces of work whose lease lapsed (their process died) and launch each."""
    leases = await store.claim_stale(batch)
    for lease in leases:
        logger.info("%s %s: lease lapsed; continuing it from what is stored", lease.resource, lease.id)
        launch(lease)
    return len(leases)


async def reclaim_forever(
    store: LeaseStore,
    launch: Callable[[Lease], object],
    *,
    interval: float = HEARTBEAT_SECONDS,
    batch: int = 10,
) -> None:
    """For the service's lifetime: ``reclaim`` now and then."""
    while True:
        try:
            await reclaim(store, launch, batch=batch)
        # The loop must outlive a lost database; the next round tries again.
        except (SQLAlchemyError, OSError):
            logger.warning("claiming abandoned work failed; will retry", exc_info=True)
        await asyncio.sleep(interval)


class Workers:
    """The leased work this process executes in its background: a task a lease, held until it ends.

    ``work(lease)`` does the work (a sprint's phases, a run's pipeline) from what is stored, so the
    same call starts new work and continues work claimed from a dead process. A task whose lease
    is taken by another process stops without writing more; one that fails is logged here, never
    left as an unobserved dead task.
    """

    def __init__(
        self,
        store: LeaseStore,
        work: Callable[[Lease], Awaitable[None]],
        *,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        resume_batch: int = 10,
    ) -> None:
        self._store = store
        self._work = work
        self._heartbeat = heartbeat_seconds
        self._batch = resume_batch
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._leases: dict[str, Lease] = {}

    def launch(self, lease: Lease) -> None:
        """Execute the work ``lease`` names to its end here, unless this process executes it already
        under that lease (or a newer one)."""
        running = self._tasks.get(lease.id)
        if running is not None and not running.done():
            if lease.token <= self._leases[lease.id].token:
                return
            # Claimed again while it still runs here on its older lease (which lapsed: a database
            # away long enough): that task is fenced out already, and the new lease, left unheld,
            # would lapse in turn. It takes over once the old task has stopped.
            running.cancel()
            work = self._after(running, lease)
        else:
            work = self._drive(lease)
        task = asyncio.create_task(work, name=f"{lease.resource} {lease.id}")
        self._tasks[lease.id] = task
        self._leases[lease.id] = lease
        task.add_done_callback(lambda done: self._forget(lease.id, done))

    def stop(self, id_: str) -> None:
        """Stop the work's task in this process, if it runs here (a cancel)."""
        task = self._tasks.get(id_)
        if task is not None:
            task.cancel()

    async def wait(self, id_: str) -> None:
        """Until the work's task in this process has stopped."""
        task = self._tasks.get(id_)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    async def resume_forever(self) -> None:
        """For the service's lifetime: continue work whose lease lapsed, from what it stored."""
        await reclaim_forever(self._store, self.launch, interval=self._heartbeat, batch=self._batch)

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def _forget(self, id_: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(id_) is task:
            del self._tasks[id_]
            del self._leases[id_]

    async def _after(self, previous: asyncio.Task[None], lease: Lease) -> None:
        await asyncio.gather(previous, return_exceptions=True)
        await self._drive(lease)

    async def _drive(self, lease: Lease) -> None:
        while True:
            try:
                await hold(self._store, lease, self._work(lease), heartbeat_seconds=self._heartbeat)
            except LeaseLost:
                logger.warning("%s %s: another process owns it now; its work here stops", lease.resource, lease.id)
            except Exception as exc:
                # The database went away (a restart, a failover), or a service the work needs did
                # not answer: the work is not at fault. Once they answer, it goes on from what it
                # stored, still under this lease (its fence stops every write should another
                # process have taken the work meanwhile).
                if database_unavailable(exc) or isinstance(exc, Unavailable):
                    logger.warning(
                        "%s %s: away for now (%s); going on from what is stored in %.0fs",
                        *(lease.resource, lease.id, exc, self._heartbeat),
                    )
                    await asyncio.sleep(self._heartbeat)
                    continue
                # The work ends failing work itself (as FAILED); what escapes it is logged, not lost.
                logger.exception("%s %s: its work stopped unexpectedly", lease.resource, lease.id)
            return
