"""The SQL half of every service's unit of work: one pooled connection, one transaction."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from types import TracebackType
from typing import Generic, Self, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from crucible_common.errors import DatabaseUnavailable
from crucible_common.leases import LEASE_SECONDS, Lease, LeasedTable, assert_held, revoke, take

R = TypeVar("R")


class AbstractUnitOfWork(abc.ABC, Generic[R]):
    """What handlers see: ``repo``, ``commit``; leaving the block rolls back what was not committed."""

    repo: R

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.rollback()

    @abc.abstractmethod
    async def commit(self) -> None: ...

    @abc.abstractmethod
    async def rollback(self) -> None: ...

    async def take_lease(self, resource: str, id_: str, owner: str) -> Lease:
        """Give ``owner`` the lease of new or started work, in this unit's transaction."""
        raise NotImplementedError(f"{type(self).__name__} holds no leased work")

    async def revoke_lease(self, resource: str, id_: str) -> None:
        """Take the work's lease from whoever holds it, in this unit's transaction (a cancel)."""
        raise NotImplementedError(f"{type(self).__name__} holds no leased work")


class SqlTransaction(abc.ABC):
    """Opens a connection on enter, binds the repositories, rolls back whatever was not committed.

    ``read_only`` units run in autocommit: a use case that only reads needs no BEGIN/ROLLBACK
    round trips, which are most of the cost of a one-row read. ``single_statement`` units write
    with one statement, atomic by itself, so they too skip BEGIN/COMMIT; ``commit`` is then a
    no-op kept so handlers read the same either way.

    A unit given a ``lease`` writes leased work: it begins by fencing (``leases.assert_held``),
    so it raises ``LeaseLost`` instead of writing for a process that no longer owns the work.
    """

    # Each service's unit of work names the tables whose rows are leased work, by resource.
    leased_tables: Mapping[str, LeasedTable] = {}

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        read_only: bool = False,
        single_statement: bool = False,
        lease: Lease | None = None,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self._engine = engine
        self._read_only = read_only
        self._lease = lease
        # How long a lease taken here lasts: the service's setting, which its heartbeat is paced to.
        self._lease_seconds = lease_seconds
        self._autocommit = (read_only or single_statement) and lease is None
        self._conn: AsyncConnection | None = None

    @abc.abstractmethod
    def bind(self, conn: AsyncConnection) -> None:
        """Create the repositories on ``conn``; each service's unit of work implements it."""

    async def __aenter__(self) -> Self:
        try:
            conn = await self._engine.connect()
        # The driver's socket errors (a Unix socket gone while Postgres restarts, a refused TCP
        # connection) reach here unwrapped; named here, they cannot pass for any other OSError.
        except OSError as exc:
            raise DatabaseUnavailable(f"the database is unavailable: {exc}") from exc
        if self._autocommit:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        else:
            await conn.begin()
        self._conn = conn
        try:
            if self._lease is not None:
                await assert_held(conn, self.leased_tables[self._lease.resource], self._lease)
        except BaseException:
            await conn.close()
            self._conn = None
            raise
        self.bind(conn)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self.rollback()
        finally:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None

    async def commit(self) -> None:
        assert self._conn is not None, "commit() outside `async with`"
        if self._read_only:
            raise RuntimeError("commit() on a read-only unit of work")
        if not self._autocommit:
            await self._conn.commit()

    async def rollback(self) -> None:
        if self._conn is not None and self._conn.in_transaction():
            await self._conn.rollback()

    async def take_lease(self, resource: str, id_: str, owner: str) -> Lease:
        assert self._conn is not None, "take_lease() outside `async with`"
        return await take(self._conn, self.leased_tables[resource], id_, owner, self._lease_seconds)

    async def revoke_lease(self, resource: str, id_: str) -> None:
        assert self._conn is not None, "revoke_lease() outside `async with`"
        await revoke(self._conn, self.leased_tables[resource], id_)
