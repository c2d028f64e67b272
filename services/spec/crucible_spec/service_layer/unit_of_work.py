"""The unit of work: one transaction, the repository bound to it, commit or roll back."""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from crucible_spec.adapters.repository import AbstractSpecRepository, SqlSpecRepository


class AbstractUnitOfWork(abc.ABC):
    repo: AbstractSpecRepository

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


class SqlUnitOfWork(AbstractUnitOfWork):
    """A transaction on one pooled connection.

    ``read_only`` units run in autocommit: a use case that only reads needs no BEGIN/ROLLBACK
    round trips, which are most of the cost of a one-row read.
    """

    def __init__(self, engine: AsyncEngine, *, read_only: bool = False) -> None:
        self._engine = engine
        self._read_only = read_only
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> Self:
        self._conn = await self._engine.connect()
        if self._read_only:
            self._conn = await self._conn.execution_options(isolation_level="AUTOCOMMIT")
        else:
            await self._conn.begin()
        self.repo = SqlSpecRepository(self._conn)
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
