"""Keyed work runs once at a time, and to its end when its callers leave."""

from __future__ import annotations

import asyncio

import pytest

from crucible_common.single_flight import SingleFlight


async def test_a_second_caller_joins_the_work_in_flight() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    runs = 0
    release = asyncio.Event()

    async def work() -> int:
        nonlocal runs
        runs += 1
        await release.wait()
        return runs

    first = asyncio.create_task(flights.run("k", work))
    second = asyncio.create_task(flights.run("k", work))
    await asyncio.sleep(0)
    release.set()
    assert list(await asyncio.gather(first, second)) == [1, 1]
    # Done: the next call runs the work again (what it stored answers it then).
    assert await flights.run("k", work) == 2


async def test_a_caller_that_leaves_does_not_stop_the_work() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    finished = asyncio.Event()

    async def work() -> str:
        await asyncio.sleep(0.05)
        finished.set()
        return "stored"

    caller = asyncio.create_task(flights.run("k", work))
    await asyncio.sleep(0.01)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await asyncio.wait_for(finished.wait(), 1)


async def test_a_failure_reaches_every_caller_and_the_key_is_free_again() -> None:
    flights: SingleFlight[str, None] = SingleFlight()

    async def boom() -> None:
        await asyncio.sleep(0)
        raise ValueError("no")

    results = await asyncio.gather(flights.run("k", boom), flights.run("k", boom), return_exceptions=True)
    assert [type(r) for r in results] == [ValueError, ValueError]

    async def fine() -> None:
        return None

    await flights.run("k", fine)
