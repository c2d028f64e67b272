"""relay: a use case's progress callback as a server stream."""

from __future__ import annotations

import asyncio

import pytest

from crucible_common.streams import Emit, relay


async def test_items_come_as_they_are_emitted_then_the_result() -> None:
    seen_at: list[str] = []

    async def work(emit: Emit[str]) -> str:
        await emit("a")
        await asyncio.sleep(0.01)
        seen_at.append("after a")
        await emit("b")
        return "done"

    received = []
    async for item in relay(work):
        received.append(item)
        if item == "a":
            # The consumer has "a" before the work went on.
            assert seen_at == []
    assert received == ["a", "b", "done"]


async def test_the_works_error_follows_what_it_emitted() -> None:
    async def work(emit: Emit[str]) -> str:
        await emit("a")
        raise LookupError("gone")

    received: list[str] = []

    async def consume() -> None:
        async for item in relay(work):
            received.append(item)

    with pytest.raises(LookupError, match="gone"):
        await consume()
    assert received == ["a"]


async def test_a_consumer_that_stops_cancels_the_work() -> None:
    cancelled = asyncio.Event()

    async def work(emit: Emit[str]) -> str:
        await emit("a")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    stream = relay(work)
    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]
    assert cancelled.is_set()
