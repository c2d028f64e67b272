"""The spec context's unit of work."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from crucible_common.unit_of_work import AbstractUnitOfWork as _AbstractUnitOfWork
from crucible_common.unit_of_work import SqlTransaction
from crucible_spec.adapters.repository import AbstractSpecRepository, SqlSpecRepository


class AbstractUnitOfWork(_AbstractUnitOfWork[AbstractSpecRepository]):
    pass


class SqlUnitOfWork(SqlTransaction, AbstractUnitOfWork):
    def bind(self, conn: AsyncConnection) -> None:
        self.repo = SqlSpecRepository(conn)
