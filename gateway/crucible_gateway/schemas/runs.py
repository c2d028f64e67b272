"""Bodies of /api/runs and the events of their WebSocket (seed 001's run advisor contract).

A run's status is spelt in capitals (``COMPLETED``) as the seed writes it, its event types dotted
(``evaluation.completed``), every other enum in lower case (``full_search``, ``cli_tool``). The
scores keep the letters the seed gives them: ``I``, ``P`` and ``R``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, TypedDict

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

from crucible.run.v1 import run_service_pb2 as pb
from crucible_common.enums import dotted, upper
from crucible_common.protobuf import struct_to_dict, to_datetime
from crucible_gateway.schemas.common import Body, Id, Int32, Int64, OptionalId, RestEnum

RUN_MODE = RestEnum(pb.RunMode)
RUN_STATUS = RestEnum(pb.RunStatus, upper)
RUN_PHASE = RestEnum(pb.RunPhase)
TRIGGER_SOURCE = RestEnum(pb.TriggerSource)
BLOCKER_CODE = RestEnum(pb.BlockerCode)
WARNING_CODE = RestEnum(pb.WarningCode)
CANDIDATE_LABEL = RestEnum(pb.CandidateLabel)
CANDIDATE_ORIGIN = RestEnum(pb.CandidateOrigin)
EVALUATION_STATUS = RestEnum(pb.EvaluationStatus)
EVENT_TYPE = RestEnum(pb.RunEventType, dotted)
LINEAGE_ROLE = RestEnum(pb.LineageRole)
RunMode = Annotated[str, RUN_MODE]
RunStatus = Annotated[str, RUN_STATUS]
RunPhase = Annotated[str, RUN_PHASE]
TriggerSource = Annotated[str, TRIGGER_SOURCE]
BlockerCode = Annotated[str, BLOCKER_CODE]
WarningCode = Annotated[str, WARNING_CODE]
CandidateLabel = Annotated[str, CANDIDATE_LABEL]
CandidateOrigin = Annotated[str, CANDIDATE_ORIGIN]
EvaluationStatus = Annotated[str, EVALUATION_STATUS]
LineageRole = Annotated[str, LINEAGE_ROLE]


# ---------------------------------------------------------------- requests


class CandidateDraft(Body):
    """A seed given whole, bounded as the run service bounds it (which also refuses a blank title)."""

    title: str = Field(max_length=200)
    description: str = Field(default="", max_length=4_000)
    approach: str = Field(default="", max_length=4_000)
    assumptions: list[Annotated[str, Field(max_length=1_000)]] = Field(default_factory=list, max_length=20)


class RunParameters(Body):
    """A run's parameters: a count of 0 takes the service's default; an absent limit is no limit.

    The bounds are the run service's preflight's, not this schema's: a value out of them is a
    ``validation_error`` blocker of the preflight (412 ``RUN_BLOCKED`` at CreateRun), which the Run
    Config panel shows beside the others, rather than a 400 before any check."""

    num_candidates: Int32 = Field(
        default=0, description="New candidates the designers propose: 1 to 50 (0: the default for the resolution)"
    )
    num_scenarios: Int32 = Field(
        default=0, description="1 to 50 (0: the default for the ProblemSpec's resolution); at most 1000 pairs in all"
    )
    seed_candidate_ids: list[Id] = Field(
        default_factory=list, description="eval_only, seeded: candidates of earlier runs of the project (at most 50)"
    )
    budget_tokens: Int64 | None = Field(default=None, description="At least 1000; absent: no limit")
    budget_usd: FiniteFloat | None = Field(default=None, description="More than 0, at most 1000; absent: no limit")
    max_runtime_s: Int32 | None = Field(default=None, description="10 to 86400; absent: no limit")
    seed_candidates: list[CandidateDraft] = Field(
        default_factory=list,
        description="eval_only, seeded: seeds given whole, for a project without runs to name them from",
    )

    def to_proto(self) -> pb.RunParameters:
        params = pb.RunParameters(
            num_candidates=self.num_candidates,
            num_scenarios=self.num_scenarios,
            seed_candidate_ids=self.seed_candidate_ids,
            seed_candidates=[
                pb.CandidateDraft(
                    title=d.title, description=d.description, approach=d.approach, assumptions=d.assumptions
                )
                for d in self.seed_candidates
            ],
        )
        # The proto's `optional` fields: absent stays absent, so the service tells unset from 0.
        if self.budget_tokens is not None:
            params.budget_tokens = self.budget_tokens
        if self.budget_usd is not None:
            params.budget_usd = self.budget_usd
        if self.max_runtime_s is not None:
            params.max_runtime_s = self.max_runtime_s
        return params

    @classmethod
    def from_proto(cls, p: pb.RunParameters) -> RunParameters:
        return cls(
            num_candidates=p.num_candidates,
            num_scenarios=p.num_scenarios,
            seed_candidate_ids=list(p.seed_candidate_ids),
            budget_tokens=p.budget_tokens if p.HasField("budget_tokens") else None,
            budget_usd=p.budget_usd if p.HasField("budget_usd") else None,
            max_runtime_s=p.max_runtime_s if p.HasField("max_runtime_s") else None,
            seed_candidates=[
                CandidateDraft(
                    title=d.title, description=d.description, approach=d.approach, assumptions=list(d.assumptions)
                )
                for d in p.seed_candidates
            ],
        )


class RunPreflightBody(Body):
    mode: RunMode
    parameters: RunParameters = Field(default_factory=RunParameters)
    chat_session_id: OptionalId = ""
    recommended_message_id: OptionalId = Field(
        default="", description="The Architect message whose recommended_run_config this follows"
    )


class RunCreate(RunPreflightBody):
    project_id: Id
    # Optional here on purpose: the run service alone owns the rule that a run needs an explicit
    # trigger, and its refusal (TRIGGER_REQUIRED) is the one every client sees, for a null id too.
    ui_trigger_id: str | None = Field(
        default="", max_length=200, description="Required by the service: the explicit action's id"
    )
    ui_trigger_source: TriggerSource | None = Field(default=None, description="Default: api_client")
    ui_trigger_metadata: dict[str, Any] = Field(default_factory=dict)


def _phases(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """``["all"]`` is "all"; anything else refused gets one message saying what is taken, not one for
    each member of the union under pydantic's names for them (``phases.literal['all']``)."""
    if value == ["all"]:
        value = "all"
    try:
        return handler(value)
    except ValidationError:
        raise PydanticCustomError(
            "phases", '"all", or a list of some of: {phases}', {"phases": ", ".join(RUN_PHASE.names)}
        ) from None


