"""The snapshot context's unit of work, as the use cases see it."""

from __future__ import annotations

from typing import Protocol

from crucible_common.leases import Lease
from crucible_common.unit_of_work import AbstractUnitOfWork as _AbstractUnitOfWork
from crucible_snapshot.service_layer.ports import AbstractSnapshotRepository

# The leased work of the snapshot context: a test suite in progress.
TEST_REPORT = "test_report"


class AbstractUnitOfWork(_AbstractUnitOfWork[AbstractSnapshotRepository]):
    pass


class UowFactory(Protocol):
    def __call__(
        self, *, read_only: bool = False, single_statement: bool = False, lease: Lease | None = None
    ) -> AbstractUnitOfWork: ...
