"""The SQL half of every service's unit of work: one pooled connection, one transaction."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class SqlTransaction:
    """Opens a connection on enter, binds the repositories, rolls back whatever was not committed.

    ``read_only`` units run in autocommit: a use case that only reads needs no BEGIN/ROLLBACK
    round trips, which are most of the cost of a one-row read.
    """

    def __init__(self, engine: AsyncEngine, *, read_only: bool = False) -> None:
        self._engine = engine
        self._read_only = read_only
        self._conn: AsyncConnection | None = None

    def bind(self, conn: AsyncConnection) -> None:
        """Create the repositories on ``conn``; each service's unit of work implements it."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        conn = await self._engine.connect()
        if self._read_only:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        else:
            await conn.begin()
        self._conn = conn
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
        await self._conn.commit()

    async def rollback(self) -> None:
        if self._conn is not None and self._conn.in_transaction():
            await self._conn.rollback()
