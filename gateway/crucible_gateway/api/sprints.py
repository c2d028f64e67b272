"""/api/sprints, their artifacts, and the live event stream over WebSocket."""

from __future__ import annotations

import mimetypes
from typing import Annotated

import grpc
from fastapi import APIRouter, Query, Response, WebSocket, WebSocketDisconnect

from crucible.agent.v1 import sprint_service_pb2 as pb
from crucible.spec.v1 import spec_service_pb2 as spec_pb
from crucible_gateway.api.deps import Clients, token_matches
from crucible_gateway.errors import problem_json
from crucible_gateway.schemas import PageSize
from crucible_gateway.sprint_schemas import (
    ArtifactList,
    ArtifactRead,
    SprintCancel,
    SprintCreate,
    SprintList,
    SprintRead,
    SprintStart,
    event_json,
)

router = APIRouter(tags=["sprints"])
ws_router = APIRouter(tags=["sprints"])

TEXT_SUFFIXES = (".py", ".md", ".txt", ".toml", ".cfg", ".ini", ".json", ".yaml", ".yml", ".csv")
ANSWERED = {spec_pb.PLANNING_STATUS_ANSWERED: "answered", spec_pb.PLANNING_STATUS_NEEDS_ANSWERS: "needs_answers"}


@router.post("/sprints", status_code=201)
async def create_sprint(body: SprintCreate, clients: Clients) -> SprintRead:
    # The agent context calls no other service: the gateway reads the spec and hands it over.
    spec = (await clients.spec.GetSpec(spec_pb.GetSpecRequest(spec_id=body.spec_id), timeout=clients.timeout)).spec
    snapshot = pb.SpecSnapshot(
        spec_id=spec.id,
        title=spec.title,
        task=spec.task,
        planning_status=ANSWERED.get(spec.planning.status, "unspecified"),
        answers=[pb.PlanningAnswer(question=a.question, answer=a.answer) for a in spec.planning.answers],
    )
    response = await clients.sprints.CreateSprint(
        pb.CreateSprintRequest(name=body.name, goal=body.goal, spec=snapshot), timeout=clients.timeout
    )
    return SprintRead.from_proto(response.sprint)


@router.get("/sprints")
async def list_sprints(
    clients: Clients,
    spec_id: Annotated[str, Query(max_length=100)] = "",
    page_size: Annotated[PageSize, Query()] = 0,
    page_token: Annotated[str, Query(max_length=1024)] = "",
) -> SprintList:
    response = await clients.sprints.ListSprints(
        pb.ListSprintsRequest(spec_id=spec_id, page_size=page_size, page_token=page_token), timeout=clients.timeout
    )
    return SprintList(
        sprints=[SprintRead.from_proto(s) for s in response.sprints], next_page_token=response.next_page_token
    )


@router.post("/sprints/{sprint_id}/start")
async def start_sprint(sprint_id: str, body: SprintStart, clients: Clients) -> SprintRead:
    response = await clients.sprints.StartSprint(
        pb.StartSprintRequest(
            sprint_id=sprint_id, trigger=pb.Trigger(id=body.ui_trigger_id, source=body.ui_trigger_source)
        ),
        timeout=clients.timeout,
    )
    return SprintRead.from_proto(response.sprint)


@router.post("/sprints/{sprint_id}/cancel")
async def cancel_sprint(sprint_id: str, body: SprintCancel, clients: Clients) -> SprintRead:
    response = await clients.sprints.CancelSprint(
        pb.CancelSprintRequest(sprint_id=sprint_id, reason=body.reason), timeout=clients.timeout
    )
    return SprintRead.from_proto(response.sprint)


@router.get("/sprints/{sprint_id}")
async def get_sprint(sprint_id: str, clients: Clients) -> SprintRead:
    response = await clients.sprints.GetSprint(pb.GetSprintRequest(sprint_id=sprint_id), timeout=clients.timeout)
    return SprintRead.from_proto(response.sprint)


@router.get("/sprints/{sprint_id}/artifacts")
async def list_artifacts(sprint_id: str, clients: Clients) -> ArtifactList:
    response = await clients.sprints.ListArtifacts(
        pb.ListArtifactsRequest(sprint_id=sprint_id), timeout=clients.timeout
    )
    return ArtifactList(artifacts=[ArtifactRead(path=a.path, size=a.size) for a in response.artifacts])


@router.get("/sprints/{sprint_id}/artifacts/{path:path}", response_class=Response)
async def get_artifact(sprint_id: str, path: str, clients: Clients) -> Response:
    response = await clients.sprints.GetArtifact(
        pb.GetArtifactRequest(sprint_id=sprint_id, path=path), timeout=clients.timeout
    )
    # Model-written files are never rendered by the browser on our origin: plain text or a download.
    textual = response.path.endswith(TEXT_SUFFIXES) or (mimetypes.guess_type(response.path)[0] or "") == "text/plain"
    media_type = "text/plain; charset=utf-8" if textual else "application/octet-stream"
    filename = response.path.rsplit("/", 1)[-1].replace('"', "")
    headers = {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "X-Content-Type-Options": "nosniff",
    }
    return Response(response.content, media_type=media_type, headers=headers)


@ws_router.websocket("/api/ws/sprints/{sprint_id}")
async def watch_sprint(websocket: WebSocket, sprint_id: str, after: int = 0) -> None:
    """Relays the sprint's events as JSON messages; closes when the sprint has ended."""
    clients = websocket.app.state.clients
    token = websocket.app.state.settings.api_token
    if token is not None:
        # Browsers cannot set headers on a WebSocket: the token may also come as ?token=.
        given = websocket.headers.get("authorization", "").removeprefix("Bearer ") or websocket.query_params.get(
            "token", ""
        )
        if not token_matches(given, token.get_secret_value()):
            await websocket.close(code=4401, reason="a valid bearer token is required")
            return
    await websocket.accept()
    try:
        async for event in clients.sprints.WatchSprint(
            pb.WatchSprintRequest(sprint_id=sprint_id, after_sequence=after)
        ):
            await websocket.send_json(event_json(event))
    except grpc.aio.AioRpcError as exc:
        await websocket.send_json({"type": "error", "problem": problem_json(exc)})
    except WebSocketDisconnect:
        return
    await websocket.close()