class RunExecute(Body):
    phases: Annotated[Literal["all"] | Annotated[list[RunPhase], Field(min_length=1)], WrapValidator(_phases)] = Field(
        default="all", description='"all", or some of the phases (the ones they need are added)'
    )


class RunCancel(Body):
    reason: str = Field(default="", max_length=500)


# ---------------------------------------------------------------- preflight


class BlockerRead(BaseModel):
    code: BlockerCode
    message: str = Field(description="What is missing and how to fix it, in words")
    field: str = Field(description="The parameter at fault, for validation_error")


class WarningRead(BaseModel):
    code: WarningCode
    message: str


class RunConfigRead(BaseModel):
    mode: RunMode
    parameters: RunParameters


class PrerequisitesRead(BaseModel):
    problem_spec: bool
    world_model: bool
    seed_candidates: bool


class CostEstimateRead(BaseModel):
    tokens: int
    usd: float | None = Field(description="null when a model the run would call has no price: unknown, not zero")
    calls: int


class RunPreflight(BaseModel):
    ready: bool
    blockers: list[BlockerCode]
    blocker_details: list[BlockerRead]
    warnings: list[WarningCode]
    warning_details: list[WarningRead]
    normalized_config: RunConfigRead
    prerequisites: PrerequisitesRead
    notes: list[str]
    estimated_cost: CostEstimateRead

    @classmethod
    def from_proto(cls, r: pb.PreflightRunResponse) -> RunPreflight:
        blockers = [BlockerRead(code=BLOCKER_CODE.name(b.code), message=b.message, field=b.field) for b in r.blockers]
        warnings = [WarningRead(code=WARNING_CODE.name(w.code), message=w.message) for w in r.warnings]
        cost = r.estimated_cost
        return cls(
            ready=r.ready,
            blockers=[b.code for b in blockers],
            blocker_details=blockers,
            warnings=[w.code for w in warnings],
            warning_details=warnings,
            normalized_config=RunConfigRead(
                mode=RUN_MODE.name(r.normalized_config.mode),
                parameters=RunParameters.from_proto(r.normalized_config.parameters),
            ),
            prerequisites=PrerequisitesRead(
                problem_spec=r.prerequisites.problem_spec,
                world_model=r.prerequisites.world_model,
                seed_candidates=r.prerequisites.seed_candidates,
            ),
            notes=list(r.notes),
            estimated_cost=CostEstimateRead(
                tokens=cost.tokens, usd=cost.usd if cost.HasField("usd") else None, calls=cost.calls
            ),
        )


