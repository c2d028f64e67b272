"""The run service's client of the snapshot service: the failure snapshots of its own failed runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from crucible.snapshot.v1 import snapshot_service_pb2 as pb
from crucible_common.errors import details_of
from crucible_run.adapters.calls import patiently, unanswered
from crucible_run.domain.failure_snapshot import FailureSnapshot
from crucible_run.service_layer.ports import SnapshotRefused, Snapshots

if TYPE_CHECKING:  # the async stub type exists only in the generated .pyi
    from crucible.snapshot.v1.snapshot_service_pb2_grpc import SnapshotServiceAsyncStub


class SnapshotClient(Snapshots):
    def __init__(self, stub: SnapshotServiceAsyncStub, *, timeout: float, wait_seconds: float) -> None:
        self._stub = stub
        self._timeout = timeout
        self._wait = wait_seconds

    async def create(self, snapshot: FailureSnapshot) -> None:
        request = pb.CreateSnapshotRequest(
            project_id=snapshot.project_id,
            run_id=snapshot.run_id,
            name=snapshot.name,
            description=snapshot.description,
            tags=list(snapshot.tags),
        )
        try:
            await patiently(
                lambda: self._stub.CreateSnapshot(request, timeout=self._timeout),
                wait_seconds=self._wait,
                what=f"failure snapshot of run {snapshot.run_id}",
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.ALREADY_EXISTS:
                # The name is the run's: made before, by a try whose answer was lost or another process.
                return
            # A deadline may have passed after the snapshot was made; asking again finds its name.
            if unanswered(exc):
                raise ConnectionError(f"the snapshot service is unavailable: {exc.details()}") from exc
            details = details_of(exc)
            raise SnapshotRefused(f"{details.reason or details.code.name}: {details.message}") from exc
