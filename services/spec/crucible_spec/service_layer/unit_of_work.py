"""The spec context's unit of work, as the use cases see it."""

from __future__ import annotations

from crucible_common.unit_of_work import AbstractUnitOfWork as _AbstractUnitOfWork
from crucible_spec.service_layer.ports import AbstractSpecRepository


class AbstractUnitOfWork(_AbstractUnitOfWork[AbstractSpecRepository]):
    pass
