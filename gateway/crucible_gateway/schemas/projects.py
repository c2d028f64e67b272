"""Bodies of /api/projects."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from crucible.spec.v1 import spec_service_pb2 as pb
from crucible_common.protobuf import to_datetime
from crucible_gateway.schemas.common import Body


class ProjectCreate(Body):
    title: str
    description: str = ""


class ProjectPatch(Body):
    title: str | None = None
    description: str | None = None


class Project(BaseModel):
    id: str
    title: str
    description: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_proto(cls, p: pb.Project) -> Project:
        return cls(
            id=p.id,
            title=p.title,
            description=p.description,
            created_at=to_datetime(p.create_time),
            updated_at=to_datetime(p.update_time),
        )


class ProjectList(BaseModel):
    projects: list[Project]
    next_page_token: str
