"""Proto ⇄ domain conversions for the agent service (translation only)."""

from __future__ import annotations

from crucible.agent.v1 import agent_service_pb2 as pb
from crucible_agent.domain.model import (
    AgentRun,
    AgentRunResult,
    AgentRunStatus,
    CallAllowance,
    Candidate,
    CandidateMetrics,
    ChatMessage,
    Checkpoint,
    Correlation,
    Decision,
    Delta,
    JudgeConfig,
    LlmCall,
    LlmCallStatus,
    LlmResult,
    ModelPrice,
    ModelRef,
    Recording,
    RecordingMode,
    Role,
    SubagentConfig,
    SubagentError,
    ToolCall,
    ToolSpec,
    UsageDimension,
    UsageReport,
    UsageTotals,
)
from crucible_common.enums import ProtoEnum
from crucible_common.protobuf import struct, struct_to_dict, timestamp

ROLE = ProtoEnum(pb.Role, Role)
RECORDING_MODE = ProtoEnum(pb.RecordingMode, RecordingMode, unspecified=RecordingMode.OFF)
RUN_STATUS = ProtoEnum(pb.AgentRunStatus, AgentRunStatus)
CALL_STATUS = ProtoEnum(pb.LlmCallStatus, LlmCallStatus)
USAGE_DIMENSION = ProtoEnum(pb.UsageDimension, UsageDimension)


# ---------------------------------------------------------------- in


def correlation(c: pb.Correlation) -> Correlation:
    return Correlation(c.project_id, c.run_id, c.sprint_id, c.snapshot_test_id, c.purpose, c.agent_run_id)


def call_allowance(a: pb.CallAllowance) -> CallAllowance:
    return CallAllowance(a.usd if a.HasField("usd") else None, a.tokens if a.HasField("tokens") else None)


def recording(r: pb.Recording) -> Recording:
    return Recording(RECORDING_MODE.from_proto(r.mode, "recording.mode") or RecordingMode.OFF, r.recording_key)


def messages(items: list[pb.Message], field: str = "messages") -> tuple[ChatMessage, ...]:
    result = []
    for i, m in enumerate(items):
        role = ROLE.from_proto(m.role, f"{field}[{i}].role") or Role.USER
        calls = tuple(ToolCall(c.id, c.name, struct_to_dict(c.arguments)) for c in m.tool_calls)
        result.append(ChatMessage(role, m.content, calls, m.tool_call_id))
    return tuple(result)


def model_ref(r: pb.ModelRef) -> ModelRef:
    return ModelRef(r.provider, r.model_name)


def tools(items: list[pb.Tool]) -> tuple[ToolSpec, ...]:
    return tuple(ToolSpec(t.name, t.description, struct_to_dict(t.parameters)) for t in items)


def subagents(items: list[pb.SubagentConfig]) -> tuple[SubagentConfig, ...]:
    return tuple(SubagentConfig(s.name, s.provider, s.model_name, s.system_prompt) for s in items)


def judge(j: pb.JudgeConfig, present: bool) -> JudgeConfig | None:
    return JudgeConfig(j.provider, j.model_name, j.instructions) if present else None


# ---------------------------------------------------------------- out


def correlation_pb(c: Correlation) -> pb.Correlation:
    return pb.Correlation(
        project_id=c.project_id,
        run_id=c.run_id,
        sprint_id=c.sprint_id,
        snapshot_test_id=c.snapshot_test_id,
        purpose=c.purpose,
        agent_run_id=c.agent_run_id,
    )


def message_pb(m: ChatMessage) -> pb.Message:
    return pb.Message(
        role=ROLE.to_proto(m.role),
        content=m.content,
        tool_calls=[tool_call_pb(c) for c in m.tool_calls],
        tool_call_id=m.tool_call_id,
    )


def tool_call_pb(c: ToolCall) -> pb.ToolCall:
    return pb.ToolCall(id=c.id, name=c.name, arguments=struct(c.arguments))


def usage_pb(u: UsageTotals) -> pb.Usage:
    return pb.Usage(
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        usd=u.usd,
        calls=u.calls,
        unpriced_calls=u.unpriced_calls,
        failed_calls=u.failed_calls,
        replayed_calls=u.replayed_calls,
        cancelled_calls=u.cancelled_calls,
    )


def complete_response(r: LlmResult) -> pb.CompleteResponse:
    usd = r.usd
    final = r.final_call
    if r.idempotent_replay:
        return pb.CompleteResponse(
            content=r.text,
            structured=struct(r.structured) if r.structured is not None else None,
            tool_calls=[tool_call_pb(c) for c in r.tool_calls],
            finish_reason=r.finish_reason,
            response_model=r.response_model,
            usage=pb.Usage(),
            llm_call_id=final.id,
            idempotent_replay=True,
        )
    return pb.CompleteResponse(
        content=r.text,
        structured=struct(r.structured) if r.structured is not None else None,
        tool_calls=[tool_call_pb(c) for c in r.tool_calls],
        finish_reason=r.finish_reason,
        response_model=r.response_model,
        usage=pb.Usage(
            input_tokens=r.input_tokens,
            output_tokens=r.output_tokens,
            usd=usd or 0.0,
            calls=len(r.calls),
            unpriced_calls=sum(1 for c in r.calls if c.usd is None),
            replayed_calls=sum(1 for c in r.calls if c.status is LlmCallStatus.REPLAYED),
        ),
        llm_call_id=final.id,
        latency_ms=sum(c.latency_ms for c in r.calls),
    )


