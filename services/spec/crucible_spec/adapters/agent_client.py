"""The spec service's client of the agent service: the planning interview over gRPC.

``dual_subagent`` is one agent run (an OpenAI and an Anthropic subagent, then a judge); ``single``
is one structured completion. Both ask for the ``planning_questions`` structured answer, which the
agent service validates. A gRPC failure of the agent service is translated here, once, into the
spec context's ``PlanningInterviewFailed`` / ``PlanningInterviewUnavailable``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc

from crucible.agent.v1 import agent_service_pb2 as pb
from crucible_common.errors import CrucibleError, details_of
from crucible_common.protobuf import struct, struct_to_dict
from crucible_spec.domain.errors import PlanningInterviewFailed, PlanningInterviewUnavailable
from crucible_spec.domain.model import InterviewMode, JsonObject, PlanningQuestion
from crucible_spec.service_layer.planning import (
    CandidateRecord,
    InterviewError,
    InterviewMetadata,
    InterviewRequest,
    InterviewResult,
    JudgeRecord,
    PlanningInterviewer,
    SelectedCandidate,
)

if TYPE_CHECKING:  # the async stub type exists only in the generated .pyi
    from crucible.agent.v1.agent_service_pb2_grpc import AgentServiceAsyncStub

PURPOSE = "planning_interview"
SCHEMA_NAME = "planning_questions"
SYSTEM_PROMPT = (
    "You prepare a software task for implementation by asking the person who wrote it clarifying "
    "questions before any code is written. Ask at most {max_questions} questions, the ones whose answers "
    "most change what should be built or how it will be verified (expected output, inputs and edge cases, "
    "success criteria, environment, scope). Give each question a one-sentence rationale saying why its "
    "answer matters. Do not answer the questions yourself and do not write code."
)
JUDGE_INSTRUCTIONS = (
    "Each candidate is a set of clarifying questions about the task. Pick the set that best clarifies the "
    "task: questions that are specific to it, do not overlap, and whose answers would most change what gets "
    "built or how it is tested. Prefer fewer sharp questions over many vague ones."
)
# Worth asking again later: the agent service or the providers behind it are down or saturated.
TRANSIENT_CODES = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
}
TRANSIENT_REASONS = {"PROVIDER_UNAVAILABLE", "PROVIDER_TIMEOUT", "PROVIDER_RATE_LIMITED"}


def planning_schema(max_questions: int) -> JsonObject:
    """The structured answer every model must give: 1 to ``max_questions`` questions with a rationale."""
    return {
        "type": "object",
        "properties": {
            "questions": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_questions,
                "items": {
                    "type": "object",
                    "properties": {
                        "question": {"type": "string", "minLength": 1},
                        "rationale": {"type": "string", "minLength": 1},
                    },
                    "required": ["question", "rationale"],
                },
            }
        },
        "required": ["questions"],
    }


@dataclass(frozen=True)
class PlanningModels:
    openai_model: str
    anthropic_model: str
    judge_provider: str
    judge_model: str


class AgentPlanningInterviewer(PlanningInterviewer):
    def __init__(self, stub: AgentServiceAsyncStub, models: PlanningModels, *, timeout: float) -> None:
        self._stub = stub
        self._models = models
        self._timeout = timeout

    async def interview(self, request: InterviewRequest) -> InterviewResult:
        if request.mode is InterviewMode.DUAL_SUBAGENT:
            return await self._dual(request)
        if request.mode is InterviewMode.SINGLE:
            return await self._single(request)
        raise ValueError(f"interview mode {request.mode.value} asks no model")

    async def _dual(self, request: InterviewRequest) -> InterviewResult:
        system = SYSTEM_PROMPT.format(max_questions=request.max_questions)
        m = self._models
        call = pb.ExecuteAgentRunRequest(
            message=_user_message(request),
            subagents=[
                pb.SubagentConfig(name="openai", provider="openai", model_name=m.openai_model, system_prompt=system),
                pb.SubagentConfig(
                    name="anthropic", provider="anthropic", model_name=m.anthropic_model, system_prompt=system
                ),
            ],
            judge=pb.JudgeConfig(provider=m.judge_provider, model_name=m.judge_model, instructions=JUDGE_INSTRUCTIONS),
            metadata=struct({"purpose": PURPOSE, "spec_id": request.spec_id}),
            correlation=pb.Correlation(purpose=PURPOSE),
            json_schema=struct(planning_schema(request.max_questions)),
            schema_name=SCHEMA_NAME,
        )
        try:
            response = await self._stub.ExecuteAgentRun(call, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, request.mode) from exc
        result = response.result
        run = result.run
        errors = tuple(InterviewError(e.name, e.provider, e.model_name, e.reason, e.message) for e in result.errors)
        if run.status != pb.AGENT_RUN_STATUS_COMPLETED or not result.HasField("decision"):
            summary = run.failure_reason or "; ".join(f"{e.name}: {e.reason}" for e in errors) or "no decision"
            metadata = {"mode": request.mode.value, "agent_run_id": run.id}
            if any(e.reason in TRANSIENT_REASONS for e in errors):
                raise PlanningInterviewUnavailable(f"no model answered ({summary})", metadata=metadata)
            raise PlanningInterviewFailed(f"no model answered ({summary})", metadata=metadata)
        by_id = {
            c.id: CandidateRecord(
                c.name, c.provider, c.model_name, _questions(c.structured, c.name), _metrics(c.metrics)
            )
            for c in result.candidates
        }
        decision = result.decision
        chosen = by_id.get(decision.candidate_id)
        if chosen is None:
            raise PlanningInterviewFailed(
                f"the decision names candidate {decision.candidate_id!r}, which the run does not have",
                metadata={"mode": request.mode.value, "agent_run_id": run.id},
            )
        return InterviewResult(
            chosen.questions,
            InterviewMetadata(
                mode=request.mode,
                agent_run_id=run.id,
                candidates=tuple(by_id.values()),
                judge=JudgeRecord(
                    provider=run.judge.provider,
                    model_name=run.judge.model_name,
                    rationale=decision.rationale,
                    fallback=decision.fallback,
                    fallback_reason=decision.fallback_reason,
                ),
                selected_candidate=SelectedCandidate(chosen.name, chosen.provider, chosen.model_name),
                errors=errors,
            ),
        )

    async def _single(self, request: InterviewRequest) -> InterviewResult:
        model = self._models.openai_model
        call = pb.CompleteRequest(
            model=pb.ModelRef(provider="openai", model_name=model),
            messages=[
                pb.Message(role=pb.ROLE_SYSTEM, content=SYSTEM_PROMPT.format(max_questions=request.max_questions)),
                pb.Message(role=pb.ROLE_USER, content=_user_message(request)),
            ],
            json_schema=struct(planning_schema(request.max_questions)),
            schema_name=SCHEMA_NAME,
            correlation=pb.Correlation(purpose=PURPOSE),
        )
        try:
            response = await self._stub.Complete(call, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, request.mode) from exc
        usage = response.usage
        candidate = CandidateRecord(
            name="openai",
            provider="openai",
            model_name=model,
            questions=_questions(response.structured if response.HasField("structured") else None, "openai"),
            metrics={
                "duration_ms": response.latency_ms,
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                # Unknown, not zero, when the model has no price.
                "usd": None if usage.unpriced_calls else usage.usd,
                "attempts": usage.calls,
                "response_model": response.response_model,
            },
        )
        return InterviewResult(
            candidate.questions,
            InterviewMetadata(
                mode=request.mode,
                llm_call_id=response.llm_call_id,
                candidates=(candidate,),
                selected_candidate=SelectedCandidate(candidate.name, candidate.provider, candidate.model_name),
            ),
        )


def _metrics(m: pb.CandidateMetrics) -> JsonObject:
    return {
        "duration_ms": m.duration_ms,
        "input_tokens": m.input_tokens,
        "output_tokens": m.output_tokens,
        # Unknown, not zero, when the model has no price.
        "usd": m.usd if m.HasField("usd") else None,
        "attempts": m.attempts,
        "response_model": m.response_model,
    }


def _user_message(request: InterviewRequest) -> str:
    # The directive line repeats the limit where models (and the offline emulator) look for it.
    return f"{request.task}\n\nmax_questions: {request.max_questions}"


def _questions(structured: Any, candidate: str) -> tuple[PlanningQuestion, ...]:
    """The questions of a validated structured answer; anything else is a loud failure."""
    value = struct_to_dict(structured) if structured is not None else None
    items = value.get("questions") if isinstance(value, dict) else None
    if not isinstance(items, list) or not all(_is_question(i) for i in items):
        raise PlanningInterviewFailed(f"{candidate} did not answer with a list of questions")
    return tuple(PlanningQuestion(i["question"], i["rationale"]) for i in items)


def _is_question(item: object) -> bool:
    return isinstance(item, dict) and isinstance(item.get("question"), str) and isinstance(item.get("rationale"), str)


def _translate(exc: grpc.aio.AioRpcError, mode: InterviewMode) -> CrucibleError:
    details = details_of(exc)
    metadata = {"mode": mode.value, "agent_code": details.code.name}
    if details.reason:
        metadata["agent_reason"] = details.reason
    message = f"the agent service answered {details.code.name}"
    message += f" ({details.reason}): " if details.reason else ": "
    message += details.message or "no details"
    if details.code in TRANSIENT_CODES:
        return PlanningInterviewUnavailable(message, metadata=metadata)
    return PlanningInterviewFailed(message, metadata=metadata)
