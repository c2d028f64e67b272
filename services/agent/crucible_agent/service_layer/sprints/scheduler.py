"""Runs sprints in this process's background, and takes over sprints whose process died."""

from __future__ import annotations

import asyncio
import logging

from crucible_agent.service_layer.sprints.phase_runner import PhaseRunner
from crucible_agent.service_layer.sprints.workflow import SprintDeps
from crucible_common.leases import Lease, LeaseLost, hold, reclaim_forever

logger = logging.getLogger(__name__)

RESUME_BATCH = 5


class SprintScheduler:
    def __init__(self, deps: SprintDeps) -> None:
        self._deps = deps
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def launch(self, lease: Lease) -> None:
        """Run the sprint ``lease`` names to its end here, unless this process runs it already."""
        if lease.id in self._tasks:
            return
        task = asyncio.create_task(self._drive(lease), name=f"sprint {lease.id}")
        self._tasks[lease.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(lease.id, None))

    def stop(self, sprint_id: str) -> None:
        """Stop the sprint's work in this process, if it runs here (a cancel)."""
        task = self._tasks.get(sprint_id)
        if task is not None:
            task.cancel()

    async def resume_forever(self) -> None:
        """For the service's lifetime: continue active sprints whose lease lapsed, from their stored phases."""
        await reclaim_forever(self._deps.leases, self.launch, interval=self._deps.heartbeat_seconds, batch=RESUME_BATCH)

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def _drive(self, lease: Lease) -> None:
        runner = PhaseRunner(self._deps, lease)
        try:
            await hold(self._deps.leases, lease, runner.run(), heartbeat_seconds=self._deps.heartbeat_seconds)
        except LeaseLost:
            logger.warning("sprint %s: another process owns it now; this runner stops", lease.id)
