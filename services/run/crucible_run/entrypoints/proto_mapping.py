"""Proto ⇄ domain conversions for the run service (translation only; enum names come from the protos)."""

from __future__ import annotations

from dataclasses import asdict

from crucible.run.v1 import run_service_pb2 as pb
from crucible_common import jsonb
from crucible_common.enums import ProtoEnum, dotted, upper
from crucible_common.protobuf import struct, timestamp
from crucible_run.domain import preflight as rules
from crucible_run.domain.events import EVENT_DATA, RunEvent, RunEventType
from crucible_run.domain.lineage import LineageRole, LineageSpan, LinkedMessage, RunLineage
from crucible_run.domain.model import (
    BlockerCode,
    Candidate,
    CandidateDraft,
    CandidateLabel,
    CandidateOrigin,
    Evaluation,
    EvaluationStatus,
    LlmUsage,
    RankedCandidate,
    Run,
    RunCounts,
    RunMode,
    RunParameters,
    RunPhase,
    RunStatistics,
    RunStatus,
    Scenario,
    Score,
    Trigger,
    TriggerSource,
    WarningCode,
)

MODE = ProtoEnum(pb.RunMode, RunMode)
STATUS = ProtoEnum(pb.RunStatus, RunStatus, spelling=upper)
PHASE = ProtoEnum(pb.RunPhase, RunPhase)
TRIGGER_SOURCE = ProtoEnum(pb.TriggerSource, TriggerSource)
BLOCKER = ProtoEnum(pb.BlockerCode, BlockerCode)
WARNING = ProtoEnum(pb.WarningCode, WarningCode)
LABEL = ProtoEnum(pb.CandidateLabel, CandidateLabel)
ORIGIN = ProtoEnum(pb.CandidateOrigin, CandidateOrigin)
EVALUATION_STATUS = ProtoEnum(pb.EvaluationStatus, EvaluationStatus)
EVENT_TYPE = ProtoEnum(pb.RunEventType, RunEventType, spelling=dotted)
LINEAGE_ROLE = ProtoEnum(pb.LineageRole, LineageRole)


# ---------------------------------------------------------------- in


def parameters(p: pb.RunParameters) -> RunParameters:
    return RunParameters(
        num_candidates=p.num_candidates,
        num_scenarios=p.num_scenarios,
        seed_candidate_ids=tuple(p.seed_candidate_ids),
        budget_tokens=p.budget_tokens if p.HasField("budget_tokens") else None,
        budget_usd=p.budget_usd if p.HasField("budget_usd") else None,
        max_runtime_s=p.max_runtime_s if p.HasField("max_runtime_s") else None,
        seed_candidates=tuple(
            CandidateDraft(d.title, d.description, d.approach, tuple(d.assumptions)) for d in p.seed_candidates
        ),
    )


def phases(items: list[int]) -> tuple[RunPhase, ...]:
    found = [PHASE.required(value, f"phases[{i}]") for i, value in enumerate(items)]
    return tuple(found)


# ---------------------------------------------------------------- out


def parameters_pb(p: RunParameters) -> pb.RunParameters:
    message = pb.RunParameters(
        num_candidates=p.num_candidates,
        num_scenarios=p.num_scenarios,
        seed_candidate_ids=list(p.seed_candidate_ids),
        seed_candidates=[
            pb.CandidateDraft(
                title=d.title, description=d.description, approach=d.approach, assumptions=list(d.assumptions)
            )
            for d in p.seed_candidates
        ],
    )
    if p.budget_tokens is not None:
        message.budget_tokens = p.budget_tokens
    if p.budget_usd is not None:
        message.budget_usd = p.budget_usd
    if p.max_runtime_s is not None:
        message.max_runtime_s = p.max_runtime_s
    return message


INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def preflight_pb(result: rules.Preflight) -> pb.PreflightRunResponse:
    # Counts far past the limits (refused by a blocker, but still estimated) can imply more calls
    # and tokens than the message's integers hold: the estimate says "at least this much".
    estimate = pb.CostEstimate(
        tokens=min(result.estimate.tokens, INT64_MAX), calls=min(result.estimate.calls, INT32_MAX)
    )
    if result.estimate.usd is not None:
        estimate.usd = result.estimate.usd
    return pb.PreflightRunResponse(
        ready=result.ready,
        blockers=[pb.Blocker(code=BLOCKER.to_proto(b.code), message=b.message, field=b.field) for b in result.blockers],
        warnings=[pb.Warning(code=WARNING.to_proto(w.code), message=w.message) for w in result.warnings],
        normalized_config=pb.RunConfig(
            mode=MODE.to_proto(result.config.mode), parameters=parameters_pb(result.config.parameters)
        ),
        prerequisites=pb.Prerequisites(**asdict(result.prerequisites)),
        notes=list(result.notes),
        estimated_cost=estimate,
    )


def usage_pb(u: LlmUsage) -> pb.LlmUsage:
    return pb.LlmUsage(**asdict(u))


def counts_pb(c: RunCounts) -> pb.RunCounts:
    return pb.RunCounts(**asdict(c))


def run_pb(run: Run) -> pb.Run:
    message = pb.Run(
        id=run.id,
        project_id=run.project_id,
        mode=MODE.to_proto(run.mode),
        parameters=parameters_pb(run.parameters),
        status=STATUS.to_proto(run.status),
        phases=[PHASE.to_proto(p) for p in run.phases],
        trigger=trigger_pb(run.trigger),
        chat_session_id=run.chat_session_id,
        recommended_message_id=run.recommended_message_id,
        run_summary_message_id=run.run_summary_message_id,
        counts=counts_pb(run.counts),
        usage=usage_pb(run.usage),
        failure_reason=run.failure_reason,
        error_summary=run.error_summary,
        create_time=timestamp(run.created_at),
        duration_seconds=run.duration_seconds or 0.0,
        trace_id=run.trace_id,
        replay_of_run_id=run.replay_of_run_id,
        snapshot_test_id=run.snapshot_test_id,
    )
    if run.recommended_config_snapshot is not None:
        message.recommended_config_snapshot.CopyFrom(struct(run.recommended_config_snapshot))
    if run.started_at is not None:
        message.start_time.CopyFrom(timestamp(run.started_at))
    if run.ended_at is not None:
        message.end_time.CopyFrom(timestamp(run.ended_at))
    return message


def trigger_pb(t: Trigger) -> pb.Trigger:
    return pb.Trigger(
        id=t.id, source=TRIGGER_SOURCE.to_proto(t.source), metadata=struct(t.metadata), time=timestamp(t.at)
    )


def candidate_pb(x: Candidate) -> pb.Candidate:
    return pb.Candidate(
        id=x.id,
        run_id=x.run_id,
        title=x.title,
        description=x.description,
        approach=x.approach,
        assumptions=list(x.assumptions),
        origin=ORIGIN.to_proto(x.origin),
        source_candidate_id=x.source_candidate_id,
        create_time=timestamp(x.created_at),
    )


def scenario_pb(s: Scenario) -> pb.Scenario:
    return pb.Scenario(
        id=s.id,
        run_id=s.run_id,
        title=s.title,
        description=s.description,
        conditions=list(s.conditions),
        severity=s.severity,
        create_time=timestamp(s.created_at),
    )


def _score(s: Score | None) -> pb.Score | None:
    return pb.Score(overall=s.overall, components=s.components) if s is not None else None


def evaluation_pb(e: Evaluation) -> pb.Evaluation:
    return pb.Evaluation(
        id=e.id,
        run_id=e.run_id,
        candidate_id=e.candidate_id,
        scenario_id=e.scenario_id,
        status=EVALUATION_STATUS.to_proto(e.status),
        p=_score(e.p),
        r=_score(e.r),
        constraint_satisfaction=[pb.ConstraintResult(**asdict(c)) for c in e.constraint_satisfaction],
        explanation=e.explanation,
        failure_reason=e.failure_reason,
        raw_answer=e.raw_answer,
        llm_call_id=e.llm_call_id,
        create_time=timestamp(e.created_at),
    )


