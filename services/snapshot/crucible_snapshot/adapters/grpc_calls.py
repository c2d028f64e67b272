"""Calls to the other services: their answer, or their error as a ``CrucibleError`` with its own code.

Every call waits for a restarting service (``wait_for_ready``) up to its deadline, so a neighbour
restarted under ``crucible up`` delays a replay rather than failing it; what still fails reaches the
use case as the callee's status (RelayedError), translated here once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from crucible_common.errors import relayed

T = TypeVar("T")


async def call(rpc: Callable[[], Awaitable[T]]) -> T:
    try:
        return await rpc()
    except grpc.aio.AioRpcError as exc:
        raise relayed(exc) from exc


async def call_or_none(rpc: Callable[[], Awaitable[T]]) -> T | None:
    """The answer, or None when the callee says there is no such thing."""
    try:
        return await rpc()
    except grpc.aio.AioRpcError as exc:
        if exc.code() is grpc.StatusCode.NOT_FOUND:
            return None
        raise relayed(exc) from exc
