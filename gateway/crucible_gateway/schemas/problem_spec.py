"""Bodies of /api/projects/{id}/problem-spec."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from crucible.spec.v1 import spec_service_pb2 as pb
from crucible_common.protobuf import to_datetime
from crucible_gateway.schemas.changes import ChangeMeta
from crucible_gateway.schemas.common import Body, Int32, RestEnum

RESOLUTION = RestEnum(pb.Resolution)
RUN_MODE = RestEnum(pb.RunMode)
Resolution = Annotated[str, RESOLUTION]
RunMode = Annotated[str, RUN_MODE]


class ConstraintBody(Body):
    name: str = Field(max_length=200)
    description: str = Field(default="", max_length=4_000)
    weight: Int32 = Field(description="0-100; 100 makes it a hard constraint")


class GoalBody(Body):
    description: str = Field(max_length=4_000)


class ProblemSpecPut(ChangeMeta):
    constraints: list[ConstraintBody] = Field(default_factory=list)
    goals: list[GoalBody] = Field(default_factory=list)
    resolution: Resolution = "medium"
    mode: RunMode = "full_search"


class ProblemSpecPatch(ChangeMeta):
    constraints: list[ConstraintBody] | None = None
    goals: list[GoalBody] | None = None
    resolution: Resolution | None = None
    mode: RunMode | None = None


class ProblemSpec(BaseModel):
    project_id: str
    constraints: list[ConstraintBody]
    goals: list[GoalBody]
    resolution: Resolution
    mode: RunMode
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_proto(cls, s: pb.ProblemSpec) -> ProblemSpec:
        return cls(
            project_id=s.project_id,
            constraints=[
                ConstraintBody(name=c.name, description=c.description, weight=c.weight) for c in s.constraints
            ],
            goals=[GoalBody(description=g.description) for g in s.goals],
            resolution=RESOLUTION.name(s.resolution),
            mode=RUN_MODE.name(s.mode),
            version=s.version,
            created_at=to_datetime(s.create_time),
            updated_at=to_datetime(s.update_time),
        )
