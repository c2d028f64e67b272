"""The unit of work: one transaction, the repository bound to it, commit or roll back."""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection

from crucible_common.unit_of_work import SqlTransaction
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


class SqlUnitOfWork(SqlTransaction, AbstractUnitOfWork):
    def bind(self, conn: AsyncConnection) -> None:
        self.repo = SqlSpecRepository(conn)
