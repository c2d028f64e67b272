"""/api/specs: a task, the planning interview's questions, the answers."""

from __future__ import annotations

from fastapi import APIRouter

from crucible.spec.v1 import spec_service_pb2 as pb
from crucible_gateway.api.deps import Clients
from crucible_gateway.schemas.common import Id, PageSize, PageToken
from crucible_gateway.schemas.specs import (
    INTERVIEW_MODE,
    PlanningAnswersResult,
    PlanningAnswersSave,
    SpecCreate,
    SpecList,
    SpecRead,
)

router = APIRouter(prefix="/specs", tags=["specs"])


@router.post("", status_code=201)
async def create_spec(body: SpecCreate, clients: Clients) -> SpecRead:
    """Run the planning interview on the task and store a draft spec with its questions."""
    request = pb.CreateSpecWithPlanningRequest(
        task=body.task, title=body.title, max_questions=body.max_questions, mode=INTERVIEW_MODE.number(body.mode)
    )
    # The interview waits for models: the longer deadline applies.
    response = await clients.spec.CreateSpecWithPlanning(request, timeout=clients.llm_timeout)
    return SpecRead.from_proto(response.spec)


@router.get("")
async def list_specs(clients: Clients, page_size: PageSize = 0, page_token: PageToken = "") -> SpecList:
    response = await clients.spec.ListSpecs(
        pb.ListSpecsRequest(page_size=page_size, page_token=page_token), timeout=clients.timeout
    )
    return SpecList(specs=[SpecRead.from_proto(s) for s in response.specs], next_page_token=response.next_page_token)


@router.get("/{spec_id}")
async def get_spec(spec_id: Id, clients: Clients) -> SpecRead:
    response = await clients.spec.GetSpec(pb.GetSpecRequest(spec_id=spec_id), timeout=clients.timeout)
    return SpecRead.from_proto(response.spec)


@router.post("/{spec_id}/answers")
async def save_planning_answers(spec_id: Id, body: PlanningAnswersSave, clients: Clients) -> PlanningAnswersResult:
    """Answer some or all questions; planning becomes "answered" when every question has an answer."""
    request = pb.SavePlanningAnswersRequest(
        spec_id=spec_id, answers=[pb.PlanningAnswer(question=a.question, answer=a.answer) for a in body.answers]
    )
    response = await clients.spec.SavePlanningAnswers(request, timeout=clients.timeout)
    return PlanningAnswersResult(
        spec=SpecRead.from_proto(response.spec), unanswered_questions=list(response.unanswered_questions)
    )
