"""Project reads served from memory while the spec service's change feed vouches for them.

A project is read on every page of the UI and changes rarely; asked of the spec service, each
read costs two processes their gRPC and SQL work (``make bench BENCH=gateway_read`` prints the
CPU of each). So the gateway keeps the projects it has read, the way a Kubernetes API server's
watch cache does, and drops a copy when ``SpecService.WatchProjectChanges`` names its project.

What a reader sees:
- through this gateway, its own writes at once: a PATCH or DELETE drops the copy before it answers;
- others' writes (another gateway, another service) once the feed brings them, a few milliseconds
  after their commit;
- nothing from memory while the feed is not ``ready`` (starting, lost, silent for longer than
  three heartbeats): every read then goes to the spec service, and the copies are dropped, since
  a change may have gone unheard;
- with ``Cache-Control: no-cache``, a read straight from the spec service (the copy refreshed).

A read that started before a drop does not keep its answer (``_epoch``): it may predate the change.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

import grpc

from crucible.spec.v1 import spec_service_pb2 as pb
from crucible.spec.v1 import spec_service_pb2_grpc

logger = logging.getLogger(__name__)

# Beyond this, the least recently read project leaves (a project is a few hundred bytes).
MAX_PROJECTS = 10_000
# The spec service sends a heartbeat every 5 s of quiet (service_layer/project_changes.py).
SILENCE_SECONDS = 15.0
RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)


class ProjectCache:
    def __init__(self, spec: spec_service_pb2_grpc.SpecServiceAsyncStub, *, max_projects: int = MAX_PROJECTS) -> None:
        self._spec = spec
        self._max = max_projects
        self._projects: OrderedDict[str, pb.Project] = OrderedDict()
        self._live = False
        # Bumped by every drop and whenever the feed (re)starts: an answer fetched across a bump
        # may predate a change, so it is not kept.
        self._epoch = 0

    @property
    def live(self) -> bool:
        return self._live

    async def get(self, project_id: str, timeout: float, *, fresh: bool = False) -> pb.Project:
        """The project, from memory when the feed vouches for the copy; ``fresh``: from the spec service."""
        if not fresh:
            kept = self._projects.get(project_id)
            if kept is not None:
                self._projects.move_to_end(project_id)
                return kept
        epoch = self._epoch
        project = (await self._spec.GetProject(pb.GetProjectRequest(project_id=project_id), timeout=timeout)).project
        if self._live and epoch == self._epoch:
            self._projects[project_id] = project
            self._projects.move_to_end(project_id)
            if len(self._projects) > self._max:
                self._projects.popitem(last=False)
        return project

    def drop(self, project_id: str) -> None:
        self._epoch += 1
        self._projects.pop(project_id, None)

    def _go_dark(self) -> None:
        self._live = False
        self._epoch += 1
        self._projects.clear()

    async def follow(self) -> None:
        """Follow the change feed until cancelled, live while it is ``ready`` and heard from."""
        failures = 0
        while True:
            try:
                await self._follow_once()
            except (grpc.aio.AioRpcError, TimeoutError) as exc:
                if self._live:
                    logger.warning("project cache off: the spec service's change feed is lost (%s)", _why(exc))
                elif failures == 0:
                    # At start the spec service may not listen yet: not a warning, unless it lasts.
                    logger.info("project cache waiting for the spec service's change feed (%s)", _why(exc))
                elif failures == len(RETRY_SECONDS):
                    logger.warning("project cache off: no change feed from the spec service (%s)", _why(exc))
                failures = 0 if self._live else failures + 1
            except Exception:
                # Not the feed's loss but a fault (a bug, an answer not understood): said with its
                # stack, and the feed followed again, so one bad event does not end caching for good.
                logger.exception("project cache off: following the spec service's change feed failed")
                failures += 1
            finally:
                self._go_dark()
            await asyncio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])

    async def _follow_once(self) -> None:
        stream = self._spec.WatchProjectChanges(pb.WatchProjectChangesRequest())
        try:
            while True:
                async with asyncio.timeout(SILENCE_SECONDS):
                    event = await stream.read()
                if not isinstance(event, pb.WatchProjectChangesResponse):  # grpc.aio.EOF
                    raise TimeoutError("the change feed ended")
                match event.WhichOneof("event"):
                    case "ready":
                        self._epoch += 1
                        self._live = True
                        logger.info("project cache on: following the spec service's changes")
                    case "project_id":
                        self.drop(event.project_id)
                    case _:
                        pass  # a heartbeat: the feed is alive
        finally:
            stream.cancel()


def _why(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc) or "silent for too long"
