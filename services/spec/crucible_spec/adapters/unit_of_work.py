"""The spec context's unit of work over SQL: its repository on one connection."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from crucible_common.unit_of_work import SqlTransaction
from crucible_spec.adapters.repository import SqlSpecRepository
from crucible_spec.service_layer.unit_of_work import AbstractUnitOfWork


class SqlUnitOfWork(SqlTransaction, AbstractUnitOfWork):
    def bind(self, conn: AsyncConnection) -> None:
        self.repo = SqlSpecRepository(conn)