def ranked_pb(r: RankedCandidate) -> pb.RankedCandidate:
    message = pb.RankedCandidate(
        candidate_id=r.candidate_id,
        title=r.title,
        rank=r.rank,
        label=LABEL.to_proto(r.label),
        rejected=r.rejected,
        violated_constraints=[pb.ConstraintViolation(**asdict(v)) for v in r.violated_constraints],
        evaluations=r.evaluations,
        failed_evaluations=r.failed_evaluations,
    )
    if r.i is not None:
        message.i = r.i
    if r.p is not None:
        message.p = r.p
    if r.r is not None:
        message.r = r.r
    return message


def statistics_pb(s: RunStatistics) -> pb.RunStatistics:
    message = pb.RunStatistics(
        run_id=s.run_id,
        status=STATUS.to_proto(s.status),
        counts=counts_pb(s.counts),
        coverage=s.coverage,
        missing_pairs=[pb.CandidateScenarioPair(candidate_id=c, scenario_id=x) for c, x in s.missing_pairs],
        duration_seconds=s.duration_seconds or 0.0,
        usage=usage_pb(s.usage),
        hard_constraint_violations=s.hard_constraint_violations,
        error_summary=s.error_summary,
        failure_reason=s.failure_reason,
    )
    top = s.top_candidate
    if top is not None and top.i is not None and top.p is not None and top.r is not None:
        message.top_candidate.CopyFrom(
            pb.TopCandidate(candidate_id=top.candidate_id, title=top.title, i=top.i, p=top.p, r=top.r)
        )
    return message


def event_pb(e: RunEvent) -> pb.RunEvent:
    return pb.RunEvent(
        sequence=e.sequence,
        run_id=e.run_id,
        type=EVENT_TYPE.to_proto(e.type),
        data=struct(jsonb.dump(EVENT_DATA[e.type], e.data)),
        time=timestamp(e.at),
    )


def _message_pb(m: LinkedMessage) -> pb.LineageMessage:
    message = pb.LineageMessage(message_id=m.id, found=m.message is not None)
    if m.message is not None:
        message.chat_session_id = m.message.chat_session_id
        message.label = m.message.label
        if m.message.created_at is not None:
            message.create_time.CopyFrom(timestamp(m.message.created_at))
    return message


def _lineage_span_pb(s: LineageSpan) -> pb.LineageSpan:
    message = pb.LineageSpan(
        role=LINEAGE_ROLE.to_proto(s.role), trace_id=s.ref.trace_id, span_id=s.ref.span_id, found=s.span is not None
    )
    if s.span is not None:
        message.name = s.span.name
        message.service = s.span.service
        message.parent_span_id = s.span.parent_span_id
        message.attributes.CopyFrom(struct(s.span.attributes))
        message.links.extend(
            pb.SpanLink(trace_id=x.target.trace_id, span_id=x.target.span_id, attributes=struct(x.attributes))
            for x in s.span.links
        )
        if s.span.start is not None:
            message.start_time.CopyFrom(timestamp(s.span.start))
        if s.span.end is not None:
            message.end_time.CopyFrom(timestamp(s.span.end))
    return message


def lineage_pb(x: RunLineage) -> pb.RunLineage:
    message = pb.RunLineage(
        run_id=x.run_id,
        project_id=x.project_id,
        trigger=trigger_pb(x.trigger),
        trace_id=x.trace_id,
        spans=[_lineage_span_pb(s) for s in x.spans],
        spans_stored_locally=x.spans_stored_locally,
        spans_note=x.spans_note,
        trace_span_count=x.trace_span_count,
        trace_services=list(x.trace_services),
    )
    if x.recommendation is not None:
        message.recommendation.CopyFrom(_message_pb(x.recommendation))
    if x.recommended_config is not None:
        message.recommended_config.CopyFrom(struct(x.recommended_config))
    if x.summary is not None:
        message.summary.CopyFrom(_message_pb(x.summary))
    return message
