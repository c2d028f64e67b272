"""The agent context's unit of work."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from crucible_agent.adapters.repository import AbstractAgentRepository, SqlAgentRepository
from crucible_agent.adapters.sprint_repository import AbstractSprintRepository, SqlSprintRepository
from crucible_common.unit_of_work import AbstractUnitOfWork as _AbstractUnitOfWork
from crucible_common.unit_of_work import SqlTransaction


class AbstractUnitOfWork(_AbstractUnitOfWork[AbstractAgentRepository]):
    sprints: AbstractSprintRepository


class SqlUnitOfWork(SqlTransaction, AbstractUnitOfWork):
    def bind(self, conn: AsyncConnection) -> None:
        self.repo = SqlAgentRepository(conn)
        self.sprints = SqlSprintRepository(conn)
