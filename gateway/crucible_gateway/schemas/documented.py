"""Shapes the API carries where FastAPI cannot see them, added to the OpenAPI document's components.

Problem bodies (written by ``errors``), the chat messages' ``metadata`` (written by the spec and run
services), the planning interview's record, and the WebSocket frames have no route whose signature
names them, so without this the document would call them free objects and every client would
write their types by hand. ``document(app)`` adds these models to ``components.schemas``; clients
(the web UI) generate their types from there. The gateway passes these payloads through as the
services wrote them: the models document them, they do not validate at run time (a free-form
metadata field a client wrote must never make a message unreadable). The gateway's unit tests
check each model against what the services and the gateway actually produce.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, RootModel
from pydantic.json_schema import models_json_schema

from crucible_gateway.schemas.chat import ChatMessage
from crucible_gateway.schemas.runs import ConstraintViolationRead
from crucible_gateway.schemas.snapshots import ReplayProgressRead, ReportRead, SnapshotTestResultRead


class _Shape(BaseModel):
    # Strict, so the tests that validate real payloads catch a field the document does not name.
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- errors


class FieldViolation(_Shape):
    field: str
    description: str


class PreconditionViolation(_Shape):
    type: str
    subject: str
    description: str


class Problem(_Shape):
    """Every error the API answers with (RFC 9457 ``application/problem+json``), and the WebSockets' error frames."""

    type: str
    title: str
    status: int
    detail: str = Field(description="What went wrong, in words: show it to the person")
    reason: str = Field(description="The service's ErrorInfo reason (NOT_FOUND, VALIDATION_FAILED, …)")
    field_violations: list[FieldViolation] = Field(default_factory=list)
    precondition_violations: list[PreconditionViolation] = Field(default_factory=list)
    grpc_code: str | None = None
    domain: str | None = None
    metadata: dict[str, str] | None = None


# ---------------------------------------------------------------- chat message metadata


class RecommendedParameters(_Shape):
    num_candidates: int = 0
    num_scenarios: int = 0
    seed_candidate_ids: list[str] = Field(default_factory=list)
    budget_tokens: int | None = None
    budget_usd: float | None = None
    max_runtime_s: int | None = None


class RecommendedPrerequisites(_Shape):
    """Empty when the run service could not be asked (status ``info``)."""

    problem_spec: bool | None = None
    world_model: bool | None = None
    seed_candidates: bool | None = None


class RecommendedCost(_Shape):
    tokens: int | None = Field(description="null when unknown")
    usd: float | None = Field(description="null when unknown or unpriced: never read it as $0")


class RecommendedBlocker(_Shape):
    code: str
    message: str = Field(description="The run service's words")
    field: str


class TraceContextRead(_Shape):
    trace_id: str
    span_id: str


class RecommendedRunConfig(_Shape):
    """``metadata.recommended_run_config`` of an Architect reply (seed 001): preflight's verdict, not the model's."""

    version: int
    recommendation_id: str
    project_id: str
    chat_session_id: str
    source_message_id: str
    generated_at: datetime
    expires_at: datetime
    status: Literal["ready", "blocked", "info"]
    mode: Literal["full_search", "eval_only", "seeded"] | None
    parameters: RecommendedParameters
    prerequisites: RecommendedPrerequisites
    estimated_cost: RecommendedCost
    rationale: str
    notes: list[str]
    blockers: list[str] = Field(description="Blocker codes; blocker_details has them in words")
    blocker_details: list[RecommendedBlocker]
    warnings: list[str]
    trace: TraceContextRead | None


class RunSummaryCounts(_Shape):
    candidates: int
    scenarios: int
    evaluations: int


class RunSummaryCandidate(_Shape):
    candidate_id: str
    label: str
    I: float | None  # noqa: E741 - seed 001 names the scores I, P and R
    P: float | None
    R: float | None
    notes: str


class RunSummaryLinks(_Shape):
    results_view: str = Field(description="The UI's path of the run's results, /runs/{id}")


class RunSummary(_Shape):
    """``metadata.run_summary`` of the message a run posts to the chat when it ends."""

    run_id: str
    project_id: str
    mode: str
    status: str
    started_at: datetime
    completed_at: datetime
    duration_seconds: float
    counts: RunSummaryCounts
    top_candidates: list[RunSummaryCandidate] = Field(description="At most three, best first, none rejected")
    links: RunSummaryLinks
    summary_label: str


class RunRejection(_Shape):
    """A candidate the run rejected (it broke a hard constraint), beside the seed's ``run_summary``."""

    candidate_id: str
    title: str
    evaluations: int = Field(description="How many of its scenarios were evaluated")
    # As the run's results name them (GET /api/runs/{id}/results).
    violated_constraints: list[ConstraintViolationRead]


