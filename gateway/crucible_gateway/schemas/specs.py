"""Bodies of /api/specs, in the shapes of the seed's SpecCreate / Spec / SpecPlanningAnswer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from crucible.spec.v1 import spec_service_pb2 as pb
from crucible_common.protobuf import struct_to_dict, to_datetime
from crucible_gateway.schemas.common import Body, Int32, RestEnum

INTERVIEW_MODE = RestEnum(pb.InterviewMode)
SPEC_STATUS = RestEnum(pb.SpecStatus)
PLANNING_STATUS = RestEnum(pb.PlanningStatus)
InterviewMode = Annotated[str, INTERVIEW_MODE]
SpecStatus = Annotated[str, SPEC_STATUS]
PlanningStatus = Annotated[str, PLANNING_STATUS]


class SpecCreate(Body):
    task: str = Field(max_length=20_000, description="What to build (1 to 20,000 characters)")
    title: str = Field(default="", max_length=200, description="Empty: the first words of the task")
    max_questions: Int32 = Field(default=0, description="1 to 10; 0 means 5")
    mode: InterviewMode = Field(
        default="dual_subagent",
        description="dual_subagent: two providers and a judge; single: one model; stub: no model (cheap checks)",
    )


class PlanningAnswerBody(Body):
    question: str = Field(max_length=10_000, description="One of the spec's questions, exactly")
    answer: str = Field(max_length=10_000)


class PlanningAnswersSave(Body):
    answers: list[PlanningAnswerBody]


class PlanningQuestionRead(BaseModel):
    question: str
    rationale: str


class PlanningAnswerRead(BaseModel):
    question: str
    answer: str


class PlanningRead(BaseModel):
    status: PlanningStatus
    questions: list[PlanningQuestionRead]
    answers: list[PlanningAnswerRead]
    metadata: dict[str, Any] = Field(
        description="mode, agent_run_id, candidates, judge, selected_candidate, errors (see the API docs)"
    )


class SpecArtifacts(BaseModel):
    planning: PlanningRead


class SpecRead(BaseModel):
    id: str
    status: SpecStatus
    task: str
    title: str
    artifacts: SpecArtifacts
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_proto(cls, s: pb.Spec) -> SpecRead:
        p = s.planning
        return cls(
            id=s.id,
            status=SPEC_STATUS.name(s.status),
            task=s.task,
            title=s.title,
            artifacts=SpecArtifacts(
                planning=PlanningRead(
                    status=PLANNING_STATUS.name(p.status),
                    questions=[PlanningQuestionRead(question=q.question, rationale=q.rationale) for q in p.questions],
                    answers=[PlanningAnswerRead(question=a.question, answer=a.answer) for a in p.answers],
                    metadata=struct_to_dict(p.metadata),
                )
            ),
            created_at=to_datetime(s.create_time),
            updated_at=to_datetime(s.update_time),
        )


class SpecList(BaseModel):
    specs: list[SpecRead]
    next_page_token: str


class PlanningAnswersResult(BaseModel):
    spec: SpecRead
    unanswered_questions: list[str] = Field(
        description="Questions still without an answer; planning is 'answered' when this is empty"
    )