# ---------------------------------------------------------------- runs


class RunTriggerRead(BaseModel):
    id: str
    source: TriggerSource
    metadata: dict[str, Any]
    at: datetime

    @classmethod
    def from_proto(cls, t: pb.Trigger) -> RunTriggerRead:
        return cls(
            id=t.id, source=TRIGGER_SOURCE.name(t.source), metadata=struct_to_dict(t.metadata), at=to_datetime(t.time)
        )


class RunCounts(BaseModel):
    candidates: int
    scenarios: int
    evaluations: int
    failed_evaluations: int

    @classmethod
    def from_proto(cls, c: pb.RunCounts) -> RunCounts:
        return cls(
            candidates=c.candidates,
            scenarios=c.scenarios,
            evaluations=c.evaluations,
            failed_evaluations=c.failed_evaluations,
        )


class RunUsage(BaseModel):
    input_tokens: int
    output_tokens: int
    usd: float = Field(description="Over priced calls only; see unpriced_calls")
    calls: int
    unpriced_calls: int = Field(
        description="Calls of unknown cost (the model has no price, or the answer did not report its usage), not zero"
    )
    failed_calls: int

    @classmethod
    def from_proto(cls, u: pb.LlmUsage) -> RunUsage:
        return cls(
            input_tokens=u.input_tokens,
            output_tokens=u.output_tokens,
            usd=round(u.usd, 8),
            calls=u.calls,
            unpriced_calls=u.unpriced_calls,
            failed_calls=u.failed_calls,
        )


class RunRead(BaseModel):
    id: str
    project_id: str
    mode: RunMode
    parameters: RunParameters
    status: RunStatus
    phases: list[RunPhase] = Field(description="The phases execution was asked for; empty before it was")
    trigger: RunTriggerRead | None
    # The seed's audit columns, beside the trigger object they repeat.
    ui_trigger_id: str
    ui_trigger_source: TriggerSource | None
    ui_trigger_metadata: dict[str, Any]
    ui_triggered_at: datetime | None
    chat_session_id: str
    recommended_message_id: str
    recommended_config_snapshot: dict[str, Any] | None
    run_summary_message_id: str
    counts: RunCounts
    usage: RunUsage
    failure_reason: str
    error_summary: str
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    duration_seconds: float
    trace_id: str
    # Where a run that is not the user's own work came from ("" for one that is).
    replay_of_run_id: str = Field(description="The run a recorded replay answers its model calls from")
    snapshot_test_id: str = Field(description="The snapshot suite whose replay this run is")

    @classmethod
    def from_proto(cls, r: pb.Run) -> RunRead:
        trigger = RunTriggerRead.from_proto(r.trigger) if r.HasField("trigger") else None
        return cls(
            id=r.id,
            project_id=r.project_id,
            mode=RUN_MODE.name(r.mode),
            parameters=RunParameters.from_proto(r.parameters),
            status=RUN_STATUS.name(r.status),
            phases=[RUN_PHASE.name(p) for p in r.phases],
            trigger=trigger,
            ui_trigger_id=trigger.id if trigger else "",
            ui_trigger_source=trigger.source if trigger else None,
            ui_trigger_metadata=trigger.metadata if trigger else {},
            ui_triggered_at=trigger.at if trigger else None,
            chat_session_id=r.chat_session_id,
            recommended_message_id=r.recommended_message_id,
            recommended_config_snapshot=struct_to_dict(r.recommended_config_snapshot)
            if r.HasField("recommended_config_snapshot")
            else None,
            run_summary_message_id=r.run_summary_message_id,
            counts=RunCounts.from_proto(r.counts),
            usage=RunUsage.from_proto(r.usage),
            failure_reason=r.failure_reason,
            error_summary=r.error_summary,
            created_at=to_datetime(r.create_time),
            started_at=to_datetime(r.start_time) if r.HasField("start_time") else None,
            ended_at=to_datetime(r.end_time) if r.HasField("end_time") else None,
            duration_seconds=r.duration_seconds,
            trace_id=r.trace_id,
            replay_of_run_id=r.replay_of_run_id,
            snapshot_test_id=r.snapshot_test_id,
        )


