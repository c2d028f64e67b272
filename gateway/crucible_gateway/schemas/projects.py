"""Bodies of /api/projects."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, StrictBool

from crucible.spec.v1 import spec_service_pb2 as pb
from crucible_common.protobuf import to_datetime
from crucible_gateway.schemas.common import Body

# As the spec service takes them.
MAX_TITLE = 200
MAX_DESCRIPTION = 10_000


class ProjectCreate(Body):
    title: str = Field(max_length=MAX_TITLE)
    description: str = Field(default="", max_length=MAX_DESCRIPTION)


class ProjectPatch(Body):
    title: str | None = Field(default=None, max_length=MAX_TITLE)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    # Only the fields sent change (null, like an empty text, is the field's zero: false).
    auto_snapshot_failed_runs: StrictBool | None = Field(
        default=None, description="snapshot each run of the project that ends FAILED (tags failure, auto)"
    )


class Project(BaseModel):
    id: str
    title: str
    description: str
    created_at: datetime
    updated_at: datetime
    auto_snapshot_failed_runs: bool
    replay_of_snapshot_id: str = Field(
        description="The snapshot this project was restored from to replay it (a replay's or a snapshot "
        "test's project); empty for a project a user made"
    )

    @classmethod
    def from_proto(cls, p: pb.Project) -> Project:
        return cls(
            id=p.id,
            title=p.title,
            description=p.description,
            created_at=to_datetime(p.create_time),
            updated_at=to_datetime(p.update_time),
            auto_snapshot_failed_runs=p.auto_snapshot_failed_runs,
            replay_of_snapshot_id=p.replay_of_snapshot_id,
        )


class ProjectList(BaseModel):
    projects: list[Project]
    next_page_token: str
