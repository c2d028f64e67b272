"""The agent context's unit of work over SQL: its repositories on one connection, its leased tables."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from crucible_agent.adapters.repository import SqlAgentRepository
from crucible_agent.adapters.sprint_repository import SqlSprintRepository
from crucible_agent.adapters.tables import LEASED_AGENT_RUNS, LEASED_SPRINTS
from crucible_agent.service_layer.unit_of_work import AbstractUnitOfWork
from crucible_common.unit_of_work import SqlTransaction


class SqlUnitOfWork(SqlTransaction, AbstractUnitOfWork):
    leased_tables = {t.resource: t for t in (LEASED_AGENT_RUNS, LEASED_SPRINTS)}

    def bind(self, conn: AsyncConnection) -> None:
        self.repo = SqlAgentRepository(conn)
        self.sprints = SqlSprintRepository(conn)
