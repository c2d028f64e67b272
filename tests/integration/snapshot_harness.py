"""The snapshot service's use cases and suites on real Postgres, wired as bootstrap wires them, with
its neighbours faked (``tests.unit.snapshot.fakes``): the spec, run and agent services are shared by
every harness of a test, as the real ones are shared by every replica of the snapshot service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from crucible_common.database import create_engine, migrate
from crucible_common.leases import SqlLeaseStore, Workers
from crucible_common.notify import Listener
from crucible_snapshot import bootstrap
from crucible_snapshot.adapters.repository import REPORT_EVENTS_CHANNEL
from crucible_snapshot.adapters.tables import LEASED_REPORTS
from crucible_snapshot.domain.model import Snapshot
from crucible_snapshot.service_layer.handlers import SnapshotDeps
from crucible_snapshot.service_layer.suites import SuiteRunner
from tests.unit.snapshot.fakes import FakeRuns, FakeSpec, FakeUsage


@asynccontextmanager
async def snapshot_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a database with the snapshot schema migrated, as the service migrates it."""
    engine = create_engine(database_url, pool_size=10)
    await migrate(engine, schema="snapshot", script_location=bootstrap.MIGRATIONS)
    try:
        yield engine
    finally:
        await engine.dispose()


@dataclass
class Neighbours:
    spec: FakeSpec
    runs: FakeRuns
    usage: FakeUsage

    @classmethod
    def make(cls, **runs: object) -> Neighbours:
        usage = FakeUsage()
        return cls(FakeSpec(), FakeRuns(usage, **runs), usage)  # type: ignore[arg-type]


@dataclass
class SnapshotHarness:
    """One snapshot service process: its scheduler holds suites under leases in the shared database."""

    engine: AsyncEngine
    neighbours: Neighbours
    deps: SnapshotDeps
    scheduler: Workers
    leases: SqlLeaseStore
    updates: Listener

    @classmethod
    def make(
        cls,
        engine: AsyncEngine,
        neighbours: Neighbours,
        owner: str = "p1",
        *,
        lease_seconds: float = 15.0,
        heartbeat_seconds: float = 0.2,
    ) -> SnapshotHarness:
        leases = SqlLeaseStore(engine, LEASED_REPORTS, owner, seconds=lease_seconds)
        deps: SnapshotDeps
        scheduler = Workers(leases, lambda lease: SuiteRunner(deps, lease).run(), heartbeat_seconds=heartbeat_seconds)
        updates = Listener(engine.url.render_as_string(hide_password=False), REPORT_EVENTS_CHANNEL)
        deps = SnapshotDeps(
            uow=bootstrap.uow_factory(engine),
            spec=neighbours.spec,
            runs=neighbours.runs,
            usage=neighbours.usage,
            updates=updates,
            scheduler=scheduler,
            owner=owner,
            concurrency=4,
            cost_margin=1.0,
        )
        return cls(engine, neighbours, deps, scheduler, leases, updates)

    async def add(self, *snapshots: Snapshot) -> list[Snapshot]:
        async with self.deps.uow() as uow:
            for s in snapshots:
                assert await uow.repo.add_snapshot(s)
            await uow.commit()
        return list(snapshots)

    async def close(self) -> None:
        await self.scheduler.close()
        await self.updates.close()