class RunList(BaseModel):
    runs: list[RunRead] = Field(description="Newest first")
    next_page_token: str


# ---------------------------------------------------------------- what a run produced


class RunCandidateRead(BaseModel):
    id: str
    run_id: str
    title: str
    description: str
    approach: str
    assumptions: list[str]
    origin: CandidateOrigin
    source_candidate_id: str = Field(description="For seeds: the candidate of the earlier run this one copies")
    created_at: datetime

    @classmethod
    def from_proto(cls, c: pb.Candidate) -> RunCandidateRead:
        return cls(
            id=c.id,
            run_id=c.run_id,
            title=c.title,
            description=c.description,
            approach=c.approach,
            assumptions=list(c.assumptions),
            origin=CANDIDATE_ORIGIN.name(c.origin),
            source_candidate_id=c.source_candidate_id,
            created_at=to_datetime(c.create_time),
        )


class RunCandidateList(BaseModel):
    candidates: list[RunCandidateRead]
    next_page_token: str


class ScenarioRead(BaseModel):
    id: str
    run_id: str
    title: str
    description: str
    conditions: list[str]
    severity: str = Field(description='"low", "medium" or "high"')
    created_at: datetime

    @classmethod
    def from_proto(cls, s: pb.Scenario) -> ScenarioRead:
        return cls(
            id=s.id,
            run_id=s.run_id,
            title=s.title,
            description=s.description,
            conditions=list(s.conditions),
            severity=s.severity,
            created_at=to_datetime(s.create_time),
        )


class ScenarioList(BaseModel):
    scenarios: list[ScenarioRead]
    next_page_token: str


class ScoreRead(BaseModel):
    overall: float
    components: dict[str, float]


class ConstraintResultRead(BaseModel):
    constraint: str
    weight: int = Field(description="Its weight in the ProblemSpec the run copied (100 = hard)")
    satisfied: bool
    score: float
    note: str


class EvaluationRead(BaseModel):
    id: str
    run_id: str
    candidate_id: str
    scenario_id: str
    status: EvaluationStatus
    p: ScoreRead | None = Field(serialization_alias="P", description="How well the candidate does in the scenario")
    r: ScoreRead | None = Field(serialization_alias="R", description="What it costs or risks there")
    constraint_satisfaction: list[ConstraintResultRead]
    explanation: str
    failure_reason: str = Field(description="For failed: why; no score is invented")
    raw_answer: str
    llm_call_id: str
    created_at: datetime

    @classmethod
    def from_proto(cls, e: pb.Evaluation) -> EvaluationRead:
        return cls(
            id=e.id,
            run_id=e.run_id,
            candidate_id=e.candidate_id,
            scenario_id=e.scenario_id,
            status=EVALUATION_STATUS.name(e.status),
            p=ScoreRead(overall=e.p.overall, components=dict(e.p.components)) if e.HasField("p") else None,
            r=ScoreRead(overall=e.r.overall, components=dict(e.r.components)) if e.HasField("r") else None,
            constraint_satisfaction=[
                ConstraintResultRead(
                    constraint=c.constraint, weight=c.weight, satisfied=c.satisfied, score=c.score, note=c.note
                )
                for c in e.constraint_satisfaction
            ],
            explanation=e.explanation,
            failure_reason=e.failure_reason,
            raw_answer=e.raw_answer,
            llm_call_id=e.llm_call_id,
            created_at=to_datetime(e.create_time),
        )


