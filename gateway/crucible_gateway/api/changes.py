"""What every ProblemSpec / WorldModel change request carries: version check, reason, actor."""

from __future__ import annotations

from typing import TypedDict

from crucible.common.v1 import actor_pb2
from crucible_gateway.schemas.changes import ACTOR_KIND, ChangeMeta


class ChangeFields(TypedDict):
    expected_version: int
    reason: str
    actor: actor_pb2.Actor


def change_fields(body: ChangeMeta) -> ChangeFields:
    return {
        "expected_version": body.expected_version or 0,
        "reason": body.reason,
        "actor": actor_pb2.Actor(kind=ACTOR_KIND.number(body.actor.kind), id=body.actor.id),
    }