def stream_complete_response(event: Delta | LlmResult) -> pb.StreamCompleteResponse:
    if isinstance(event, Delta):
        return pb.StreamCompleteResponse(delta=pb.CompleteDelta(text=event.text, attempt=event.attempt))
    return pb.StreamCompleteResponse(response=complete_response(event))


def agent_run_pb(run: AgentRun) -> pb.AgentRun:
    message = pb.AgentRun(
        id=run.id,
        status=RUN_STATUS.to_proto(run.status),
        message=run.message,
        history=[message_pb(m) for m in run.history],
        subagents=[
            pb.SubagentConfig(name=s.name, provider=s.provider, model_name=s.model, system_prompt=s.system_prompt)
            for s in run.subagents
        ],
        workspace_ref=run.workspace_ref,
        metadata=struct(run.metadata),
        correlation=correlation_pb(run.correlation),
        failure_reason=run.failure_reason,
        create_time=timestamp(run.created_at),
        update_time=timestamp(run.updated_at),
        json_schema=struct(run.json_schema) if run.json_schema is not None else None,
        schema_name=run.schema_name,
    )
    if run.judge is not None:
        message.judge.CopyFrom(
            pb.JudgeConfig(provider=run.judge.provider, model_name=run.judge.model, instructions=run.judge.instructions)
        )
    if run.fork_of is not None:
        f = run.fork_of
        message.fork_of.CopyFrom(
            pb.ForkOrigin(
                run_id=f.run_id,
                checkpoint_id=f.checkpoint_id,
                checkpoint_label=f.checkpoint_label,
                label=f.label,
                reason=f.reason,
            )
        )
    return message


def candidate_pb(c: Candidate) -> pb.Candidate:
    return pb.Candidate(
        id=c.id,
        name=c.name,
        provider=c.provider,
        model_name=c.model,
        output=c.output,
        metrics=metrics_pb(c.metrics),
        llm_call_id=c.llm_call_id,
        structured=struct(c.structured) if c.structured is not None else None,
    )


def metrics_pb(m: CandidateMetrics) -> pb.CandidateMetrics:
    message = pb.CandidateMetrics(
        duration_ms=m.duration_ms,
        input_tokens=m.input_tokens,
        output_tokens=m.output_tokens,
        attempts=m.attempts,
        response_model=m.response_model,
    )
    if m.usd is not None:
        message.usd = m.usd
    return message


def decision_pb(d: Decision) -> pb.Decision:
    return pb.Decision(
        candidate_id=d.candidate_id,
        candidate_name=d.candidate_name,
        provider=d.provider,
        model_name=d.model,
        rationale=d.rationale,
        fallback=d.fallback,
        fallback_reason=d.fallback_reason,
    )


def checkpoint_pb(c: Checkpoint) -> pb.Checkpoint:
    return pb.Checkpoint(
        id=c.id, sequence=c.sequence, label=c.label, state=struct(c.state), create_time=timestamp(c.created_at)
    )


def error_pb(e: SubagentError) -> pb.SubagentError:
    return pb.SubagentError(name=e.name, provider=e.provider, model_name=e.model, reason=e.reason, message=e.message)


def result_pb(r: AgentRunResult) -> pb.AgentRunResult:
    result = pb.AgentRunResult(
        run=agent_run_pb(r.run),
        candidates=[candidate_pb(c) for c in r.candidates],
        checkpoints=[checkpoint_pb(c) for c in r.checkpoints],
        errors=[error_pb(e) for e in r.errors],
    )
    if r.decision is not None:
        result.decision.CopyFrom(decision_pb(r.decision))
    return result


def usage_dimensions(numbers: list[int]) -> list[UsageDimension]:
    return [USAGE_DIMENSION.required(n, f"group_by[{i}]") for i, n in enumerate(numbers)]


def usage_report_pb(report: UsageReport) -> pb.GetUsageResponse:
    return pb.GetUsageResponse(
        total=usage_pb(report.total),
        by_model=[
            pb.ModelUsage(provider=m.provider, model_name=m.model, usage=usage_pb(m.usage), priced=m.priced)
            for m in report.by_model
        ],
        groups=[
            pb.UsageGroups(
                dimension=USAGE_DIMENSION.to_proto(g.dimension),
                groups=[pb.KeyedUsage(key=key, usage=usage_pb(u)) for key, u in g.groups],
                truncated=g.truncated,
            )
            for g in report.groups
        ],
        calls_in_flight=report.calls_in_flight,
    )


def llm_call_pb(c: LlmCall, *, with_response: bool = False) -> pb.LlmCall:
    """``with_response``: the answer's text too (GetLlmCall), which a page of calls leaves out."""
    return pb.LlmCall(
        id=c.id,
        provider=c.provider,
        model_name=c.model,
        response_model=c.response_model,
        correlation=correlation_pb(c.correlation),
        status=CALL_STATUS.to_proto(c.status),
        input_tokens=c.input_tokens,
        output_tokens=c.output_tokens,
        usd=c.usd or 0.0,
        has_usd=c.usd is not None,
        latency_ms=c.latency_ms,
        request_hash=c.request_hash,
        error=c.error,
        attempt=c.attempt,
        create_time=timestamp(c.created_at),
        response_text=str(c.response.get("text", "")) if with_response and c.response else "",
    )


def model_price_pb(p: ModelPrice) -> pb.ModelPrice:
    ref = pb.ModelRef(provider=p.model.provider, model_name=p.model.model)
    if p.price is None:
        return pb.ModelPrice(model=ref, priced=False)
    return pb.ModelPrice(
        model=ref,
        priced=True,
        input_usd_per_mtok=p.price.input_per_mtok,
        output_usd_per_mtok=p.price.output_per_mtok,
    )
