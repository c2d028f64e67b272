"""/api/sprints, their artifacts, and the live event stream over WebSocket."""

from __future__ import annotations

import mimetypes
from typing import Annotated

from fastapi import APIRouter, Path, Response, WebSocket

from crucible.agent.v1 import sprint_service_pb2 as pb
from crucible.spec.v1 import spec_service_pb2 as spec_pb
from crucible_gateway.api.deps import Clients, refused_without_token, relay_stream
from crucible_gateway.clients import ServiceClients
from crucible_gateway.schemas.common import Id, IdFilter, PageSize, PageToken, Position
from crucible_gateway.schemas.sprints import (
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


@router.post("/sprints", status_code=201)
async def create_sprint(body: SprintCreate, clients: Clients) -> SprintRead:
    """Create a PLANNED sprint of an answered spec; starting it is a separate, explicit action."""
    response = await clients.spec.CreateSprint(
        spec_pb.CreateSprintRequest(spec_id=body.spec_id, name=body.name, goal=body.goal), timeout=clients.timeout
    )
    return SprintRead.from_proto(response.sprint)


@router.get("/sprints")
async def list_sprints(
    clients: Clients, spec_id: IdFilter = "", page_size: PageSize = 0, page_token: PageToken = ""
) -> SprintList:
    response = await clients.sprints.ListSprints(
        pb.ListSprintsRequest(spec_id=spec_id, page_size=page_size, page_token=page_token), timeout=clients.timeout
    )
    return SprintList(
        sprints=[SprintRead.from_proto(s) for s in response.sprints], next_page_token=response.next_page_token
    )


@router.post("/sprints/{sprint_id}/start")
async def start_sprint(sprint_id: Id, body: SprintStart, clients: Clients) -> SprintRead:
    response = await clients.sprints.StartSprint(
        pb.StartSprintRequest(
            sprint_id=sprint_id, trigger=pb.Trigger(id=body.ui_trigger_id, source=body.ui_trigger_source)
        ),
        timeout=clients.timeout,
    )
    return SprintRead.from_proto(response.sprint)


@router.post("/sprints/{sprint_id}/cancel")
async def cancel_sprint(sprint_id: Id, body: SprintCancel, clients: Clients) -> SprintRead:
    """Cancel a planned or active sprint: once this answers, no model call of it is made."""
    response = await clients.sprints.CancelSprint(
        pb.CancelSprintRequest(sprint_id=sprint_id, reason=body.reason), timeout=clients.timeout
    )
    return SprintRead.from_proto(response.sprint)


@router.get("/sprints/{sprint_id}")
async def get_sprint(sprint_id: Id, clients: Clients) -> SprintRead:
    response = await clients.sprints.GetSprint(pb.GetSprintRequest(sprint_id=sprint_id), timeout=clients.timeout)
    return SprintRead.from_proto(response.sprint)


@router.get("/sprints/{sprint_id}/artifacts")
async def list_artifacts(
    sprint_id: Id, clients: Clients, page_size: PageSize = 0, page_token: PageToken = ""
) -> ArtifactList:
    response = await clients.sprints.ListArtifacts(
        pb.ListArtifactsRequest(sprint_id=sprint_id, page_size=page_size, page_token=page_token),
        timeout=clients.timeout,
    )
    return ArtifactList(
        artifacts=[ArtifactRead(path=a.path, size=a.size) for a in response.artifacts],
        next_page_token=response.next_page_token,
    )


@router.get("/sprints/{sprint_id}/artifacts/{path:path}", response_class=Response)
async def get_artifact(
    sprint_id: Id,
    # As long as the agent service's workspace takes a path.
    path: Annotated[str, Path(max_length=1024, description="The file's path in the sprint's workspace")],
    clients: Clients,
) -> Response:
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
async def watch_sprint(websocket: WebSocket, sprint_id: Id, after: Position = 0) -> None:
    """Relays the sprint's events as JSON messages; closes when the sprint has ended (an unknown
    sprint: an error frame and 4404, as ``relay_stream`` says)."""
    if await refused_without_token(websocket):
        return
    clients: ServiceClients = websocket.app.state.clients
    stream = clients.sprints.WatchSprint(pb.WatchSprintRequest(sprint_id=sprint_id, after_sequence=after))
    await relay_stream(websocket, stream, lambda response: event_json(response.event))
