"""Sprints of a spec: the spec service, which knows whether a spec is answered, asks the agent service for one.

The agent context runs sprints and calls no other service, so the spec hands it what a sprint
needs of the spec (task, title, answers). The sprint itself is the agent context's: it comes
back as that context's contract message and is passed on unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from crucible.agent.v1 import sprint_service_pb2 as sprint_pb
from crucible_spec.domain.errors import SpecNotAnswered, SpecNotFound
from crucible_spec.domain.model import PlanningStatus
from crucible_spec.domain.validation import parse_id
from crucible_spec.service_layer import commands as c
from crucible_spec.service_layer.unit_of_work import AbstractUnitOfWork


@dataclass(frozen=True)
class SprintRequest:
    spec_id: str
    title: str
    task: str
    answers: tuple[tuple[str, str], ...]
    name: str
    goal: str


class SprintCreator(Protocol):
    """The agent service's sprints; its refusals come back as they are (``RelayedError``)."""

    async def create_sprint(self, request: SprintRequest) -> sprint_pb.Sprint: ...


async def create_sprint(cmd: c.CreateSprint, uow: AbstractUnitOfWork, sprints: SprintCreator) -> sprint_pb.Sprint:
    spec_id = parse_id(cmd.spec_id, "spec_id")
    async with uow:
        spec = await uow.repo.get_spec(spec_id)
    if spec is None:
        raise SpecNotFound(spec_id)
    if spec.planning.status is not PlanningStatus.ANSWERED:
        raise SpecNotAnswered(spec_id, len(spec.planning.unanswered()))
    answers = tuple((a.question, a.answer) for a in spec.planning.answers)
    return await sprints.create_sprint(SprintRequest(spec.id, spec.title, spec.task, answers, cmd.name, cmd.goal))
