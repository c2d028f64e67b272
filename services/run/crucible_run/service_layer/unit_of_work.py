"""The run context's unit of work, as the use cases see it."""

from __future__ import annotations

from typing import Protocol

from crucible_common.leases import Lease
from crucible_common.unit_of_work import AbstractUnitOfWork as _AbstractUnitOfWork
from crucible_run.service_layer.ports import AbstractRunRepository

# The leased work of the run context: a run in progress, or one whose summary is not posted yet.
RUN = "run"


class AbstractUnitOfWork(_AbstractUnitOfWork[AbstractRunRepository]):
    pass


class UowFactory(Protocol):
    def __call__(
        self, *, read_only: bool = False, single_statement: bool = False, lease: Lease | None = None
    ) -> AbstractUnitOfWork: ...