class EvaluationList(BaseModel):
    evaluations: list[EvaluationRead]
    next_page_token: str


class ConstraintViolationRead(BaseModel):
    """A hard constraint a candidate broke (in the results, and in a run_rejections message)."""

    # Strict, so the tests that validate a run_rejections payload catch a field this does not name.
    model_config = ConfigDict(extra="forbid")

    constraint: str
    weight: int
    scenarios: int = Field(description="In how many scenarios it was broken")


class RankedCandidateRead(BaseModel):
    candidate_id: str
    title: str
    rank: int = Field(description="From 1; rejected candidates come last")
    i: float | None = Field(serialization_alias="I", description="P / R; null without a successful evaluation")
    p: float | None = Field(serialization_alias="P")
    r: float | None = Field(serialization_alias="R")
    label: CandidateLabel
    rejected: bool
    violated_constraints: list[ConstraintViolationRead]
    evaluations: int
    failed_evaluations: int

    @classmethod
    def from_proto(cls, c: pb.RankedCandidate) -> RankedCandidateRead:
        return cls(
            candidate_id=c.candidate_id,
            title=c.title,
            rank=c.rank,
            i=c.i if c.HasField("i") else None,
            p=c.p if c.HasField("p") else None,
            r=c.r if c.HasField("r") else None,
            label=CANDIDATE_LABEL.name(c.label),
            rejected=c.rejected,
            violated_constraints=[
                ConstraintViolationRead(constraint=v.constraint, weight=v.weight, scenarios=v.scenarios)
                for v in c.violated_constraints
            ],
            evaluations=c.evaluations,
            failed_evaluations=c.failed_evaluations,
        )


class RunResults(BaseModel):
    run_id: str
    candidates: list[RankedCandidateRead] = Field(description="Best first, rejected ones last")

    @classmethod
    def from_proto(cls, r: pb.GetRunResultsResponse) -> RunResults:
        return cls(run_id=r.run_id, candidates=[RankedCandidateRead.from_proto(c) for c in r.candidates])


class CandidateScenarioPair(BaseModel):
    candidate_id: str
    scenario_id: str


class TopCandidateRead(BaseModel):
    candidate_id: str
    title: str
    i: float = Field(serialization_alias="I")
    p: float = Field(serialization_alias="P")
    r: float = Field(serialization_alias="R")


class RunStatistics(BaseModel):
    run_id: str
    status: RunStatus
    counts: RunCounts
    coverage: float = Field(description="Successful evaluations / (candidates × scenarios)")
    missing_pairs: list[CandidateScenarioPair] = Field(description="Pairs without a successful evaluation")
    duration_seconds: float
    usage: RunUsage
    top_candidate: TopCandidateRead | None
    hard_constraint_violations: int
    error_summary: str
    failure_reason: str

    @classmethod
    def from_proto(cls, s: pb.RunStatistics) -> RunStatistics:
        top = s.top_candidate
        return cls(
            run_id=s.run_id,
            status=RUN_STATUS.name(s.status),
            counts=RunCounts.from_proto(s.counts),
            coverage=s.coverage,
            missing_pairs=[
                CandidateScenarioPair(candidate_id=m.candidate_id, scenario_id=m.scenario_id) for m in s.missing_pairs
            ],
            duration_seconds=s.duration_seconds,
            usage=RunUsage.from_proto(s.usage),
            top_candidate=TopCandidateRead(candidate_id=top.candidate_id, title=top.title, i=top.i, p=top.p, r=top.r)
            if s.HasField("top_candidate")
            else None,
            hard_constraint_violations=s.hard_constraint_violations,
            error_summary=s.error_summary,
            failure_reason=s.failure_reason,
        )


