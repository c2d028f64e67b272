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
from crucible_run.service_layer.ports import TraceStore
from tests.integration.run_fakes import FakeModels, FakeSpec

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
    ) -> Harness:
        spec = spec or FakeSpec()
        models = models or FakeModels()
        uow = bootstrap.uow_factory(engine)
        pipeline = PipelineDeps(
            uow,
            spec,
            models,
            SqlLeaseStore(engine, t.LEASED_RUNS, owner),
            MODELS.designer,
            MODELS.evaluator,
            concurrency=8,
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
        deps = RunDeps(uow, spec, models, MODELS, scheduler, owner, updates, traces)
        return cls(engine, spec, models, deps, scheduler, pipeline)

    async def create(self, project_id: str, mode: RunMode = RunMode.FULL_SEARCH, **parameters: object) -> Run:
        return await h.create_run(
            c.CreateRun(
                project_id,
                mode,
                RunParameters(**parameters),  # type: ignore[arg-type]
                ui_trigger_id=str(uuid.uuid4()),
                ui_trigger_source=TriggerSource.INTEGRATION_TEST,
            ),
            self.deps,
        )

    async def until_over(self, run_id: str, timeout: float = 20) -> Run:
        """The run once ended with its summary posted."""
        async with asyncio.timeout(timeout):
            while True:
                run = await h.get_run(run_id, self.deps.uow)
                if run.status.finished and not run.summary_pending:
                    return run
                await asyncio.sleep(0.02)

    async def run(self, project_id: str, mode: RunMode = RunMode.FULL_SEARCH, **parameters: object) -> Run:
        run = await self.create(project_id, mode, **parameters)
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
