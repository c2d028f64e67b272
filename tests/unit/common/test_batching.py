"""Group commit and group lookup: concurrent callers share one write or one query, and its failure."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Mapping, Sequence

import pytest

from crucible_common.batching import GroupCommit, GroupLookup


async def test_callers_arriving_during_a_write_are_written_together_by_the_next() -> None:
    writes: list[list[int]] = []

    async def write(items: list[int]) -> None:
        writes.append(items)
        await asyncio.sleep(0.01)

    group = GroupCommit(write)
    first = asyncio.create_task(group.store(0))
    await asyncio.sleep(0.001)
    await asyncio.gather(first, *(group.store(i) for i in range(1, 10)))

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
    first = asyncio.create_task(group.store(0))
    await asyncio.sleep(0.001)
    results = await asyncio.gather(first, *(group.store(i) for i in range(1, 5)), return_exceptions=True)
    assert calls[:2] == [[0], [1, 2, 3, 4]]
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
    first = asyncio.create_task(lookup.get("a"))
    await asyncio.sleep(0.001)
    found = await asyncio.gather(first, lookup.get("bb"), lookup.get("bb"), lookup.get("missing"))

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


async def test_a_caller_that_leaves_stops_waiting_but_nothing_of_its_round_is_dropped() -> None:
    """A client gone mid-write (its request cancelled): its paid answer is stored all the same, and
    the others' writes, in its round or the next, go on as if nothing happened."""
    written: list[list[int]] = []
    release = asyncio.Event()

    async def write(items: list[int]) -> None:
        await release.wait()
        written.append(items)

    group = GroupCommit(write)
    first = asyncio.create_task(group.store(0))
    await asyncio.sleep(0.001)
    others = [asyncio.create_task(group.store(i)) for i in (1, 2)]
    await asyncio.sleep(0.001)
    first.cancel()
    await asyncio.sleep(0.001)
    release.set()

    results = await asyncio.wait_for(asyncio.gather(first, *others, return_exceptions=True), 1)
    assert isinstance(results[0], asyncio.CancelledError)
    assert results[1:] == [None, None]
    assert written == [[0], [1, 2]]


async def test_a_lookup_whose_caller_leaves_still_answers_the_others() -> None:
    release = asyncio.Event()

    async def fetch(keys: Sequence[str]) -> Mapping[str, int]:
        await release.wait()
        return {k: len(k) for k in keys}

    lookup = GroupLookup(fetch)
    leaving = asyncio.create_task(lookup.get("a"))
    staying = asyncio.create_task(lookup.get("bb"))
    await asyncio.sleep(0.001)
    leaving.cancel()
    await asyncio.sleep(0.001)
    release.set()

    assert await asyncio.wait_for(staying, 1) == 2
    with pytest.raises(asyncio.CancelledError):
        await leaving


async def test_flush_starts_a_lingering_write_at_once_and_later_ones_without_linger() -> None:
    writes: list[list[int]] = []

    async def write(batch: list[int]) -> None:
        writes.append(batch)

    group = GroupCommit(write, linger=60)
    first = asyncio.create_task(group.store(1))
    await asyncio.sleep(0.01)
    assert writes == []  # waiting out its linger
    group.flush()
    await asyncio.wait_for(first, 5)
    assert writes == [[1]]
    await asyncio.wait_for(group.store(2), 5)
    assert writes == [[1], [2]]


async def test_settled_waits_for_the_rounds_of_callers_that_left() -> None:
    written: list[int] = []
    release = asyncio.Event()

    async def write(items: list[int]) -> None:
        await release.wait()
        written.extend(items)

    group = GroupCommit(write)
    callers = [asyncio.create_task(group.store(i)) for i in range(3)]
    await asyncio.sleep(0.01)
    for caller in callers:
        caller.cancel()  # as a phase stopped by its deadline cancels its evaluations
    settled = asyncio.create_task(group.settled())
    await asyncio.sleep(0.01)
    assert not settled.done(), "a round is still writing"

    release.set()
    await asyncio.wait_for(settled, 1)
    assert sorted(written) == [0, 1, 2]
    await group.settled()  # nothing in flight: at once


async def test_a_lookup_after_a_quiet_spell_starts_at_once_and_a_burst_behind_it_lingers() -> None:
    queries: list[Sequence[str]] = []

    async def fetch(keys: Sequence[str]) -> Mapping[str, int]:
        queries.append(keys)
        await asyncio.sleep(0.01)  # a round in flight: what arrives meanwhile waits for the next
        return {k: int(k) for k in keys}

    # A linger no test run would sit out: a round that waits for it never ends in time.
    lookup = GroupLookup(fetch, linger=60, quiet=0.5)

    # Nothing asked before: the first lookup's round does not wait, and those asked while it is
    # in flight share the one after it.
    async def later(i: int) -> int | None:
        await asyncio.sleep(0.002 * i)
        return await lookup.get(str(i))

    found = await asyncio.wait_for(asyncio.gather(*(later(i) for i in range(3))), timeout=5)
    assert list(found) == [0, 1, 2]
    assert queries == [["0"], ["1", "2"]]

    # Within the quiet spell the burst goes on: the next lookup lingers (for company).
    lookup_in_burst = asyncio.create_task(lookup.get("3"))
    await asyncio.sleep(0.03)
    assert not lookup_in_burst.done()
    lookup.flush()
    assert await asyncio.wait_for(lookup_in_burst, timeout=5) == 3


async def test_a_lookup_after_the_quiet_spell_starts_at_once_again() -> None:
    queries: list[Sequence[str]] = []

    async def fetch(keys: Sequence[str]) -> Mapping[str, int]:
        queries.append(keys)
        return {k: int(k) for k in keys}

    lookup = GroupLookup(fetch, linger=60, quiet=0.02)
    assert await asyncio.wait_for(lookup.get("1"), timeout=5) == 1
    await asyncio.sleep(0.05)
    assert await asyncio.wait_for(lookup.get("2"), timeout=5) == 2
    assert queries == [["1"], ["2"]]


async def test_an_item_handed_in_is_in_the_next_write_at_once_and_a_failure_nobody_awaits_is_not_logged() -> None:
    """``submit`` / ``ask``: the item is in before the caller's next await (a caller stopped in that
    turn loses nothing), and the future of a failed round that nobody awaits (its asker left) is read,
    not reported by asyncio as "exception was never retrieved"."""
    written: list[list[int]] = []
    failing = True

    async def write(items: list[int]) -> None:
        if failing:
            raise RuntimeError("database away")
        written.append(items)

    async def fetch(keys: Sequence[str]) -> Mapping[str, int]:
        raise RuntimeError("database away")

    reported: list[dict[str, object]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: reported.append(context))
    try:
        commit, lookup = GroupCommit(write), GroupLookup(fetch)
        unawaited = [commit.submit(1), lookup.ask("a")]

        async def asks() -> None:
            await asyncio.shield(lookup.ask("b"))

        asker = asyncio.create_task(asks())
        await asyncio.sleep(0)
        asker.cancel()  # shield lets go of the future it guarded
        await commit.settled()
        await lookup.settled()
        await asyncio.sleep(0)
        del unawaited
        gc.collect()
        await asyncio.sleep(0)
        assert reported == []

        failing = False
        handed = commit.submit(2)
        # Already waiting for its write: nothing has run since.
        assert commit._pending[0][0] == 2
        await handed
        assert written == [[2]]
    finally:
        loop.set_exception_handler(None)
