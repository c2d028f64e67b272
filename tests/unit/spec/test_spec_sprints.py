"""Sprints are created by the spec service: only from an answered spec, with the spec's content."""

from __future__ import annotations

import grpc
import pytest
from grpc_status import rpc_status

from crucible.agent.v1 import sprint_service_pb2 as sprint_pb
from crucible_common.errors import FieldViolation, InvalidArgument, RelayedError, ValidationFailed, to_status
from crucible_spec.adapters.sprint_client import AgentSprintCreator
from crucible_spec.domain.errors import SpecNotAnswered, SpecNotFound
from crucible_spec.domain.model import InterviewMode, PlanningAnswer
from crucible_spec.service_layer import commands as c
from crucible_spec.service_layer import handlers as h
from crucible_spec.service_layer.sprints import SprintRequest, create_sprint
from tests.unit.spec.fakes import FakeSprintCreator, FakeUnitOfWork
from tests.unit.spec.test_specs import FakeInterviewer

TASK = "Write hello.py that prints Hello, World!"


async def _spec(uow: FakeUnitOfWork, *, answered: bool) -> str:
    spec = await h.create_spec_with_planning(
        c.CreateSpecWithPlanning(task=TASK, title="Hello", max_questions=2, mode=InterviewMode.STUB),
        uow,
        FakeInterviewer(),
    )
    if answered:
        answers = tuple(PlanningAnswer(q.question, f"answer {i}") for i, q in enumerate(spec.planning.questions))
        await h.save_planning_answers(c.SavePlanningAnswers(spec.id, answers), uow)
    return spec.id


async def test_an_answered_spec_hands_its_task_and_answers_to_the_agent_service() -> None:
    uow, creator = FakeUnitOfWork(), FakeSprintCreator()
    spec_id = await _spec(uow, answered=True)

    sprint = await create_sprint(c.CreateSprint(spec_id, "first", "ship it"), uow, creator)

    assert sprint.spec_id == spec_id
    assert sprint.status == sprint_pb.SPRINT_STATUS_PLANNED
    (request,) = creator.requests
    assert (request.spec_id, request.title, request.task, request.name, request.goal) == (
        spec_id,
        "Hello",
        TASK,
        "first",
        "ship it",
    )
    assert [a for _, a in request.answers] == ["answer 0", "answer 1"]


async def test_an_unanswered_spec_gets_no_sprint() -> None:
    uow, creator = FakeUnitOfWork(), FakeSprintCreator()
    spec_id = await _spec(uow, answered=False)

    with pytest.raises(SpecNotAnswered) as info:
        await create_sprint(c.CreateSprint(spec_id, "first"), uow, creator)

    assert info.value.reason == "SPEC_NOT_ANSWERED"
    assert info.value.metadata["unanswered"] == "2"
    assert creator.requests == []


async def test_unknown_and_malformed_spec_ids() -> None:
    uow, creator = FakeUnitOfWork(), FakeSprintCreator()
    with pytest.raises(SpecNotFound):
        await create_sprint(c.CreateSprint("7d7a3f4e-8c1b-4a53-9d5e-2f1c0b6a9e11", "x"), uow, creator)
    with pytest.raises(InvalidArgument) as info:
        await create_sprint(c.CreateSprint("not-an-id", "x"), uow, creator)
    assert info.value.reason == "INVALID_ID"
    assert creator.requests == []


class _RefusingStub:
    """A SprintService stub whose CreateSprint answers with the agent service's rich status."""

    def __init__(self) -> None:
        self.requests: list[sprint_pb.CreateSprintRequest] = []

    async def CreateSprint(
        self, request: sprint_pb.CreateSprintRequest, timeout: float
    ) -> sprint_pb.CreateSprintResponse:
        self.requests.append(request)
        status = rpc_status.to_status(
            to_status(ValidationFailed([FieldViolation("name", "1 to 200 characters")], "sprint"), "agent.crucible")
        )
        raise grpc.aio.AioRpcError(
            status.code, grpc.aio.Metadata(), grpc.aio.Metadata(*status.trailing_metadata), status.details
        )


async def test_the_agent_services_refusal_reaches_the_caller_as_it_came() -> None:
    stub = _RefusingStub()
    creator = AgentSprintCreator(stub, timeout=1.0)  # type: ignore[arg-type]

    with pytest.raises(RelayedError) as info:
        await creator.create_sprint(SprintRequest("s1", "Hello", TASK, (("Q?", "A"),), "", ""))

    assert info.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.reason == "VALIDATION_FAILED"
    assert info.value.field_violations == [FieldViolation("name", "1 to 200 characters")]
    (sent,) = stub.requests
    assert sent.spec.planning_status == sprint_pb.PLANNING_STATUS_ANSWERED
    assert [(a.question, a.answer) for a in sent.spec.answers] == [("Q?", "A")]
