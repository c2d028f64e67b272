"""The run service's use cases and pipeline on real Postgres, wired as bootstrap wires them, with
the spec and agent services faked (``run_fakes``): what the run service's integration tests drive."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from crucible_common.database import create_engine, migrate
from crucible_common.leases import Lease, SqlLeaseStore, Workers
from crucible_common.notify import Listener
from crucible_run import bootstrap
from crucible_run.adapters import tables as t
from crucible_run.adapters.repository import RUN_EVENTS_CHANNEL
from crucible_run.adapters.trace_store import ExportedTraces
from crucible_run.domain.model import Run, RunMode, RunParameters, TriggerSource
from crucible_run.service_layer import commands as c
from crucible_run.service_layer import handlers as h
from crucible_run.service_layer.handlers import PipelineModels, RunDeps
from crucible_run.service_layer.pipeline import PipelineDeps, RunExecutor
from crucible_run.service_layer.ports import Models, TraceStore
from tests.integration.run_fakes import FakeModels, FakeSnapshots, FakeSpec

MODELS = PipelineModels(("openai", "gpt-4o-mini"), ("openai", "gpt-4o-mini"))


@asynccontextmanager
async def run_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a database with the run schema migrated, as the service migrates it."""
    engine = create_engine(database_url, pool_size=20)
    await migrate(engine, schema="run", script_location=bootstrap.MIGRATIONS)
    try:
        yield engine
    finally:
        await engine.dispose()


@dataclass
class Harness:
    engine: AsyncEngine
    spec: FakeSpec
    models: FakeModels
    deps: RunDeps
    scheduler: Workers
    pipeline: PipelineDeps
    snapshots: FakeSnapshots
    # The run events' listener of deps (closed by close()).
    updates: Listener

    @classmethod
    def make(
        cls,
        engine: AsyncEngine,
        models: FakeModels | None = None,
        owner: str = "p1",
        spec: FakeSpec | None = None,
        *,
        launch: bool = True,
        traces: TraceStore | None = None,
        snapshots: FakeSnapshots | None = None,
        agent: Models | None = None,
    ) -> Harness:
        """``agent``: the real agent service's client for the pipeline's calls, instead of ``models``."""
        spec = spec or FakeSpec()
        models = models or FakeModels()
        snapshots = snapshots or FakeSnapshots()
        uow = bootstrap.uow_factory(engine)
        pipeline = PipelineDeps(
            uow,
            spec,
            agent or models,
            SqlLeaseStore(engine, t.LEASED_RUNS, owner),
            MODELS.designer,
            MODELS.evaluator,
            concurrency=8,
            snapshots=snapshots,
            heartbeat_seconds=0.2,
        )
        workers = Workers if launch else Idle
        scheduler = workers(
            pipeline.leases,
            lambda lease: RunExecutor(pipeline, lease).run(),
            heartbeat_seconds=pipeline.heartbeat_seconds,
        )
        updates = Listener(str(engine.url.render_as_string(hide_password=False)), RUN_EVENTS_CHANNEL)
        traces = traces or ExportedTraces("http://collector.invalid:4317")
        deps = RunDeps(uow, spec, agent or models, MODELS, scheduler, owner, updates, traces)
        return cls(engine, spec, models, deps, scheduler, pipeline, snapshots, updates)

    async def create(
        self,
        project_id: str,
        mode: RunMode = RunMode.FULL_SEARCH,
        *,
        replay_of: str = "",
        suite: str = "",
        source: TriggerSource = TriggerSource.INTEGRATION_TEST,
        **parameters: object,
    ) -> Run:
        return await h.create_run(
            c.CreateRun(
                project_id,
                mode,
                RunParameters(**parameters),  # type: ignore[arg-type]
                ui_trigger_id=str(uuid.uuid4()),
                ui_trigger_source=source,
                replay_of_run_id=replay_of,
                snapshot_test_id=suite,
            ),
            self.deps,
        )

    async def close(self) -> None:
        """Stop its scheduler and its event listener (which, once a watch started it, would go on
        reconnecting to the module's database after that is dropped)."""
        await self.scheduler.close()
        await self.updates.close()

    async def until_over(self, run_id: str, timeout: float = 20) -> Run:
        """The run once ended with its steps after the end done (its summary, its failure snapshot)."""
        async with asyncio.timeout(timeout):
            while True:
                run = await h.get_run(run_id, self.deps.uow)
                if run.status.finished and not run.summary_pending and not run.snapshot_pending:
                    return run
                await asyncio.sleep(0.02)

    async def run(self, project_id: str, mode: RunMode = RunMode.FULL_SEARCH, **options: Any) -> Run:
        """Create (``options`` as ``create`` takes them), execute, and wait until it is over."""
        run = await self.create(project_id, mode, **options)
        await h.execute_run(c.ExecuteRun(run.id), self.deps)
        return await self.until_over(run.id)


class Idle(Workers):
    """A scheduler that runs nothing by itself: the test drives the executor, with the leases it was given."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.launched: list[Lease] = []

    def launch(self, lease: Lease) -> None:
        self.launched.append(lease)


async def steal(engine: AsyncEngine, run_id: str, owner: str) -> Lease:
    """Give ``owner`` the run's lease, as a claim would."""
    async with bootstrap.uow_factory(engine)() as uow:
        lease = await uow.take_lease("run", run_id, owner)
        await uow.commit()
    return lease
