"""The run context's unit of work over SQL: its repository on one connection, its leased table."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from crucible_common.unit_of_work import SqlTransaction
from crucible_run.adapters.repository import SqlRunRepository
from crucible_run.adapters.tables import LEASED_RUNS
from crucible_run.service_layer.unit_of_work import AbstractUnitOfWork


class SqlUnitOfWork(SqlTransaction, AbstractUnitOfWork):
    leased_tables = {LEASED_RUNS.resource: LEASED_RUNS}

    def bind(self, conn: AsyncConnection) -> None:
        self.repo = SqlRunRepository(conn)
