"""/api/projects"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from google.protobuf.field_mask_pb2 import FieldMask

from crucible.spec.v1 import spec_service_pb2 as pb
from crucible_gateway.api.deps import Clients
from crucible_gateway.schemas.common import Id, PageSize, PageToken, StrictQueryBool
from crucible_gateway.schemas.projects import Project, ProjectCreate, ProjectList, ProjectPatch

router = APIRouter(prefix="/projects", tags=["projects"])


@router.post("", status_code=201)
async def create_project(body: ProjectCreate, clients: Clients) -> Project:
    response = await clients.spec.CreateProject(
        pb.CreateProjectRequest(title=body.title, description=body.description), timeout=clients.timeout
    )
    return Project.from_proto(response.project)


@router.get("")
async def list_projects(
    clients: Clients,
    page_size: PageSize = 0,
    page_token: PageToken = "",
    include_replays: Annotated[
        bool,
        Query(
            description="Also the projects made to replay a snapshot (one per replay, and per snapshot of a suite), "
            "left out by default"
        ),
        StrictQueryBool,
    ] = False,
) -> ProjectList:
    """Newest first."""
    response = await clients.spec.ListProjects(
        pb.ListProjectsRequest(page_size=page_size, page_token=page_token, include_replays=include_replays),
        timeout=clients.timeout,
    )
    return ProjectList(
        projects=[Project.from_proto(p) for p in response.projects], next_page_token=response.next_page_token
    )


@router.get("/{project_id}")
async def get_project(
    project_id: Id,
    clients: Clients,
    cache_control: Annotated[
        str | None,
        Header(
            max_length=1000,
            description="`no-cache` (or `max-age=0`): read the project from the spec service, "
            "not from the gateway's copy",
        ),
    ] = None,
) -> Project:
    # Served from the gateway's copy while the spec service's change feed vouches for it
    # (crucible_gateway/project_cache.py), unless the client asks for a fresh read.
    fresh = _revalidate(cache_control)
    return Project.from_proto(await clients.projects.get(project_id, clients.timeout, fresh=fresh))


def _revalidate(cache_control: str | None) -> bool:
    """A request's ``no-cache`` or ``max-age=0`` (a browser's reload) asks for the origin's answer."""
    if not cache_control:
        return False
    directives = {part.strip().lower().replace(" ", "") for part in cache_control.split(",")}
    return "no-cache" in directives or "max-age=0" in directives


@router.patch("/{project_id}")
async def update_project(project_id: Id, body: ProjectPatch, clients: Clients) -> Project:
    paths = sorted(body.model_fields_set)
    if not paths:
        # An empty PATCH changes nothing; answer with the project as it is.
        return Project.from_proto(await clients.projects.get(project_id, clients.timeout))
    request = pb.UpdateProjectRequest(
        project_id=project_id,
        update_mask=FieldMask(paths=paths),
        title=body.title or "",
        description=body.description or "",
        auto_snapshot_failed_runs=bool(body.auto_snapshot_failed_runs),
    )
    try:
        response = await clients.spec.UpdateProject(request, timeout=clients.timeout)
    finally:
        # Dropped whatever the answer: a write that timed out may still have committed.
        clients.projects.drop(project_id)
    return Project.from_proto(response.project)


@router.delete("/{project_id}", status_code=204)
async def delete_project(project_id: Id, clients: Clients) -> Response:
    try:
        await clients.spec.DeleteProject(pb.DeleteProjectRequest(project_id=project_id), timeout=clients.timeout)
    finally:
        clients.projects.drop(project_id)
    return Response(status_code=204)
