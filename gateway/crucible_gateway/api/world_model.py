"""/api/projects/{id}/world-model (PUT replaces model_data, PATCH replaces the sections given)"""

from __future__ import annotations

from fastapi import APIRouter
from google.protobuf.field_mask_pb2 import FieldMask

from crucible.spec.v1 import spec_service_pb2 as pb
from crucible_common.protobuf import struct
from crucible_gateway.api.changes import change_fields
from crucible_gateway.api.deps import Clients
from crucible_gateway.schemas.changes import ProvenanceEntry, ProvenanceList
from crucible_gateway.schemas.common import Id, PageSize, PageToken
from crucible_gateway.schemas.world_model import WorldModel, WorldModelPatch, WorldModelPut

router = APIRouter(prefix="/projects/{project_id}/world-model", tags=["world-model"])


@router.get("")
async def get_world_model(project_id: Id, clients: Clients) -> WorldModel:
    response = await clients.spec.GetWorldModel(pb.GetWorldModelRequest(project_id=project_id), timeout=clients.timeout)
    return WorldModel.from_proto(response.world_model)


async def _update(
    project_id: str, body: WorldModelPut | WorldModelPatch, paths: list[str], clients: Clients
) -> WorldModel:
    response = await clients.spec.UpdateWorldModel(
        pb.UpdateWorldModelRequest(
            world_model=pb.WorldModel(project_id=project_id, model_data=struct(body.model_data)),
            update_mask=FieldMask(paths=paths),
            allow_missing=True,
            **change_fields(body),
        ),
        timeout=clients.timeout,
    )
    return WorldModel.from_proto(response.world_model)


@router.put("")
async def put_world_model(project_id: Id, body: WorldModelPut, clients: Clients) -> WorldModel:
    return await _update(project_id, body, ["model_data"], clients)


@router.patch("")
async def patch_world_model(project_id: Id, body: WorldModelPatch, clients: Clients) -> WorldModel:
    if not body.model_data:
        return await get_world_model(project_id, clients)
    return await _update(project_id, body, [f"model_data.{section}" for section in body.model_data], clients)


@router.get("/provenance")
async def list_world_model_provenance(
    project_id: Id, clients: Clients, page_size: PageSize = 0, page_token: PageToken = ""
) -> ProvenanceList:
    response = await clients.spec.ListWorldModelProvenance(
        pb.ListWorldModelProvenanceRequest(project_id=project_id, page_size=page_size, page_token=page_token),
        timeout=clients.timeout,
    )
    return ProvenanceList(
        entries=[ProvenanceEntry.from_proto(e) for e in response.entries], next_page_token=response.next_page_token
    )
