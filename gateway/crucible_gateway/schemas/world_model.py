"""Bodies of /api/projects/{id}/world-model."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from crucible.spec.v1 import spec_service_pb2 as pb
from crucible_common.protobuf import struct_to_dict, to_datetime
from crucible_gateway.schemas.changes import ChangeMeta


class WorldModelPut(ChangeMeta):
    model_data: dict[str, Any] = Field(
        description="Sections: actors, mechanisms, resources, constraints, assumptions, simplifications"
    )


class WorldModelPatch(ChangeMeta):
    model_data: dict[str, Any] = Field(description="Only the sections given are replaced")


class WorldModel(BaseModel):
    project_id: str
    model_data: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_proto(cls, m: pb.WorldModel) -> WorldModel:
        return cls(
            project_id=m.project_id,
            model_data=struct_to_dict(m.model_data),
            version=m.version,
            created_at=to_datetime(m.create_time),
            updated_at=to_datetime(m.update_time),
        )
