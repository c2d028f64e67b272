"""/api/snapshots, /api/snapshot-reports, a suite's WebSocket, and /api/runs/{id}/snapshot (seed 000).

A replay and a suite are each the explicit action that starts runs: a request that names no
``ui_trigger_id`` gets a fresh one here, so the same request retried by the client with its own
id is still one replay or one suite.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

import grpc
from fastapi import APIRouter, HTTPException, Query, Response, WebSocket
from pydantic import Field

from crucible.run.v1 import run_service_pb2 as run_pb
from crucible.snapshot.v1 import snapshot_service_pb2 as pb
from crucible_common.wording import counted, pairs
from crucible_gateway.api.deps import Clients, refused_without_token, relay_stream
from crucible_gateway.clients import ServiceClients
from crucible_gateway.schemas.common import Id, IdFilter, PageSize, PageToken, StrictQueryBool
from crucible_gateway.schemas.runs import RUN_MODE, RUN_STATUS
from crucible_gateway.schemas.snapshots import (
    ReplayResult,
    ReportList,
    ReportRead,
    ReportStarted,
    RunSnapshotCreate,
    SnapshotCreate,
    SnapshotList,
    SnapshotRead,
    SnapshotReplay,
    SnapshotTestResultRead,
    SnapshotTestRun,
    suite_event_json,
)

router = APIRouter(tags=["snapshots"])
ws_router = APIRouter(tags=["snapshots"])

FAILURE_TAG = "failure"

# What a suite reports as each snapshot finishes: (done, total, that snapshot's result).
Progress = Callable[[int, int, SnapshotTestResultRead], Awaitable[None]]
TagsQuery = Annotated[
    # A value may hold many tags, comma-separated: room for 50 of the 64 characters a tag may have.
    list[Annotated[str, Field(max_length=4_000)]] | None,
    Query(description="Every tag must match; repeat the parameter or separate tags with commas"),
]


def split_tags(values: list[str]) -> list[str]:
    """``["a,b", "c"]`` → ``["a", "b", "c"]``: both spellings of a list in a query string."""
    return [tag.strip() for value in values for tag in value.split(",") if tag.strip()]


@router.post("/snapshots", status_code=201)
async def create_snapshot(body: SnapshotCreate, clients: Clients) -> SnapshotRead:
    """Freeze a project's state (with a run's metrics as the reference), or derive one from a parent snapshot."""
    response = await clients.snapshots.CreateSnapshot(body.to_proto(), timeout=clients.timeout)
    return SnapshotRead.from_proto(response.snapshot)


@router.get("/snapshots")
async def list_snapshots(
    clients: Clients,
    tags: TagsQuery = None,
    project_id: IdFilter = "",
    name: Annotated[str, Query(max_length=200, description="A case-insensitive part of the name")] = "",
    page_size: PageSize = 0,
    page_token: PageToken = "",
) -> SnapshotList:
    """Snapshots newest first, without their data (GET one for it)."""
    response = await clients.snapshots.ListSnapshots(
        pb.ListSnapshotsRequest(
            tags=split_tags(tags or []), project_id=project_id, name=name, page_size=page_size, page_token=page_token
        ),
        timeout=clients.timeout,
    )
    return SnapshotList(
        snapshots=[SnapshotRead.from_proto(s) for s in response.snapshots], next_page_token=response.next_page_token
    )


@router.get("/snapshots/{snapshot_id}")
async def get_snapshot(snapshot_id: Id, clients: Clients) -> SnapshotRead:
    response = await clients.snapshots.GetSnapshot(
        pb.GetSnapshotRequest(snapshot_id=snapshot_id), timeout=clients.timeout
    )
    return SnapshotRead.from_proto(response.snapshot)


@router.delete("/snapshots/{snapshot_id}", status_code=204)
async def delete_snapshot(
    snapshot_id: Id,
    clients: Clients,
    confirm: Annotated[
        bool, Query(description="Must be true: the service refuses a delete without it"), StrictQueryBool
    ] = False,
) -> Response:
    # Forwarded as given: the service owns the rule, and its 412 CONFIRMATION_REQUIRED is the answer.
    await clients.snapshots.DeleteSnapshot(
        pb.DeleteSnapshotRequest(snapshot_id=snapshot_id, confirm=confirm), timeout=clients.timeout
    )
    return Response(status_code=204)


@router.post("/snapshots/{snapshot_id}/replay")
async def replay_snapshot(snapshot_id: Id, clients: Clients, body: SnapshotReplay | None = None) -> ReplayResult:
    """Restore the snapshot into a new project (or its own) and run it; with wait, its invariants checked."""
    body = body or SnapshotReplay()
    response = await clients.snapshots.ReplaySnapshot(
        pb.ReplaySnapshotRequest(
            snapshot_id=snapshot_id,
            options=body.replay_options(reuse_project=body.reuse_project),
            ui_trigger_id=body.ui_trigger_id or str(uuid.uuid4()),
            wait=body.wait,
        ),
        timeout=clients.llm_timeout if body.wait else clients.timeout,
    )
    return ReplayResult.from_proto(response)


@router.post(
    "/snapshots/run-tests",
    responses={202: {"model": ReportStarted, "description": "wait was false, or the wait ran out: still running"}},
)
async def run_snapshot_tests(body: SnapshotTestRun, clients: Clients, response: Response) -> ReportRead | ReportStarted:
    """Replay and check snapshots under a cost limit: the report when done, or 202 with its id."""
    outcome = await run_suite(body, clients)
    if isinstance(outcome, ReportStarted):
        response.status_code = 202
        response.headers["Location"] = f"/api/snapshot-reports/{outcome.report_id}"
    return outcome


async def run_suite(
    body: SnapshotTestRun, clients: ServiceClients, progress: Progress | None = None
) -> ReportRead | ReportStarted:
    """Start a suite and, with ``wait``, follow it to its report; otherwise (or once the wait runs out)
    answer with its id. Leaving the stream never stops the suite: it runs in the service."""
    call = clients.snapshots.RunSnapshotTests(
        body.to_proto(body.ui_trigger_id or str(uuid.uuid4())),
        timeout=clients.llm_timeout if body.wait else clients.timeout,
    )
    started: ReportStarted | None = None
    done = 0
    try:
        async for event in call:
            kind = event.WhichOneof("event")
            if kind == "started":
                started = ReportStarted.from_proto(event.started)
                if not body.wait:
                    return started
            elif kind == "result" and progress is not None:
                done += 1
                total = len(started.snapshot_ids) if started else done
                await progress(done, total, SnapshotTestResultRead.from_proto(event.result))
            elif kind == "report":
                return ReportRead.from_proto(event.report)
    except grpc.aio.AioRpcError as exc:
        if started is not None and exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            return started
        raise
    finally:
        # Frees the stream only; the contract keeps the suite running without it.
        call.cancel()
    if started is None:
        raise HTTPException(502, "the snapshot service ended the suite's stream before starting it")
    # The stream ended early (a restarted service): the stored report says where the suite is.
    return await get_test_report(started.report_id, clients)


@router.get("/snapshot-reports/{report_id}")
async def get_test_report(report_id: Id, clients: Clients) -> ReportRead:
    response = await clients.snapshots.GetTestReport(
        pb.GetTestReportRequest(report_id=report_id), timeout=clients.timeout
    )
    return ReportRead.from_proto(response.report)


@router.get("/snapshot-reports")
async def list_test_reports(clients: Clients, page_size: PageSize = 0, page_token: PageToken = "") -> ReportList:
    """Suites' reports, newest first."""
    response = await clients.snapshots.ListTestReports(
        pb.ListTestReportsRequest(page_size=page_size, page_token=page_token), timeout=clients.timeout
    )
    return ReportList(
        reports=[ReportRead.from_proto(r) for r in response.reports], next_page_token=response.next_page_token
    )


