"""The SnapshotService servicer: proto in → command → handler → proto out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from crucible.snapshot.v1 import snapshot_service_pb2 as pb
from crucible.snapshot.v1 import snapshot_service_pb2_grpc as pb_grpc
from crucible_snapshot.domain import invariants as inv
from crucible_snapshot.domain.model import ReplayMove, Snapshot, TestReport
from crucible_snapshot.entrypoints import proto_mapping as m
from crucible_snapshot.service_layer import commands as c
from crucible_snapshot.service_layer import handlers as h
from crucible_snapshot.service_layer import replays, suites
from crucible_snapshot.service_layer.handlers import ReportEvent, SnapshotDeps, Started

Context = grpc.aio.ServicerContext[Any, Any]


def _event(event: ReportEvent) -> dict[str, Any]:
    """The oneof of RunSnapshotTestsResponse and WatchTestReportResponse, which share their shape."""
    if isinstance(event, Started):
        return {"started": m.started_pb(event)}
    if isinstance(event, TestReport):
        return {"report": m.report_pb(event)}
    if isinstance(event, ReplayMove):
        return {"replay": m.replay_move_pb(event)}
    return {"result": m.result_pb(event)}


class SnapshotServicer(pb_grpc.SnapshotServiceServicer):
    def __init__(self, deps: SnapshotDeps) -> None:
        self._deps = deps

    async def CreateSnapshot(self, request: pb.CreateSnapshotRequest, context: Context) -> pb.CreateSnapshotResponse:
        cmd = c.CreateSnapshot(
            name=request.name,
            project_id=request.project_id,
            run_id=request.run_id,
            description=request.description,
            tags=tuple(request.tags),
            invariants=m.invariants(list(request.invariants)),
            parent_snapshot_id=request.parent_snapshot_id,
            chat_context_messages=request.chat_context_messages,
            data=m.imported_data(request.snapshot_data) if request.HasField("snapshot_data") else None,
            reference_metrics=m.metrics(request.reference_metrics) if request.HasField("reference_metrics") else None,
        )
        return pb.CreateSnapshotResponse(snapshot=_snapshot_pb(await h.create_snapshot(cmd, self._deps)))

    async def ListSnapshots(self, request: pb.ListSnapshotsRequest, context: Context) -> pb.ListSnapshotsResponse:
        cmd = c.ListSnapshots(
            tuple(request.tags), request.project_id, request.name, request.page_size, request.page_token
        )
        found, token = await h.list_snapshots(cmd, self._deps.uow)
        return pb.ListSnapshotsResponse(snapshots=[_snapshot_pb(s) for s in found], next_page_token=token)

    async def GetSnapshot(self, request: pb.GetSnapshotRequest, context: Context) -> pb.GetSnapshotResponse:
        return pb.GetSnapshotResponse(snapshot=_snapshot_pb(await h.get_snapshot(request.snapshot_id, self._deps.uow)))

    async def DeleteSnapshot(self, request: pb.DeleteSnapshotRequest, context: Context) -> pb.DeleteSnapshotResponse:
        await h.delete_snapshot(c.DeleteSnapshot(request.snapshot_id, request.confirm), self._deps.uow)
        return pb.DeleteSnapshotResponse()

    async def ReplaySnapshot(self, request: pb.ReplaySnapshotRequest, context: Context) -> pb.ReplaySnapshotResponse:
        cmd = c.ReplaySnapshot(
            request.snapshot_id, request.ui_trigger_id, m.replay_options(request.options), request.wait
        )
        outcome = await replays.replay_snapshot(cmd, self._deps)
        response = pb.ReplaySnapshotResponse(
            project_id=outcome.project_id,
            run_id=outcome.run_id,
            status=outcome.status,
            invariants=[m.invariant_result_pb(i) for i in outcome.invariants],
        )
        if outcome.metrics is not None:
            response.metrics.CopyFrom(m.metrics_pb(outcome.metrics))
        return response

    async def RunSnapshotTests(
        self, request: pb.RunSnapshotTestsRequest, context: Context
    ) -> AsyncIterator[pb.RunSnapshotTestsResponse]:
        cmd = c.RunSnapshotTests(
            request.ui_trigger_id, tuple(request.snapshot_ids), request.all, m.test_options(request.options)
        )
        report = await suites.run_snapshot_tests(cmd, self._deps)
        async for event in h.watch_report(report.id, self._deps):
            yield pb.RunSnapshotTestsResponse(**_event(event))

    async def WatchTestReport(
        self, request: pb.WatchTestReportRequest, context: Context
    ) -> AsyncIterator[pb.WatchTestReportResponse]:
        async for event in h.watch_report(request.report_id, self._deps):
            yield pb.WatchTestReportResponse(**_event(event))

    async def GetTestReport(self, request: pb.GetTestReportRequest, context: Context) -> pb.GetTestReportResponse:
        return pb.GetTestReportResponse(report=m.report_pb(await h.get_report(request.report_id, self._deps)))

    async def ListTestReports(self, request: pb.ListTestReportsRequest, context: Context) -> pb.ListTestReportsResponse:
        found, token = await h.list_reports(c.ListTestReports(request.page_size, request.page_token), self._deps.uow)
        return pb.ListTestReportsResponse(reports=[m.report_pb(r) for r in found], next_page_token=token)


def _snapshot_pb(snapshot: Snapshot) -> pb.Snapshot:
    # The reference check is derived on each read, never stored: by the rules of the service answering.
    return m.snapshot_pb(snapshot, inv.on_reference(snapshot))
