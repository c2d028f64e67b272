"""REST bodies of /api/specs, in the shapes of the seed's SpecCreate / Spec / SpecPlanningAnswer."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from crucible.spec.v1 import spec_service_pb2 as pb
from crucible_common.protobuf import struct_to_dict, to_datetime
from crucible_gateway.schemas import Body, Int32

InterviewModeName = Literal["dual_subagent", "single", "stub"]
INTERVIEW_MODES: dict[str, pb.InterviewMode.ValueType] = {
    "dual_subagent": pb.INTERVIEW_MODE_DUAL_SUBAGENT,
    "single": pb.INTERVIEW_MODE_SINGLE,
    "stub": pb.INTERVIEW_MODE_STUB,
}
SPEC_STATUS: dict[int, Literal["draft", "validated"]] = {
    pb.SPEC_STATUS_DRAFT: "draft",
    pb.SPEC_STATUS_VALIDATED: "validated",
}
PLANNING_STATUS: dict[int, Literal["needs_answers", "answered"]] = {
    pb.PLANNING_STATUS_NEEDS_ANSWERS: "needs_answers",
    pb.PLANNING_STATUS_ANSWERED: "answered",
}


class SpecCreate(Body):
    task: str = Field(description="What to build (1 to 20,000 characters)")
    title: str = Field(default="", description="Empty: the first words of the task")
    max_questions: Int32 = Field(default=0, description="1 to 10; 0 means 5")
    mode: InterviewModeName = Field(
        default="dual_subagent",
        description="dual_subagent: two providers and a judge; single: one model; stub: no model (cheap checks)",
    )


class PlanningAnswerBody(Body):
    question: str = Field(description="One of the spec's questions, exactly")
    answer: str


class PlanningAnswersSave(Body):
    answers: list[PlanningAnswerBody]


class PlanningQuestionRead(BaseModel):
    question: str
    rationale: str


class PlanningAnswerRead(BaseModel):
    question: str
    answer: str


class PlanningRead(BaseModel):
    status: Literal["needs_answers", "answered"]
    questions: list[PlanningQuestionRead]
    answers: list[PlanningAnswerRead]
    metadata: dict[str, Any] = Field(
        description="mode, agent_run_id, candidates, judge, selected_candidate, errors (see the API docs)"
    )


class SpecArtifacts(BaseModel):
    planning: PlanningRead


class SpecRead(BaseModel):
    id: str
    status: Literal["draft", "validated"]
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
            status=SPEC_STATUS[s.status],
            task=s.task,
            title=s.title,
            artifacts=SpecArtifacts(
                planning=PlanningRead(
                    status=PLANNING_STATUS[p.status],
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