@router.post("/runs/{run_id}/snapshot", status_code=201)
async def snapshot_run(run_id: Id, clients: Clients, body: RunSnapshotCreate | None = None) -> SnapshotRead:
    """Snapshot a run in one call: its project, its metrics as the reference, tagged "failure" when it failed."""
    body = body or RunSnapshotCreate()
    run = (await clients.runs.GetRun(run_pb.GetRunRequest(run_id=run_id), timeout=clients.timeout)).run
    failed = run.status == run_pb.RUN_STATUS_FAILED
    tags = [FAILURE_TAG] if failed else []
    tags += [t for t in body.tags if t not in tags]
    request = SnapshotCreate(
        project_id=run.project_id,
        run_id=run.id,
        # None given: the snapshot service names it after the project and the run.
        name=body.name,
        description=body.description or _run_description(run),
        tags=tags,
        invariants=body.invariants,
        chat_context_messages=body.chat_context_messages,
    )
    return await create_snapshot(request, clients)


def _run_description(run: run_pb.Run) -> str:
    counts = run.counts
    text = (
        f"Run {run.id} ({RUN_MODE.name(run.mode)}: {pairs(counts.candidates, counts.scenarios)}, "
        f"{counted(counts.evaluations, 'evaluation')}) ended {RUN_STATUS.name(run.status)}."
    )
    failure = "; ".join(part for part in (run.failure_reason, run.error_summary) if part)
    return f"{text} {failure}" if failure else text


@ws_router.websocket("/api/ws/snapshot-reports/{report_id}")
async def watch_test_report(websocket: WebSocket, report_id: Id) -> None:
    """Relays a suite's events (started, a result per snapshot as it finishes, the report last), then
    closes (an unknown report: an error frame and 4404, as ``relay_stream`` says)."""
    if await refused_without_token(websocket):
        return
    clients: ServiceClients = websocket.app.state.clients
    stream = clients.snapshots.WatchTestReport(pb.WatchTestReportRequest(report_id=report_id))
    await relay_stream(websocket, stream, suite_event_json)
