"""/api/projects/{id}/problem-spec (PUT replaces, PATCH changes the fields given)"""

from __future__ import annotations

from fastapi import APIRouter
from google.protobuf.field_mask_pb2 import FieldMask

from crucible.spec.v1 import spec_service_pb2 as pb
from crucible_gateway.api.changes import change_fields
from crucible_gateway.api.deps import Clients
from crucible_gateway.schemas.changes import ProvenanceEntry, ProvenanceList
from crucible_gateway.schemas.common import Id, PageSize, PageToken
from crucible_gateway.schemas.problem_spec import (
    RESOLUTION,
    RUN_MODE,
    ProblemSpec,
    ProblemSpecPatch,
    ProblemSpecPut,
)

router = APIRouter(prefix="/projects/{project_id}/problem-spec", tags=["problem-spec"])

FIELDS = ("constraints", "goals", "resolution", "mode")


def _proto(project_id: str, body: ProblemSpecPut | ProblemSpecPatch) -> pb.ProblemSpec:
    return pb.ProblemSpec(
        project_id=project_id,
        constraints=[
            pb.Constraint(name=c.name, description=c.description, weight=c.weight) for c in body.constraints or []
        ],
        goals=[pb.Goal(description=g.description) for g in body.goals or []],
        resolution=RESOLUTION.number(body.resolution) if body.resolution else pb.RESOLUTION_UNSPECIFIED,
        mode=RUN_MODE.number(body.mode) if body.mode else pb.RUN_MODE_UNSPECIFIED,
    )


@router.get("")
async def get_problem_spec(project_id: Id, clients: Clients) -> ProblemSpec:
    response = await clients.spec.GetProblemSpec(
        pb.GetProblemSpecRequest(project_id=project_id), timeout=clients.timeout
    )
    return ProblemSpec.from_proto(response.problem_spec)


@router.put("")
async def put_problem_spec(project_id: Id, body: ProblemSpecPut, clients: Clients) -> ProblemSpec:
    response = await clients.spec.UpdateProblemSpec(
        pb.UpdateProblemSpecRequest(
            problem_spec=_proto(project_id, body),
            update_mask=FieldMask(paths=list(FIELDS)),
            allow_missing=True,
            **change_fields(body),
        ),
        timeout=clients.timeout,
    )
    return ProblemSpec.from_proto(response.problem_spec)


@router.patch("")
async def patch_problem_spec(project_id: Id, body: ProblemSpecPatch, clients: Clients) -> ProblemSpec:
    paths = [f for f in FIELDS if f in body.model_fields_set and getattr(body, f) is not None]
    if not paths:
        return await get_problem_spec(project_id, clients)
    response = await clients.spec.UpdateProblemSpec(
        pb.UpdateProblemSpecRequest(
            problem_spec=_proto(project_id, body),
            update_mask=FieldMask(paths=paths),
            allow_missing=True,
            **change_fields(body),
        ),
        timeout=clients.timeout,
    )
    return ProblemSpec.from_proto(response.problem_spec)


@router.get("/provenance")
async def list_problem_spec_provenance(
    project_id: Id, clients: Clients, page_size: PageSize = 0, page_token: PageToken = ""
) -> ProvenanceList:
    response = await clients.spec.ListProblemSpecProvenance(
        pb.ListProblemSpecProvenanceRequest(project_id=project_id, page_size=page_size, page_token=page_token),
        timeout=clients.timeout,
    )
    return ProvenanceList(
        entries=[ProvenanceEntry.from_proto(e) for e in response.entries], next_page_token=response.next_page_token
    )
