"""Group commit and group lookup: concurrent callers share one write or one query, and its failure."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from crucible_common.batching import GroupCommit, GroupLookup


async def test_callers_arriving_during_a_write_are_written_together_by_the_next() -> None:
    writes: list[list[int]] = []

    async def write(items: list[int]) -> None:
        writes.append(items)
        await asyncio.sleep(0.01)

    group = GroupCommit(write)
    await asyncio.gather(*(group.store(i) for i in range(10)))

    assert writes == [[0], list(range(1, 10))]


async def test_linger_gathers_a_burst_into_one_write() -> None:
    writes: list[list[int]] = []

    async def write(items: list[int]) -> None:
        writes.append(items)

    group = GroupCommit(write, linger=0.01)

    async def later(i: int) -> None:
        await asyncio.sleep(0.001 * i)
        await group.store(i)

    await asyncio.gather(*(later(i) for i in range(5)))
    assert writes == [[0, 1, 2, 3, 4]]


async def test_no_caller_returns_before_its_item_is_written() -> None:
    written: set[int] = set()

    async def write(items: list[int]) -> None:
        await asyncio.sleep(0.005)
        written.update(items)

    group = GroupCommit(write)

    async def store(i: int) -> None:
        await group.store(i)
        assert i in written

    await asyncio.gather(*(store(i) for i in range(20)))
    assert written == set(range(20))


async def test_a_failed_write_fails_every_item_it_carried_and_the_next_write_starts_clean() -> None:
    calls: list[list[int]] = []

    async def write(items: list[int]) -> None:
        calls.append(items)
        await asyncio.sleep(0.005)
        if 3 in items:
            raise OSError("database gone")

    group = GroupCommit(write)
    results = await asyncio.gather(*(group.store(i) for i in range(5)), return_exceptions=True)
    assert results[0] is None
    assert all(isinstance(r, OSError) for r in results[1:])

    await group.store(7)
    assert calls[-1] == [7]


async def test_concurrent_lookups_are_one_query_for_their_distinct_keys() -> None:
    queries: list[Sequence[str]] = []

    async def fetch(keys: Sequence[str]) -> Mapping[str, int]:
        queries.append(keys)
        await asyncio.sleep(0.005)
        return {k: len(k) for k in keys if k != "missing"}

    lookup = GroupLookup(fetch)
    found = await asyncio.gather(lookup.get("a"), lookup.get("bb"), lookup.get("bb"), lookup.get("missing"))

    assert list(found) == [1, 2, 2, None]
    assert queries == [["a"], ["bb", "missing"]]


async def test_linger_gathers_a_burst_of_lookups_into_one_query() -> None:
    queries: list[Sequence[str]] = []

    async def fetch(keys: Sequence[str]) -> Mapping[str, int]:
        queries.append(keys)
        return {k: int(k) for k in keys}

    # Arrivals 1 ms apart, a wait far longer than all of them: room for a slow machine.
    lookup = GroupLookup(fetch, linger=0.05)

    async def later(i: int) -> int | None:
        await asyncio.sleep(0.001 * i)
        return await lookup.get(str(i))

    found = await asyncio.gather(*(later(i) for i in range(5)))

    assert list(found) == [0, 1, 2, 3, 4]
    assert queries == [["0", "1", "2", "3", "4"]]


async def test_a_failed_lookup_fails_its_callers() -> None:
    async def fetch(keys: Sequence[str]) -> Mapping[str, int]:
        await asyncio.sleep(0)
        raise OSError("database gone")

    lookup = GroupLookup(fetch)
    with pytest.raises(OSError, match="database gone"):
        await lookup.get("a")


async def test_a_cancelled_writer_leaves_no_caller_waiting_forever() -> None:
    async def write(items: list[int]) -> None:
        await asyncio.sleep(10)

    group = GroupCommit(write)
    writer = asyncio.create_task(group.store(0))
    await asyncio.sleep(0)
    others = [asyncio.create_task(group.store(i)) for i in (1, 2)]
    await asyncio.sleep(0)
    writer.cancel()

    results = await asyncio.wait_for(asyncio.gather(writer, *others, return_exceptions=True), 1)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
