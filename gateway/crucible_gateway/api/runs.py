"""/api/runs: preflight, create, execute (explicitly), read what a run produced, and its live events."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, WebSocket

from crucible.run.v1 import run_service_pb2 as pb
from crucible_common.protobuf import struct
from crucible_gateway.api.deps import Clients, refused_without_token, relay_stream
from crucible_gateway.clients import ServiceClients
from crucible_gateway.schemas.common import Id, IdFilter, PageSize, PageToken, Position
from crucible_gateway.schemas.runs import (
    RUN_MODE,
    RUN_PHASE,
    RUN_STATUS,
    TRIGGER_SOURCE,
    EvaluationList,
    EvaluationRead,
    RunCancel,
    RunCandidateList,
    RunCandidateRead,
    RunCreate,
    RunExecute,
    RunLineage,
    RunList,
    RunPreflight,
    RunPreflightBody,
    RunRead,
    RunResults,
    RunStatistics,
    RunStatus,
    ScenarioList,
    ScenarioRead,
    event_json,
)

router = APIRouter(tags=["runs"])
ws_router = APIRouter(tags=["runs"])


@router.post("/projects/{project_id}/runs/preflight")
async def preflight_run(project_id: Id, body: RunPreflightBody, clients: Clients) -> RunPreflight:
    """What a run with this configuration needs and would cost; nothing is created."""
    response = await clients.runs.PreflightRun(
        pb.PreflightRunRequest(
            project_id=project_id,
            mode=RUN_MODE.number(body.mode),
            parameters=body.parameters.to_proto(),
            chat_session_id=body.chat_session_id,
            recommended_message_id=body.recommended_message_id,
        ),
        timeout=clients.timeout,
    )
    return RunPreflight.from_proto(response)


@router.get("/projects/{project_id}/runs")
async def list_runs(
    project_id: Id,
    clients: Clients,
    status: Annotated[RunStatus | None, Query()] = None,
    page_size: PageSize = 0,
    page_token: PageToken = "",
) -> RunList:
    """The project's runs, newest first; a project that does not exist (or no longer does) has none
    to list: 404, as for its other parts. Asked at once, the project most often from the gateway's
    own copy."""
    _, response = await asyncio.gather(
        clients.projects.get(project_id, clients.timeout),
        clients.runs.ListRuns(
            pb.ListRunsRequest(
                project_id=project_id,
                status=RUN_STATUS.number(status) if status else pb.RUN_STATUS_UNSPECIFIED,
                page_size=page_size,
                page_token=page_token,
            ),
            timeout=clients.timeout,
        ),
    )
    return RunList(runs=[RunRead.from_proto(r) for r in response.runs], next_page_token=response.next_page_token)


@router.post("/runs", status_code=201)
async def create_run(body: RunCreate, clients: Clients) -> RunRead:
    """Store a CREATED run for an explicit action (its trigger); nothing runs until it is executed."""
    response = await clients.runs.CreateRun(
        pb.CreateRunRequest(
            project_id=body.project_id,
            mode=RUN_MODE.number(body.mode),
            parameters=body.parameters.to_proto(),
            chat_session_id=body.chat_session_id,
            recommended_message_id=body.recommended_message_id,
            ui_trigger_id=body.ui_trigger_id or "",
            ui_trigger_source=TRIGGER_SOURCE.number(body.ui_trigger_source)
            if body.ui_trigger_source
            else pb.TRIGGER_SOURCE_UNSPECIFIED,
            ui_trigger_metadata=struct(body.ui_trigger_metadata),
        ),
        timeout=clients.timeout,
    )
    return RunRead.from_proto(response.run)


async def _execute(run_id: str, phases: list[pb.RunPhase.ValueType], clients: ServiceClients) -> RunRead:
    response = await clients.runs.ExecuteRun(
        pb.ExecuteRunRequest(run_id=run_id, phases=phases), timeout=clients.timeout
    )
    return RunRead.from_proto(response.run)


@router.post("/runs/{run_id}/execute")
async def execute_run(run_id: Id, clients: Clients, body: RunExecute | None = None) -> RunRead:
    """Start a CREATED run in the background (every phase, or some); answers at once."""
    phases = body.phases if body is not None else "all"
    return await _execute(run_id, [RUN_PHASE.number(p) for p in phases] if isinstance(phases, list) else [], clients)


@router.post("/runs/{run_id}/full-pipeline")
async def run_full_pipeline(run_id: Id, clients: Clients) -> RunRead:
    """Start every phase of a CREATED run in the background (the seed's name for execute)."""
    return await _execute(run_id, [], clients)


@router.get("/runs/{run_id}")
async def get_run(run_id: Id, clients: Clients) -> RunRead:
    response = await clients.runs.GetRun(pb.GetRunRequest(run_id=run_id), timeout=clients.timeout)
    return RunRead.from_proto(response.run)


@router.post("/runs/{run_id}/cancel")
async def cancel_run(run_id: Id, clients: Clients, body: RunCancel | None = None) -> RunRead:
    response = await clients.runs.CancelRun(
        pb.CancelRunRequest(run_id=run_id, reason=body.reason if body else ""), timeout=clients.timeout
    )
    return RunRead.from_proto(response.run)


@router.get("/runs/{run_id}/results")
async def get_run_results(run_id: Id, clients: Clients) -> RunResults:
    """The ranking: candidates best first, rejected ones last."""
    response = await clients.runs.GetRunResults(pb.GetRunResultsRequest(run_id=run_id), timeout=clients.timeout)
    return RunResults.from_proto(response)


@router.get("/runs/{run_id}/statistics")
async def get_run_statistics(run_id: Id, clients: Clients) -> RunStatistics:
    """Counts, coverage, missing pairs, failures, duration, usage and the top candidate."""
    response = await clients.runs.GetRunStatistics(pb.GetRunStatisticsRequest(run_id=run_id), timeout=clients.timeout)
    return RunStatistics.from_proto(response.statistics)


@router.get("/runs/{run_id}/lineage")
async def get_run_lineage(run_id: Id, clients: Clients) -> RunLineage:
    """Where the run came from and what it led to: recommendation, trigger, trace, summary, and the linking spans."""
    response = await clients.runs.GetRunLineage(pb.GetRunLineageRequest(run_id=run_id), timeout=clients.timeout)
    return RunLineage.from_proto(response.lineage)


@router.get("/runs/{run_id}/candidates")
async def list_candidates(
    run_id: Id, clients: Clients, page_size: PageSize = 0, page_token: PageToken = ""
) -> RunCandidateList:
    response = await clients.runs.ListCandidates(
        pb.ListCandidatesRequest(run_id=run_id, page_size=page_size, page_token=page_token), timeout=clients.timeout
    )
    return RunCandidateList(
        candidates=[RunCandidateRead.from_proto(c) for c in response.candidates],
        next_page_token=response.next_page_token,
    )


@router.get("/runs/{run_id}/scenarios")
async def list_scenarios(
    run_id: Id, clients: Clients, page_size: PageSize = 0, page_token: PageToken = ""
) -> ScenarioList:
    response = await clients.runs.ListScenarios(
        pb.ListScenariosRequest(run_id=run_id, page_size=page_size, page_token=page_token), timeout=clients.timeout
    )
    return ScenarioList(
        scenarios=[ScenarioRead.from_proto(s) for s in response.scenarios], next_page_token=response.next_page_token
    )


@router.get("/runs/{run_id}/evaluations")
async def list_evaluations(
    run_id: Id, clients: Clients, candidate_id: IdFilter = "", page_size: PageSize = 0, page_token: PageToken = ""
) -> EvaluationList:
    response = await clients.runs.ListEvaluations(
        pb.ListEvaluationsRequest(run_id=run_id, candidate_id=candidate_id, page_size=page_size, page_token=page_token),
        timeout=clients.timeout,
    )
    return EvaluationList(
        evaluations=[EvaluationRead.from_proto(e) for e in response.evaluations],
        next_page_token=response.next_page_token,
    )


@ws_router.websocket("/api/ws/runs/{run_id}")
async def watch_run(websocket: WebSocket, run_id: Id, after: Position = 0) -> None:
    """Relays the run's events as JSON messages; closes once it has ended and its summary is posted
    (an unknown run: an error frame and 4404, as ``relay_stream`` says)."""
    if await refused_without_token(websocket):
        return
    clients: ServiceClients = websocket.app.state.clients
    stream = clients.runs.WatchRun(pb.WatchRunRequest(run_id=run_id, after_sequence=after))
    await relay_stream(websocket, stream, lambda response: event_json(response.event))