class ChatMessageMetadata(BaseModel):
    """What a ChatMessage's ``metadata`` may hold; any other key is the writer's own."""

    model_config = ConfigDict(extra="allow")

    recommended_run_config: RecommendedRunConfig | None = None
    run_summary: RunSummary | None = None
    run_rejections: list[RunRejection] | None = Field(
        default=None,
        description="With a run_summary: the run's rejected candidates and the hard constraints they broke",
    )
    architect: dict[str, Any] | None = Field(default=None, description="The turn's intent and what was applied")


# ---------------------------------------------------------------- the planning interview


class InterviewQuestion(_Shape):
    question: str
    rationale: str


class InterviewCandidate(_Shape):
    name: str
    provider: str
    model_name: str
    questions: list[InterviewQuestion]
    metrics: dict[str, Any]


class InterviewJudge(_Shape):
    provider: str
    model_name: str
    rationale: str
    fallback: bool = Field(description="The judge did not decide; fallback_reason says why")
    fallback_reason: str


class InterviewSelection(_Shape):
    name: str
    provider: str
    model_name: str


class InterviewFailure(_Shape):
    name: str
    provider: str
    model_name: str
    reason: str
    message: str


class InterviewRecord(_Shape):
    """``artifacts.planning.metadata`` of a spec: each provider's questions and the judge's choice."""

    mode: str
    agent_run_id: str | None
    llm_call_id: str | None
    candidates: list[InterviewCandidate]
    judge: InterviewJudge | None
    selected_candidate: InterviewSelection | None
    errors: list[InterviewFailure]


# ---------------------------------------------------------------- WebSocket frames


class ErrorFrame(_Shape):
    """Any stream that fails, or a frame the gateway refused.

    A chat frame refused leaves the socket open. Otherwise the error frame is the socket's last: the
    close that follows has code 4000 + ``problem.status`` (4400 a malformed id or query, 4404 an id
    that names nothing, 4503 a service out of reach, ...) and the problem's detail as its reason.
    """

    type: Literal["error"]
    problem: Problem


class RunEventFrame(_Shape):
    """A message of /api/ws/runs/{id}: a run event, its type dotted ("evaluation.completed")."""

    sequence: int
    run_id: str
    type: str
    data: dict[str, Any]
    time: str


class SprintEventFrame(_Shape):
    """A message of /api/ws/sprints/{id}: a sprint event, its type dotted ("phase.started")."""

    sequence: int
    sprint_id: str
    type: str
    data: dict[str, Any]
    time: str


class ChatMessageFrame(_Shape):
    type: Literal["user_message", "agent_message"]
    message: ChatMessage


class ReplyDeltaFrame(_Shape):
    type: Literal["reply.delta"]
    text: str
    restart: bool = Field(description="The model was retried: drop the reply so far")


class ChatFrame(RootModel[ChatMessageFrame | ReplyDeltaFrame | ErrorFrame]):
    """A message of /api/ws/chat-sessions/{id}: user_message first, the reply's deltas, agent_message last."""


class SuiteStartedFrame(_Shape):
    type: Literal["started"]
    report_id: str
    snapshot_ids: list[str]
    repetitions: int = Field(description="Each snapshot's replays: the suite makes snapshots × repetitions")


class SuiteReplayFrame(_Shape):
    type: Literal["replay"]
    replay: ReplayProgressRead


class SuiteResultFrame(_Shape):
    type: Literal["result"]
    result: SnapshotTestResultRead


class SuiteReportFrame(_Shape):
    type: Literal["report"]
    report: ReportRead


class SuiteFrame(RootModel[SuiteStartedFrame | SuiteReplayFrame | SuiteResultFrame | SuiteReportFrame | ErrorFrame]):
    """A message of the suite WebSockets: started, each replay's moves (its run once created, its
    end), each snapshot's result as it ends, the report last."""


DOCUMENTED: tuple[type[BaseModel], ...] = (
    Problem,
    ChatMessageMetadata,
    InterviewRecord,
    RunEventFrame,
    SprintEventFrame,
    ChatFrame,
    SuiteFrame,
)


def component_schemas() -> dict[str, Any]:
    """The documented models and every model they use, as OpenAPI component schemas."""
    _, top = models_json_schema(
        [(model, "serialization") for model in DOCUMENTED], ref_template="#/components/schemas/{model}"
    )
    defs: dict[str, Any] = top.get("$defs", {})
    return defs


def document(app: FastAPI) -> None:
    """Add the documented models to the app's OpenAPI document (generated once, on first request)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, definition in component_schemas().items():
            known = components.get(name)
            if known is None:
                components[name] = definition
            elif set(known.get("properties", {})) != set(definition.get("properties", {})):
                # A model the routes use too (ChatMessage, ReportRead) keeps the routes' rendering,
                # which differs only in details (FastAPI's request-body mode); another model that
                # merely shares its name would be a silent mix-up.
                raise RuntimeError(f"the documented schema {name} clashes with the routes' schema of that name")
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