# ---------------------------------------------------------------- lineage


class SpanLinkRead(BaseModel):
    trace_id: str
    span_id: str
    attributes: dict[str, Any] = Field(description='What the link is: crucible.link ("recommendation", ...)')


class LineageSpanRead(BaseModel):
    role: LineageRole
    trace_id: str
    span_id: str
    found: bool = Field(description="False when the local trace files do not have it; its ids still name it")
    name: str
    service: str
    parent_span_id: str
    started_at: datetime | None
    ended_at: datetime | None
    links: list[SpanLinkRead]
    attributes: dict[str, Any]

    @classmethod
    def from_proto(cls, s: pb.LineageSpan) -> LineageSpanRead:
        return cls(
            role=LINEAGE_ROLE.name(s.role),
            trace_id=s.trace_id,
            span_id=s.span_id,
            found=s.found,
            name=s.name,
            service=s.service,
            parent_span_id=s.parent_span_id,
            started_at=to_datetime(s.start_time) if s.HasField("start_time") else None,
            ended_at=to_datetime(s.end_time) if s.HasField("end_time") else None,
            links=[
                SpanLinkRead(trace_id=x.trace_id, span_id=x.span_id, attributes=struct_to_dict(x.attributes))
                for x in s.links
            ],
            attributes=struct_to_dict(s.attributes),
        )


class LineageMessageRead(BaseModel):
    message_id: str
    chat_session_id: str
    found: bool = Field(description="False when the chat no longer has it")
    label: str = Field(description="The summary's label, or the message's first line")
    created_at: datetime | None

    @classmethod
    def from_proto(cls, m: pb.LineageMessage) -> LineageMessageRead:
        return cls(
            message_id=m.message_id,
            chat_session_id=m.chat_session_id,
            found=m.found,
            label=m.label,
            created_at=to_datetime(m.create_time) if m.HasField("create_time") else None,
        )


class RunLineage(BaseModel):
    run_id: str
    project_id: str
    recommendation: LineageMessageRead | None = Field(description="The Architect message the run follows")
    recommended_config: dict[str, Any] | None = Field(description="Its config as the run copied it")
    trigger: RunTriggerRead
    trace_id: str = Field(description="The run's execution trace; empty until it is executed")
    summary: LineageMessageRead | None = Field(description="The post-run summary; null until it is posted")
    spans: list[LineageSpanRead] = Field(
        description="recommendation, create_run, execution, its executors, summary: those the run has reached"
    )
    spans_stored_locally: bool = Field(description="False when spans are exported over OTLP (see spans_note)")
    spans_note: str
    trace_span_count: int = Field(description="Spans of the execution trace found locally")
    trace_services: list[str]

    @classmethod
    def from_proto(cls, x: pb.RunLineage) -> RunLineage:
        return cls(
            run_id=x.run_id,
            project_id=x.project_id,
            recommendation=LineageMessageRead.from_proto(x.recommendation) if x.HasField("recommendation") else None,
            recommended_config=struct_to_dict(x.recommended_config) if x.HasField("recommended_config") else None,
            trigger=RunTriggerRead.from_proto(x.trigger),
            trace_id=x.trace_id,
            summary=LineageMessageRead.from_proto(x.summary) if x.HasField("summary") else None,
            spans=[LineageSpanRead.from_proto(s) for s in x.spans],
            spans_stored_locally=x.spans_stored_locally,
            spans_note=x.spans_note,
            trace_span_count=x.trace_span_count,
            trace_services=list(x.trace_services),
        )


# ---------------------------------------------------------------- the WebSocket


class RunEventJson(TypedDict):
    """One WebSocket message: a run event, its type spelled dotted ("evaluation.completed")."""

    sequence: int
    run_id: str
    type: str
    data: dict[str, Any]
    time: str


def event_json(e: pb.RunEvent) -> RunEventJson:
    return {
        "sequence": e.sequence,
        "run_id": e.run_id,
        "type": EVENT_TYPE.name(e.type),
        "data": struct_to_dict(e.data),
        "time": to_datetime(e.time).isoformat(),
    }
