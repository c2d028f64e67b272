"""Calls to the other services: their answer, or their error as a ``CrucibleError`` with its own code.

Every call waits for a restarting service (``wait_for_ready``) up to its deadline, so a neighbour
restarted under ``crucible up`` delays a replay rather than failing it; what still fails reaches the
use case as the callee's status (RelayedError), translated here once — except a status that is
only the callee's absence (UNAVAILABLE, DEADLINE_EXCEEDED): that is ``Unavailable``, which a suite,
as leased work, waits out and goes on from what it stored instead of failing a replay for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from crucible_common.errors import CrucibleError, Unavailable, details_of, relayed

T = TypeVar("T")


async def call(rpc: Callable[[], Awaitable[T]]) -> T:
    try:
        return await rpc()
    except grpc.aio.AioRpcError as exc:
        raise translated(exc) from exc


async def call_or_none(rpc: Callable[[], Awaitable[T]]) -> T | None:
    """The answer, or None when the callee says there is no such thing."""
    try:
        return await rpc()
    except grpc.aio.AioRpcError as exc:
        if exc.code() is grpc.StatusCode.NOT_FOUND:
            return None
        raise translated(exc) from exc


_NO_ANSWER = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


def translated(error: grpc.aio.AioRpcError) -> CrucibleError:
    """The callee's error as it came, or ``Unavailable`` when it is only the callee's absence."""
    if error.code() not in _NO_ANSWER:
        return relayed(error)
    details = details_of(error)
    return Unavailable(
        f"{error.code().name}: {details.message or 'no answer'}",
        reason=details.reason or error.code().name,
        metadata=details.metadata,
    )
