"""The agent context's unit of work, as the use cases see it."""

from __future__ import annotations

from typing import Protocol

from crucible_agent.service_layer.ports import AbstractAgentRepository, AbstractSprintRepository
from crucible_common.leases import Lease
from crucible_common.unit_of_work import AbstractUnitOfWork as _AbstractUnitOfWork

# The leased kinds of work of the agent context.
AGENT_RUN = "agent_run"
SPRINT = "sprint"


class AbstractUnitOfWork(_AbstractUnitOfWork[AbstractAgentRepository]):
    sprints: AbstractSprintRepository


class UowFactory(Protocol):
    """Opens a unit of work; one given a ``lease`` is fenced by it (see ``crucible_common.leases``)."""

    def __call__(
        self, *, read_only: bool = False, single_statement: bool = False, lease: Lease | None = None
    ) -> AbstractUnitOfWork: ...
