"""Bodies of /api/agent-runs, in the shapes of the seed's AgentTddRunCreate / Result."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from crucible.agent.v1 import agent_service_pb2 as pb
from crucible_common.protobuf import struct_to_dict, to_datetime
from crucible_gateway.schemas.common import Body, OptionalId, RestEnum

# The longest texts a request may carry, as the agent service takes them (the ids of a correlation,
# model names) or, where it sets no limit, as the gateway does.
MAX_CORRELATION = 100
MAX_MODEL = 200
MAX_LABEL = 200
MAX_REASON = 2_000
MAX_INSTRUCTIONS = 20_000
MAX_PROMPT = 200_000

# A provider is a configuration name, not a proto enum: the agent service's pool knows these two.
Provider = Literal["openai", "anthropic"]
# A provider a service named, checked as a request's would be (bodies are strict: no str for a Literal).
PROVIDER: TypeAdapter[Provider] = TypeAdapter(Provider)
# A REST history has no tool calls, so it cannot carry the tool turns that answer them.
ROLE = RestEnum(pb.Role, exclude=("tool",))
RECORDING_MODE = RestEnum(pb.RecordingMode)
RUN_STATUS = RestEnum(pb.AgentRunStatus)
Role = Annotated[str, ROLE]
RecordingMode = Annotated[str, RECORDING_MODE]
RunStatus = Annotated[str, RUN_STATUS]


class HistoryMessage(Body):
    role: Role
    content: str = Field(max_length=MAX_PROMPT)


class SubagentBody(Body):
    name: str | None = Field(default=None, max_length=100, description="Defaults to the provider's name")
    provider: Provider
    model_name: str = Field(max_length=MAX_MODEL)
    system_prompt: str = Field(default="", max_length=MAX_INSTRUCTIONS)


class JudgeBody(Body):
    provider: Provider
    model_name: str = Field(max_length=MAX_MODEL)
    instructions: str = Field(default="", max_length=MAX_INSTRUCTIONS)


class CorrelationBody(Body):
    project_id: OptionalId = ""
    run_id: OptionalId = ""
    sprint_id: OptionalId = ""
    snapshot_test_id: OptionalId = ""
    purpose: str = Field(default="", max_length=MAX_CORRELATION)

    def to_proto(self, agent_run_id: str = "") -> pb.Correlation:
        return pb.Correlation(
            project_id=self.project_id,
            run_id=self.run_id,
            sprint_id=self.sprint_id,
            snapshot_test_id=self.snapshot_test_id,
            purpose=self.purpose,
            agent_run_id=agent_run_id,
        )


class CorrelationRead(BaseModel):
    """The correlation a call or run carries, as stored (a service may have been given any text)."""

    project_id: str
    run_id: str
    sprint_id: str
    snapshot_test_id: str
    purpose: str

    @classmethod
    def from_proto(cls, c: pb.Correlation) -> CorrelationRead:
        return cls(
            project_id=c.project_id,
            run_id=c.run_id,
            sprint_id=c.sprint_id,
            snapshot_test_id=c.snapshot_test_id,
            purpose=c.purpose,
        )


class RecordingBody(Body):
    mode: RecordingMode
    recording_key: str = Field(max_length=200)


class AgentRunCreate(Body):
    message: str = Field(max_length=MAX_PROMPT)
    history: list[HistoryMessage] = Field(default_factory=list)
    subagents: list[SubagentBody] = Field(
        default_factory=list, description="Empty: one subagent per configured provider"
    )
    judge: JudgeBody | None = None
    workspace_ref: str = Field(default="", max_length=500)
    metadata: dict[str, Any] = Field(default_factory=dict)
    correlation: CorrelationBody = Field(default_factory=CorrelationBody)
    recording: RecordingBody | None = None
    json_schema: dict[str, Any] | None = Field(
        default=None, description="When set, every subagent answers with a JSON object valid against it"
    )
    schema_name: str = Field(default="", max_length=100)


class AgentRunFork(Body):
    checkpoint_id: OptionalId = ""
    checkpoint_label: str = Field(
        default="", max_length=MAX_LABEL, description='e.g. "start", "candidate:openai", "decision"'
    )
    label: str = Field(default="", max_length=MAX_LABEL)
    reason: str = Field(default="", max_length=MAX_REASON)


class ForkOrigin(BaseModel):
    run_id: str
    checkpoint_id: str
    checkpoint_label: str
    label: str
    reason: str


class AgentRunRead(BaseModel):
    id: str
    status: RunStatus
    message: str
    subagents: list[SubagentBody]
    judge: JudgeBody | None
    workspace_ref: str
    metadata: dict[str, Any]
    correlation: CorrelationRead
    fork_of: ForkOrigin | None
    failure_reason: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_proto(cls, run: pb.AgentRun) -> AgentRunRead:
        return cls(
            id=run.id,
            status=RUN_STATUS.name(run.status),
            message=run.message,
            subagents=[
                SubagentBody(
                    name=s.name,
                    provider=PROVIDER.validate_python(s.provider),
                    model_name=s.model_name,
                    system_prompt=s.system_prompt,
                )
                for s in run.subagents
            ],
            judge=JudgeBody(
                provider=PROVIDER.validate_python(run.judge.provider),
                model_name=run.judge.model_name,
                instructions=run.judge.instructions,
            )
            if run.HasField("judge")
            else None,
            workspace_ref=run.workspace_ref,
            metadata=struct_to_dict(run.metadata),
            correlation=CorrelationRead.from_proto(run.correlation),
            fork_of=ForkOrigin(
                run_id=run.fork_of.run_id,
                checkpoint_id=run.fork_of.checkpoint_id,
                checkpoint_label=run.fork_of.checkpoint_label,
                label=run.fork_of.label,
                reason=run.fork_of.reason,
            )
            if run.HasField("fork_of")
            else None,
            failure_reason=run.failure_reason,
            created_at=to_datetime(run.create_time),
            updated_at=to_datetime(run.update_time),
        )


class AgentRunList(BaseModel):
    agent_runs: list[AgentRunRead]
    next_page_token: str


class CandidateMetricsRead(BaseModel):
    duration_ms: int
    input_tokens: int
    output_tokens: int
    usd: float | None = Field(description="null when a call was unpriced: the cost is unknown, not zero")
    attempts: int = Field(description="Model calls it took, retries and re-asks included")
    response_model: str = Field(description="The model that answered last, as the provider reports it")

    @classmethod
    def from_proto(cls, m: pb.CandidateMetrics) -> CandidateMetricsRead:
        return cls(
            duration_ms=m.duration_ms,
            input_tokens=m.input_tokens,
            output_tokens=m.output_tokens,
            usd=m.usd if m.HasField("usd") else None,
            attempts=m.attempts,
            response_model=m.response_model,
        )


class CandidateRead(BaseModel):
    id: str
    name: str
    provider: str
    model_name: str
    output: str
    structured: dict[str, Any] | None
    metrics: CandidateMetricsRead
    llm_call_id: str

    @classmethod
    def from_proto(cls, c: pb.Candidate) -> CandidateRead:
        return cls(
            id=c.id,
            name=c.name,
            provider=c.provider,
            model_name=c.model_name,
            output=c.output,
            structured=struct_to_dict(c.structured) if c.HasField("structured") else None,
            metrics=CandidateMetricsRead.from_proto(c.metrics),
            llm_call_id=c.llm_call_id,
        )


class DecisionRead(BaseModel):
    candidate_id: str
    candidate_name: str
    provider: str
    model_name: str
    rationale: str
    fallback: bool
    fallback_reason: str


class CheckpointRead(BaseModel):
    id: str
    label: str
    sequence: int
    state: dict[str, Any]
    created_at: datetime


class SubagentErrorRead(BaseModel):
    name: str
    provider: str
    model_name: str
    reason: str
    message: str


class AgentRunResult(BaseModel):
    run: AgentRunRead
    candidates: list[CandidateRead]
    decision: DecisionRead | None
    checkpoints: list[CheckpointRead]
    errors: list[SubagentErrorRead]

    @classmethod
    def from_proto(cls, r: pb.AgentRunResult) -> AgentRunResult:
        return cls(
            run=AgentRunRead.from_proto(r.run),
            candidates=[CandidateRead.from_proto(c) for c in r.candidates],
            decision=DecisionRead(
                candidate_id=r.decision.candidate_id,
                candidate_name=r.decision.candidate_name,
                provider=r.decision.provider,
                model_name=r.decision.model_name,
                rationale=r.decision.rationale,
                fallback=r.decision.fallback,
                fallback_reason=r.decision.fallback_reason,
            )
            if r.HasField("decision")
            else None,
            checkpoints=[
                CheckpointRead(
                    id=c.id,
                    label=c.label,
                    sequence=c.sequence,
                    state=struct_to_dict(c.state),
                    created_at=to_datetime(c.create_time),
                )
                for c in r.checkpoints
            ],
            errors=[
                SubagentErrorRead(
                    name=e.name, provider=e.provider, model_name=e.model_name, reason=e.reason, message=e.message
                )
                for e in r.errors
            ],
        )
