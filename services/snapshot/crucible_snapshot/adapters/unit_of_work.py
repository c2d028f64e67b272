"""The snapshot context's unit of work over SQL: its repository on one connection, its leased table."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from crucible_common.unit_of_work import SqlTransaction
from crucible_snapshot.adapters.repository import SqlSnapshotRepository
from crucible_snapshot.adapters.tables import LEASED_REPORTS
from crucible_snapshot.service_layer.unit_of_work import AbstractUnitOfWork


class SqlUnitOfWork(SqlTransaction, AbstractUnitOfWork):
    leased_tables = {LEASED_REPORTS.resource: LEASED_REPORTS}

    def bind(self, conn: AsyncConnection) -> None:
        self.repo = SqlSnapshotRepository(conn)
