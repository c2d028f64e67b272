"""The lease mechanism on real Postgres: one claimer per row, renewal, and writes fenced by the lease."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from crucible_agent import bootstrap
from crucible_agent.adapters import tables as t
from crucible_agent.adapters.unit_of_work import SqlUnitOfWork
from crucible_agent.domain.model import AgentRun, AgentRunStatus, Correlation, Recording
from crucible_agent.service_layer.unit_of_work import AGENT_RUN
from crucible_common.database import create_engine, migrate
from crucible_common.leases import Lease, LeaseLost, SqlLeaseStore


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=8)
    await migrate(engine, schema="agent", script_location=bootstrap.MIGRATIONS)
    yield engine
    await engine.dispose()


def _run() -> AgentRun:
    now = datetime.now(UTC)
    return AgentRun(
        str(uuid.uuid4()),
        AgentRunStatus.RUNNING,
        "task",
        (),
        (),
        None,
        "",
        {},
        Correlation(),
        Recording(),
        None,
        "",
        now,
        now,
    )


async def _new_run(engine: AsyncEngine, owner: str) -> Lease:
    async with SqlUnitOfWork(engine) as uow:
        run = _run()
        await uow.repo.add_run(run, "agent_runner")
        lease = await uow.take_lease(AGENT_RUN, run.id, owner)
        await uow.commit()
    return lease


async def _lapse(engine: AsyncEngine, run_id: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(t.agent_runs)
            .where(t.agent_runs.c.id == run_id)
            .values(lease_expires_at=datetime(2000, 1, 1, tzinfo=UTC))
        )


async def _failure_reason(engine: AsyncEngine, run_id: str) -> str:
    async with engine.connect() as conn:
        return str(await conn.scalar(select(t.agent_runs.c.failure_reason).where(t.agent_runs.c.id == run_id)))


async def _fenced_write(engine: AsyncEngine, lease: Lease, reason: str) -> None:
    async with SqlUnitOfWork(engine, lease=lease) as uow:
        await uow.repo.finish_run(lease.id, AgentRunStatus.RUNNING, reason, datetime.now(UTC))
        await uow.commit()


async def test_a_new_run_is_leased_to_its_creator_with_the_first_token(engine: AsyncEngine) -> None:
    lease = await _new_run(engine, "a")

    assert (lease.resource, lease.owner, lease.token) == (AGENT_RUN, "a", 1)
    assert await SqlLeaseStore(engine, t.LEASED_AGENT_RUNS, "a").renew(lease)
    # A live lease is not claimed by anyone.
    assert lease.id not in {x.id for x in await SqlLeaseStore(engine, t.LEASED_AGENT_RUNS, "b").claim_stale(100)}


async def test_a_lapsed_lease_is_claimed_once_with_a_new_token_and_fences_the_old_owner(engine: AsyncEngine) -> None:
    old = await _new_run(engine, "a")
    await _lapse(engine, old.id)
    stores = [SqlLeaseStore(engine, t.LEASED_AGENT_RUNS, name) for name in ("b", "c", "d")]

    claims = await asyncio.gather(*(store.claim_stale(100) for store in stores))

    mine = [lease for claimed in claims for lease in claimed if lease.id == old.id]
    assert len(mine) == 1
    new = mine[0]
    assert new.token == old.token + 1
    # The old owner can neither renew nor write; the new one can.
    assert not await SqlLeaseStore(engine, t.LEASED_AGENT_RUNS, "a").renew(old)
    with pytest.raises(LeaseLost):
        await _fenced_write(engine, old, "stale writer")
    await _fenced_write(engine, new, "new owner")
    assert await _failure_reason(engine, old.id) == "new owner"


async def test_a_claim_waits_for_a_fenced_write_in_flight(engine: AsyncEngine) -> None:
    lease = await _new_run(engine, "a")
    await _lapse(engine, lease.id)
    claimer = SqlLeaseStore(engine, t.LEASED_AGENT_RUNS, "b")

    async with SqlUnitOfWork(engine, lease=lease) as uow:
        # The fence holds the row: a claimer skips it rather than take it mid-write.
        assert lease.id not in {x.id for x in await claimer.claim_stale(100)}
        await uow.repo.finish_run(lease.id, AgentRunStatus.RUNNING, "written under the fence", datetime.now(UTC))
        await uow.commit()

    assert lease.id in {x.id for x in await claimer.claim_stale(100)}
    assert await _failure_reason(engine, lease.id) == "written under the fence"


async def test_a_revoked_lease_fences_its_holder_and_ended_work_is_not_claimed(engine: AsyncEngine) -> None:
    lease = await _new_run(engine, "a")
    async with SqlUnitOfWork(engine) as uow:
        await uow.revoke_lease(AGENT_RUN, lease.id)
        await uow.repo.finish_run(lease.id, AgentRunStatus.FAILED, "cancelled", datetime.now(UTC))
        await uow.commit()

    with pytest.raises(LeaseLost):
        await _fenced_write(engine, lease, "too late")
    assert lease.id not in {x.id for x in await SqlLeaseStore(engine, t.LEASED_AGENT_RUNS, "b").claim_stale(100)}
    assert await _failure_reason(engine, lease.id) == "cancelled"


async def test_a_lease_taken_in_a_unit_of_work_lasts_the_services_lease_seconds(engine: AsyncEngine) -> None:
    # A service configured with long leases paces its heartbeat to them: the lease a new piece of
    # work starts with must last that long too, or it lapses before its first renewal.
    async with bootstrap.uow_factory(engine, lease_seconds=600)() as uow:
        run = _run()
        await uow.repo.add_run(run, "agent_runner")
        await uow.take_lease(AGENT_RUN, run.id, "a")
        await uow.commit()
    async with engine.connect() as conn:
        expires = await conn.scalar(select(t.agent_runs.c.lease_expires_at).where(t.agent_runs.c.id == run.id))
    assert expires is not None
    assert 590 < (expires - datetime.now(UTC)).total_seconds() <= 600
