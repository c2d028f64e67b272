"""Holding leased work: heartbeats while it runs, and a clean stop when another process takes it."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.exc import OperationalError

from crucible_common.errors import Unavailable
from crucible_common.leases import Lease, LeaseLost, Workers, hold, reclaim

LEASE = Lease("run", "r1", "me", 3)


class Store:
    def __init__(self, answers: list[bool | Exception]) -> None:
        self.answers = answers
        self.renewed: list[Lease] = []
        self.stale: list[Lease] = []

    async def claim_stale(self, limit: int) -> list[Lease]:
        taken, self.stale = self.stale[:limit], self.stale[limit:]
        return taken

    async def renew(self, lease: Lease) -> bool:
        self.renewed.append(lease)
        answer = self.answers.pop(0) if self.answers else True
        if isinstance(answer, Exception):
            raise answer
        return answer


async def test_the_lease_is_renewed_while_the_work_runs_and_the_result_comes_back() -> None:
    store = Store([True, True, True])

    async def work() -> str:
        await asyncio.sleep(0.05)
        return "done"

    assert await hold(store, LEASE, work(), heartbeat_seconds=0.01) == "done"
    assert len(store.renewed) >= 2
    assert set(store.renewed) == {LEASE}


async def test_a_lost_lease_cancels_the_work_and_says_so() -> None:
    store = Store([True, False])
    stopped = asyncio.Event()

    async def work() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            stopped.set()

    with pytest.raises(LeaseLost) as info:
        await hold(store, LEASE, work(), heartbeat_seconds=0.01)
    assert stopped.is_set()
    assert info.value.lease == LEASE
    assert info.value.reason == "LEASE_LOST"


async def test_a_database_blip_does_not_lose_the_lease() -> None:
    store = Store([OperationalError("select", {}, OSError("gone")), True, True])

    async def work() -> int:
        await asyncio.sleep(0.05)
        return 7

    assert await hold(store, LEASE, work(), heartbeat_seconds=0.01) == 7


async def test_cancelling_the_holder_cancels_the_work_and_is_not_a_lost_lease() -> None:
    store = Store([])
    stopped = asyncio.Event()

    async def work() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            stopped.set()

    holder = asyncio.create_task(hold(store, LEASE, work(), heartbeat_seconds=0.01))
    await asyncio.sleep(0.02)
    holder.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holder
    assert stopped.is_set()


async def test_reclaim_launches_what_it_claims() -> None:
    store = Store([])
    store.stale = [Lease("run", "a", "me", 1), Lease("run", "b", "me", 1), Lease("run", "c", "me", 1)]
    launched: list[str] = []

    assert await reclaim(store, lambda lease: launched.append(lease.id), batch=2) == 2
    assert launched == ["a", "b"]
    assert await reclaim(store, lambda lease: launched.append(lease.id), batch=2) == 1
    assert launched == ["a", "b", "c"]


async def test_workers_run_a_lease_once_here_and_forget_it_when_done() -> None:
    started: list[Lease] = []
    release = asyncio.Event()

    async def work(lease: Lease) -> None:
        started.append(lease)
        await release.wait()

    workers = Workers(Store([]), work, heartbeat_seconds=0.01)
    workers.launch(LEASE)
    workers.launch(LEASE)  # a second claim of work that runs here already is ignored
    await asyncio.sleep(0.02)
    release.set()
    await workers.wait(LEASE.id)
    assert started == [LEASE]

    release.clear()
    workers.launch(LEASE)  # done, so it may run here again (claimed back after a lapse)
    await asyncio.sleep(0.02)
    assert started == [LEASE, LEASE]
    await workers.close()


async def test_a_newer_lease_of_work_running_here_takes_over_from_the_older_one() -> None:
    driven: list[int] = []
    stopped: list[int] = []

    async def work(lease: Lease) -> None:
        driven.append(lease.token)
        try:
            await asyncio.Event().wait()
        finally:
            stopped.append(lease.token)

    workers = Workers(Store([]), work, heartbeat_seconds=10)
    workers.launch(LEASE)
    await asyncio.sleep(0.01)
    # Its lease lapsed while it ran (the database away) and this process claimed it again.
    renewed = Lease(LEASE.resource, LEASE.id, LEASE.owner, LEASE.token + 1)
    workers.launch(renewed)
    workers.launch(LEASE)  # an older lease changes nothing
    await asyncio.sleep(0.01)

    assert (driven, stopped) == ([LEASE.token, renewed.token], [LEASE.token])
    await workers.close()
    assert stopped == [LEASE.token, renewed.token]


async def test_workers_log_work_that_fails_or_loses_its_lease_and_keep_going(caplog: pytest.LogCaptureFixture) -> None:
    async def fails(lease: Lease) -> None:
        raise RuntimeError("boom")

    async def forever(lease: Lease) -> None:
        await asyncio.sleep(10)

    broken = Workers(Store([]), fails, heartbeat_seconds=0.01)
    broken.launch(LEASE)
    await broken.wait(LEASE.id)
    lost = Workers(Store([False]), forever, heartbeat_seconds=0.01)
    lost.launch(LEASE)
    await asyncio.wait_for(lost.wait(LEASE.id), 1)

    messages = [r.getMessage() for r in caplog.records]
    assert "run r1: its work stopped unexpectedly" in messages
    assert "run r1: another process owns it now; its work here stops" in messages


async def test_stopping_and_closing_workers_cancel_their_work() -> None:
    cancelled: list[str] = []

    async def work(lease: Lease) -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(lease.id)
            raise

    workers = Workers(Store([]), work, heartbeat_seconds=10)
    other = Lease("run", "r2", "me", 1)
    workers.launch(LEASE)
    workers.launch(other)
    await asyncio.sleep(0.01)
    workers.stop(LEASE.id)
    await workers.wait(LEASE.id)
    assert cancelled == ["r1"]
    await workers.close()
    assert cancelled == ["r1", "r2"]


@pytest.mark.parametrize("missing", ["database", "service"])
async def test_workers_go_on_from_what_is_stored_when_the_database_or_a_service_was_away(missing: str) -> None:
    calls = 0

    async def work(lease: Lease) -> None:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise away() if missing == "database" else Unavailable("the agent service did not answer")

    workers = Workers(Store([]), work, heartbeat_seconds=0.01)
    workers.launch(LEASE)
    await asyncio.wait_for(workers.wait(LEASE.id), 1)
    assert calls == 3


def away() -> OperationalError:
    return OperationalError("SELECT 1", {}, ConnectionRefusedError("the database system is shutting down"))
