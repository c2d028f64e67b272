"""What every ProblemSpec / WorldModel change carries: version check, reason, actor."""

from __future__ import annotations

from typing import TypedDict

from crucible.common.v1 import actor_pb2
from crucible_gateway.schemas import ChangeMeta

ACTOR_KINDS = {
    "user": actor_pb2.ACTOR_KIND_USER,
    "architect": actor_pb2.ACTOR_KIND_ARCHITECT,
    "system": actor_pb2.ACTOR_KIND_SYSTEM,
}


class ChangeFields(TypedDict):
    expected_version: int
    reason: str
    actor: actor_pb2.Actor


def change_fields(body: ChangeMeta) -> ChangeFields:
    return {
        "expected_version": body.expected_version or 0,
        "reason": body.reason,
        "actor": actor_pb2.Actor(kind=ACTOR_KINDS[body.actor.kind], id=body.actor.id),
    }
