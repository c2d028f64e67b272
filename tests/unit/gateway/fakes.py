"""Stand-ins for the gRPC stubs the gateway calls, and the proto messages they answer with.

Each fake method is a plain async method (``WatchSprint`` a plain method returning an async
iterator, as a server-streaming call is) that records the request and its deadline, then answers
with a proto message, or fails as a service does: an ``AioRpcError`` whose trailing metadata
carries the ``google.rpc.Status`` with its details (``crucible_common.errors.to_status``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar, cast

import grpc
from google.protobuf.message import Message
from grpc_status import rpc_status

from crucible.agent.v1 import agent_service_pb2 as agent_pb
from crucible.agent.v1 import sprint_service_pb2 as sprint_pb
from crucible.common.v1 import actor_pb2
from crucible.run.v1 import run_service_pb2 as run_pb
from crucible.snapshot.v1 import snapshot_service_pb2 as snap_pb
from crucible.spec.v1 import spec_service_pb2 as spec_pb
from crucible_common.errors import CrucibleError, FailedPrecondition, RelayedError, StatusDetails, to_status
from crucible_common.protobuf import struct, timestamp
from crucible_gateway.clients import ServiceClients

if TYPE_CHECKING:  # the async stub types exist only in the generated .pyi
    from crucible.agent.v1.agent_service_pb2_grpc import AgentServiceAsyncStub
    from crucible.agent.v1.sprint_service_pb2_grpc import SprintServiceAsyncStub
    from crucible.run.v1.run_service_pb2_grpc import RunServiceAsyncStub
    from crucible.snapshot.v1.snapshot_service_pb2_grpc import SnapshotServiceAsyncStub
    from crucible.spec.v1.spec_service_pb2_grpc import SpecServiceAsyncStub

R = TypeVar("R", bound=Message)

PROJECT_ID = "0b0d6a8e-8d55-4f8e-9d43-3f4c4b8f2a01"
SESSION_ID = "1c1e7b9f-9e66-4a9f-8e54-4a5d5c9a3b12"
SPEC_ID = "2d2f8ca0-af77-4ba0-9f65-5b6e6dab4c23"
SPRINT_ID = "3e3a9db1-b088-4cb1-a076-6c7f7ebc5d34"
AGENT_RUN_ID = "4f4bae02-c199-4dc2-b187-7d808fcd6e45"
REPLAYED_RUN_ID = "5b0e1c39-5a3e-4d0e-9f6e-2d7c3f1a0b42"
RUN_ID = "5a5cbf13-d2aa-4ed3-8298-8e919ade7f56"
CANDIDATE_ID = "6b6dc024-e3bb-4fe4-93a9-9fa2abef8067"
SCENARIO_ID = "7c7ed135-f4cc-4af5-a4ba-a0b3bcf09178"
EVALUATION_ID = "8d8fe246-05dd-4b06-b5cb-b1c4cd01a289"
MESSAGE_ID = "9e90f357-16ee-4c17-86dc-c2d5de12b39a"
TRIGGER_ID = "cli-af01a468-27ff-4d28-97ed-d3e6ef23c4ab"
SNAPSHOT_ID = "aa01b2c3-d4e5-4f60-8a7b-8c9d0e1f2a3b"
OTHER_SNAPSHOT_ID = "bb12c3d4-e5f6-4071-9b8c-9d0e1f2a3b4c"
REPORT_ID = "cc23d4e5-f607-4182-8c9d-0e1f2a3b4c5d"
REPLAY_RUN_ID = "dd34e5f6-0718-4293-9d0e-1f2a3b4c5d6e"
CREATED = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
UPDATED = datetime(2025, 1, 2, 3, 5, 6, tzinfo=UTC)


def rpc_error(error: CrucibleError, domain: str = "spec.crucible") -> grpc.aio.AioRpcError:
    """The error a service's interceptor sends for ``error``: code, message and rich status."""
    status = rpc_status.to_status(to_status(error, domain))
    return grpc.aio.AioRpcError(
        status.code, grpc.aio.Metadata(), grpc.aio.Metadata(*status.trailing_metadata), status.details
    )


def status_error(details: StatusDetails, domain: str = "spec.crucible") -> grpc.aio.AioRpcError:
    """An error with any canonical code, as a service relays it."""
    return rpc_error(RelayedError(details), domain)


def plain_error(code: grpc.StatusCode, message: str) -> grpc.aio.AioRpcError:
    """A status without details, as gRPC itself raises it (a deadline, an unreachable service)."""
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), message)


@dataclass(frozen=True)
class Call:
    method: str
    request: Message
    timeout: float | None


class FakeStub:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.failures: dict[str, grpc.aio.AioRpcError] = {}
        self.failing_times: dict[str, int] = {}
        self.responses: dict[str, Message] = {}

    def fail(self, method: str, error: grpc.aio.AioRpcError, times: int | None = None) -> None:
        """Every call of ``method`` fails with ``error``; or only the next ``times`` ones."""
        self.failures[method] = error
        if times is None:
            self.failing_times.pop(method, None)
        else:
            self.failing_times[method] = times

    def answer(self, method: str, response: Message) -> None:
        self.responses[method] = response

    def only_call(self) -> Call:
        assert len(self.calls) == 1, self.calls
        return self.calls[0]

    def _answer(self, method: str, request: Message, timeout: float | None, default: R) -> R:
        self.calls.append(Call(method, request, timeout))
        if method in self.failures:
            error = self.failures[method]
            if method in self.failing_times:
                self.failing_times[method] -= 1
                if self.failing_times[method] == 0:
                    del self.failures[method], self.failing_times[method]
            raise error
        return cast(R, self.responses.get(method, default))


class QuietFeed:
    """A change feed where nothing changes: ``ready`` first if asked, then silence."""

    def __init__(self, ready: bool) -> None:
        self.ready = ready

    async def read(self) -> spec_pb.WatchProjectChangesResponse:
        if self.ready:
            self.ready = False
            return spec_pb.WatchProjectChangesResponse(ready=True)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    def cancel(self) -> bool:
        return True


# ---------------------------------------------------------------- messages the services answer with


def project(title: str = "Grid") -> spec_pb.Project:
    return spec_pb.Project(
        id=PROJECT_ID,
        title=title,
        description="power grid study",
        create_time=timestamp(CREATED),
        update_time=timestamp(UPDATED),
    )


def chat_session() -> spec_pb.ChatSession:
    return spec_pb.ChatSession(
        id=SESSION_ID,
        project_id=PROJECT_ID,
        title="setup",
        mode=spec_pb.CHAT_SESSION_MODE_ANALYSIS,
        create_time=timestamp(CREATED),
        update_time=timestamp(UPDATED),
    )


def chat_message(role: spec_pb.MessageRole.ValueType = spec_pb.MESSAGE_ROLE_AGENT) -> spec_pb.ChatMessage:
    return spec_pb.ChatMessage(
        id="m1",
        chat_session_id=SESSION_ID,
        sequence=3,
        role=role,
        content="hello",
        metadata=struct({"n": 2}),
        create_time=timestamp(CREATED),
    )


def turn_messages(
    reply: str = "Hello", metadata: dict[str, object] | None = None
) -> tuple[spec_pb.ChatMessage, spec_pb.ChatMessage]:
    """A turn's two stored messages: the user's, then the Architect's ``reply`` with its metadata."""
    user = spec_pb.ChatMessage(
        id=MESSAGE_ID,
        chat_session_id=SESSION_ID,
        sequence=4,
        role=spec_pb.MESSAGE_ROLE_USER,
        content="Run it",
        create_time=timestamp(CREATED),
    )
    agent = spec_pb.ChatMessage(
        id="a5",
        chat_session_id=SESSION_ID,
        sequence=5,
        role=spec_pb.MESSAGE_ROLE_AGENT,
        content=reply,
        metadata=struct(metadata if metadata is not None else {"architect": {"intent": "question"}}),
        create_time=timestamp(UPDATED),
    )
    return user, agent


def turn_events(*deltas: str | None, reply: str = "Hello") -> list[spec_pb.StreamChatTurnResponse]:
    """A streamed turn: the user's message, a delta per text (None: a restart), the agent's message."""
    user, agent = turn_messages(reply)
    return [
        spec_pb.StreamChatTurnResponse(user_message=user),
        *(
            spec_pb.StreamChatTurnResponse(
                reply_delta=spec_pb.ReplyDelta(restart=True) if d is None else spec_pb.ReplyDelta(text=d)
            )
            for d in deltas
        ),
        spec_pb.StreamChatTurnResponse(agent_message=agent),
    ]


def problem_spec() -> spec_pb.ProblemSpec:
    return spec_pb.ProblemSpec(
        project_id=PROJECT_ID,
        constraints=[spec_pb.Constraint(name="safety", description="no injuries", weight=100)],
        goals=[spec_pb.Goal(description="double output")],
        resolution=spec_pb.RESOLUTION_COARSE,
        mode=spec_pb.RUN_MODE_EVAL_ONLY,
        version=2,
        create_time=timestamp(CREATED),
        update_time=timestamp(UPDATED),
    )


def world_model() -> spec_pb.WorldModel:
    return spec_pb.WorldModel(
        project_id=PROJECT_ID,
        model_data=struct({"actors": ["crew"], "resources": []}),
        version=1,
        create_time=timestamp(CREATED),
        update_time=timestamp(UPDATED),
    )


def provenance_entry(kind: actor_pb2.ActorKind.ValueType = actor_pb2.ACTOR_KIND_ARCHITECT) -> spec_pb.ProvenanceEntry:
    return spec_pb.ProvenanceEntry(
        id="p1",
        version=2,
        actor=actor_pb2.Actor(kind=kind, id="architect-1"),
        action="updated",
        changed_fields=["mode"],
        reason="faster",
        changes=struct({"mode": "seeded"}),
        create_time=timestamp(CREATED),
    )


def spec(planning: spec_pb.PlanningStatus.ValueType = spec_pb.PLANNING_STATUS_NEEDS_ANSWERS) -> spec_pb.Spec:
    return spec_pb.Spec(
        id=SPEC_ID,
        status=spec_pb.SPEC_STATUS_DRAFT,
        task="Print hello",
        title="Hello",
        planning=spec_pb.PlanningInterview(
            status=planning,
            questions=[spec_pb.PlanningQuestion(question="Which language?", rationale="it matters")],
            answers=[spec_pb.PlanningAnswer(question="Which language?", answer="Python")],
            metadata=struct({"mode": "stub"}),
        ),
        create_time=timestamp(CREATED),
        update_time=timestamp(UPDATED),
    )


def sprint() -> sprint_pb.Sprint:
    return sprint_pb.Sprint(
        id=SPRINT_ID,
        spec_id=SPEC_ID,
        status=sprint_pb.SPRINT_STATUS_ACTIVE,
        name="First",
        goal="hello",
        current_phase=sprint_pb.SPRINT_PHASE_CODING,
        trigger=sprint_pb.Trigger(id="btn-1", source="ui", time=timestamp(CREATED)),
        workspace_ref="ws-1",
        phases=[
            sprint_pb.PhaseAttempt(
                phase=sprint_pb.SPRINT_PHASE_DISCOVERY,
                attempt=1,
                status=sprint_pb.PHASE_ATTEMPT_STATUS_COMPLETED,
                agent_run_id=AGENT_RUN_ID,
                summary="planned",
                start_time=timestamp(CREATED),
                end_time=timestamp(UPDATED),
            ),
            sprint_pb.PhaseAttempt(
                phase=sprint_pb.SPRINT_PHASE_CODING,
                attempt=1,
                status=sprint_pb.PHASE_ATTEMPT_STATUS_RUNNING,
                start_time=timestamp(UPDATED),
            ),
        ],
        create_time=timestamp(CREATED),
        update_time=timestamp(UPDATED),
    )


def sprint_event(sequence: int, kind: sprint_pb.SprintEventType.ValueType) -> sprint_pb.WatchSprintResponse:
    return sprint_pb.WatchSprintResponse(
        event=sprint_pb.SprintEvent(
            sequence=sequence,
            sprint_id=SPRINT_ID,
            type=kind,
            data=struct({"phase": "coding", "attempt": 1}),
            time=timestamp(CREATED),
        )
    )


def agent_run() -> agent_pb.AgentRun:
    return agent_pb.AgentRun(
        id=AGENT_RUN_ID,
        status=agent_pb.AGENT_RUN_STATUS_COMPLETED,
        message="write hello.py",
        subagents=[agent_pb.SubagentConfig(name="openai", provider="openai", model_name="gpt-x")],
        judge=agent_pb.JudgeConfig(provider="anthropic", model_name="claude-x", instructions="pick"),
        correlation=agent_pb.Correlation(project_id=PROJECT_ID, purpose="test", agent_run_id=AGENT_RUN_ID),
        metadata=struct({"k": "v"}),
        create_time=timestamp(CREATED),
        update_time=timestamp(UPDATED),
    )


def agent_run_result(*, priced: bool = True) -> agent_pb.AgentRunResult:
    metrics = agent_pb.CandidateMetrics(
        duration_ms=1200, input_tokens=10, output_tokens=20, attempts=2, response_model="gpt-x-2025"
    )
    if priced:
        metrics.usd = 0.0015
    return agent_pb.AgentRunResult(
        run=agent_run(),
        candidates=[
            agent_pb.Candidate(
                id="c1",
                name="openai",
                provider="openai",
                model_name="gpt-x",
                output="print('hello')",
                metrics=metrics,
                llm_call_id="call-1",
            )
        ],
        decision=agent_pb.Decision(
            candidate_id="c1", candidate_name="openai", provider="openai", model_name="gpt-x", rationale="only one"
        ),
        checkpoints=[agent_pb.Checkpoint(id="k1", label="start", sequence=1, create_time=timestamp(CREATED))],
    )


def llm_call(status: agent_pb.LlmCallStatus.ValueType = agent_pb.LLM_CALL_STATUS_INVALID_OUTPUT) -> agent_pb.LlmCall:
    return agent_pb.LlmCall(
        id="call-1",
        provider="openai",
        model_name="gpt-x",
        response_model="gpt-x-2025",
        correlation=agent_pb.Correlation(sprint_id=SPRINT_ID, agent_run_id=AGENT_RUN_ID),
        status=status,
        input_tokens=10,
        output_tokens=20,
        latency_ms=300,
        attempt=1,
        create_time=timestamp(CREATED),
    )


def usage(calls: int = 3) -> agent_pb.Usage:
    return agent_pb.Usage(input_tokens=30, output_tokens=60, usd=0.123456789, calls=calls, unpriced_calls=1)


def run_parameters() -> run_pb.RunParameters:
    return run_pb.RunParameters(num_candidates=5, num_scenarios=3, budget_usd=2.5)


def run(status: run_pb.RunStatus.ValueType = run_pb.RUN_STATUS_RUNNING) -> run_pb.Run:
    return run_pb.Run(
        id=RUN_ID,
        project_id=PROJECT_ID,
        mode=run_pb.RUN_MODE_FULL_SEARCH,
        parameters=run_parameters(),
        status=status,
        phases=[run_pb.RUN_PHASE_DESIGN, run_pb.RUN_PHASE_SCENARIOS, run_pb.RUN_PHASE_EVALUATE, run_pb.RUN_PHASE_RANK],
        trigger=run_pb.Trigger(
            id=TRIGGER_ID,
            source=run_pb.TRIGGER_SOURCE_RUN_CONFIG_PANEL,
            metadata=struct({"browser": "firefox"}),
            time=timestamp(CREATED),
        ),
        chat_session_id=SESSION_ID,
        recommended_message_id=MESSAGE_ID,
        recommended_config_snapshot=struct({"mode": "full_search", "status": "ready"}),
        counts=run_pb.RunCounts(candidates=5, scenarios=3, evaluations=14, failed_evaluations=1),
        usage=run_pb.LlmUsage(input_tokens=1000, output_tokens=500, usd=0.25, calls=22, unpriced_calls=0),
        create_time=timestamp(CREATED),
        start_time=timestamp(UPDATED),
        duration_seconds=61.0,
        trace_id="0af7651916cd43dd8448eb211c80319c",
        replay_of_run_id=REPLAYED_RUN_ID,
        snapshot_test_id="suite-1",
    )


def preflight(*, ready: bool = True) -> run_pb.PreflightRunResponse:
    blockers = (
        []
        if ready
        else [
            run_pb.Blocker(
                code=run_pb.BLOCKER_CODE_MISSING_WORLD_MODEL, message="The project has no WorldModel yet: describe it."
            ),
            run_pb.Blocker(
                code=run_pb.BLOCKER_CODE_VALIDATION_ERROR,
                message="parameters.num_candidates: 1 to 50",
                field="parameters.num_candidates",
            ),
        ]
    )
    return run_pb.PreflightRunResponse(
        ready=ready,
        blockers=blockers,
        warnings=[run_pb.Warning(code=run_pb.WARNING_CODE_HIGH_BUDGET, message="about $1.20")],
        normalized_config=run_pb.RunConfig(mode=run_pb.RUN_MODE_FULL_SEARCH, parameters=run_parameters()),
        prerequisites=run_pb.Prerequisites(problem_spec=True, world_model=ready, seed_candidates=True),
        notes=["5 candidates × 3 scenarios = 15 evaluations"],
        estimated_cost=run_pb.CostEstimate(tokens=120_000, calls=22),
    )


def run_candidate() -> run_pb.Candidate:
    return run_pb.Candidate(
        id=CANDIDATE_ID,
        run_id=RUN_ID,
        title="Battery buffer",
        description="store at night",
        approach="batteries",
        assumptions=["cheap cells"],
        origin=run_pb.CANDIDATE_ORIGIN_DESIGNED,
        create_time=timestamp(CREATED),
    )


def scenario() -> run_pb.Scenario:
    return run_pb.Scenario(
        id=SCENARIO_ID,
        run_id=RUN_ID,
        title="Heat wave",
        description="demand doubles",
        conditions=["40 C"],
        severity="high",
        create_time=timestamp(CREATED),
    )


def evaluation() -> run_pb.Evaluation:
    return run_pb.Evaluation(
        id=EVALUATION_ID,
        run_id=RUN_ID,
        candidate_id=CANDIDATE_ID,
        scenario_id=SCENARIO_ID,
        status=run_pb.EVALUATION_STATUS_SUCCEEDED,
        p=run_pb.Score(overall=0.75, components={"output": 0.5}),
        r=run_pb.Score(overall=0.25),
        constraint_satisfaction=[
            run_pb.ConstraintResult(constraint="safety", weight=100, satisfied=True, score=1.0, note="fine")
        ],
        explanation="holds up",
        raw_answer="{}",
        llm_call_id="call-1",
        create_time=timestamp(CREATED),
    )


def failed_evaluation() -> run_pb.Evaluation:
    return run_pb.Evaluation(
        id=EVALUATION_ID,
        run_id=RUN_ID,
        candidate_id=CANDIDATE_ID,
        scenario_id=SCENARIO_ID,
        status=run_pb.EVALUATION_STATUS_FAILED,
        failure_reason="no valid JSON after 3 attempts",
        raw_answer="I think it is fine",
        create_time=timestamp(CREATED),
    )


def run_results() -> run_pb.GetRunResultsResponse:
    return run_pb.GetRunResultsResponse(
        run_id=RUN_ID,
        candidates=[
            run_pb.RankedCandidate(
                candidate_id=CANDIDATE_ID,
                title="Battery buffer",
                rank=1,
                i=3.0,
                p=0.75,
                r=0.25,
                label=run_pb.CANDIDATE_LABEL_PROMISING,
                evaluations=3,
            ),
            run_pb.RankedCandidate(
                candidate_id=AGENT_RUN_ID,
                title="Diesel backup",
                rank=2,
                label=run_pb.CANDIDATE_LABEL_REJECTED,
                rejected=True,
                violated_constraints=[run_pb.ConstraintViolation(constraint="safety", weight=100, scenarios=2)],
                evaluations=2,
                failed_evaluations=1,
            ),
        ],
    )


def run_statistics(*, ranked: bool = True) -> run_pb.RunStatistics:
    statistics = run_pb.RunStatistics(
        run_id=RUN_ID,
        status=run_pb.RUN_STATUS_COMPLETED,
        counts=run_pb.RunCounts(candidates=2, scenarios=3, evaluations=3, failed_evaluations=3),
        coverage=0.5,
        missing_pairs=[run_pb.CandidateScenarioPair(candidate_id=AGENT_RUN_ID, scenario_id=SCENARIO_ID)],
        duration_seconds=61.5,
        usage=run_pb.LlmUsage(input_tokens=10, output_tokens=20, usd=0.5, calls=6, unpriced_calls=1, failed_calls=3),
        hard_constraint_violations=1,
        error_summary="3 evaluations failed",
    )
    if ranked:
        statistics.top_candidate.CopyFrom(
            run_pb.TopCandidate(candidate_id=CANDIDATE_ID, title="Battery buffer", i=3.0, p=0.75, r=0.25)
        )
    return statistics


def run_event(
    sequence: int, kind: run_pb.RunEventType.ValueType, data: dict[str, object] | None = None
) -> run_pb.WatchRunResponse:
    return run_pb.WatchRunResponse(
        event=run_pb.RunEvent(
            sequence=sequence, run_id=RUN_ID, type=kind, data=struct(data or {}), time=timestamp(CREATED)
        )
    )


# ---------------------------------------------------------------- the stubs


def run_lineage() -> run_pb.RunLineage:
    """A run that followed a recommendation, executed and summarised, with its chain of spans."""
    trigger = run_pb.Trigger(
        id=TRIGGER_ID,
        source=run_pb.TRIGGER_SOURCE_RUN_CONFIG_PANEL,
        metadata=struct({"browser": "firefox"}),
        time=timestamp(CREATED),
    )
    spans = [
        run_pb.LineageSpan(role=run_pb.LINEAGE_ROLE_RECOMMENDATION, trace_id="a" * 32, span_id="1" * 16),
        run_pb.LineageSpan(
            role=run_pb.LINEAGE_ROLE_CREATE_RUN,
            trace_id="b" * 32,
            span_id="2" * 16,
            found=True,
            name="create run",
            service="crucible-run",
            parent_span_id="3" * 16,
            start_time=timestamp(CREATED),
            end_time=timestamp(UPDATED),
            links=[
                run_pb.SpanLink(
                    trace_id="a" * 32,
                    span_id="1" * 16,
                    attributes=struct({"crucible.link": "recommendation", "crucible.recommendation_id": MESSAGE_ID}),
                )
            ],
            attributes=struct({"crucible.run_id": RUN_ID}),
        ),
    ]
    return run_pb.RunLineage(
        run_id=RUN_ID,
        project_id=PROJECT_ID,
        recommendation=run_pb.LineageMessage(
            message_id=MESSAGE_ID,
            chat_session_id=SESSION_ID,
            found=True,
            label="Run a full search",
            create_time=timestamp(CREATED),
        ),
        recommended_config=struct({"mode": "full_search", "trace": {"trace_id": "a" * 32, "span_id": "1" * 16}}),
        trigger=trigger,
        trace_id="c" * 32,
        summary=run_pb.LineageMessage(message_id="summary-1", found=False),
        spans=spans,
        spans_stored_locally=True,
        spans_note="spans read from .state/traces",
        trace_span_count=12,
        trace_services=["crucible-agent", "crucible-run"],
    )


class FakeSpec(FakeStub):
    def __init__(self) -> None:
        super().__init__()
        # StreamChatTurn's answers, one per call, and every stream it returned.
        self.turns: list[FakeTurn] = []
        self.streams: list[FakeTurn] = []
        # True: WatchProjectChanges says `ready`, so the gateway keeps the projects it reads.
        self.follows_changes = False

    async def CreateProject(
        self, request: spec_pb.CreateProjectRequest, timeout: float | None = None
    ) -> spec_pb.CreateProjectResponse:
        return self._answer("CreateProject", request, timeout, spec_pb.CreateProjectResponse(project=project()))

    async def ListProjects(
        self, request: spec_pb.ListProjectsRequest, timeout: float | None = None
    ) -> spec_pb.ListProjectsResponse:
        default = spec_pb.ListProjectsResponse(projects=[project()], next_page_token="next")
        return self._answer("ListProjects", request, timeout, default)

    async def GetProject(
        self, request: spec_pb.GetProjectRequest, timeout: float | None = None
    ) -> spec_pb.GetProjectResponse:
        return self._answer("GetProject", request, timeout, spec_pb.GetProjectResponse(project=project()))

    async def UpdateProject(
        self, request: spec_pb.UpdateProjectRequest, timeout: float | None = None
    ) -> spec_pb.UpdateProjectResponse:
        default = spec_pb.UpdateProjectResponse(project=project("Grid v2"))
        return self._answer("UpdateProject", request, timeout, default)

    async def DeleteProject(
        self, request: spec_pb.DeleteProjectRequest, timeout: float | None = None
    ) -> spec_pb.DeleteProjectResponse:
        return self._answer("DeleteProject", request, timeout, spec_pb.DeleteProjectResponse())

    def WatchProjectChanges(self, request: spec_pb.WatchProjectChangesRequest) -> QuietFeed:
        # Not recorded as a call: the app follows it from its start. Unless the test says so, the
        # feed is never ready, so every project read reaches the fake.
        return QuietFeed(ready=self.follows_changes)

    async def CreateChatSession(
        self, request: spec_pb.CreateChatSessionRequest, timeout: float | None = None
    ) -> spec_pb.CreateChatSessionResponse:
        default = spec_pb.CreateChatSessionResponse(chat_session=chat_session())
        return self._answer("CreateChatSession", request, timeout, default)

    async def ListChatSessions(
        self, request: spec_pb.ListChatSessionsRequest, timeout: float | None = None
    ) -> spec_pb.ListChatSessionsResponse:
        default = spec_pb.ListChatSessionsResponse(chat_sessions=[chat_session()])
        return self._answer("ListChatSessions", request, timeout, default)

    async def GetChatSession(
        self, request: spec_pb.GetChatSessionRequest, timeout: float | None = None
    ) -> spec_pb.GetChatSessionResponse:
        default = spec_pb.GetChatSessionResponse(chat_session=chat_session())
        return self._answer("GetChatSession", request, timeout, default)

    async def CreateChatMessage(
        self, request: spec_pb.CreateChatMessageRequest, timeout: float | None = None
    ) -> spec_pb.CreateChatMessageResponse:
        default = spec_pb.CreateChatMessageResponse(chat_message=chat_message())
        return self._answer("CreateChatMessage", request, timeout, default)

    async def ListChatMessages(
        self, request: spec_pb.ListChatMessagesRequest, timeout: float | None = None
    ) -> spec_pb.ListChatMessagesResponse:
        default = spec_pb.ListChatMessagesResponse(chat_messages=[chat_message()], next_page_token="more")
        return self._answer("ListChatMessages", request, timeout, default)

    async def GetProblemSpec(
        self, request: spec_pb.GetProblemSpecRequest, timeout: float | None = None
    ) -> spec_pb.GetProblemSpecResponse:
        default = spec_pb.GetProblemSpecResponse(problem_spec=problem_spec())
        return self._answer("GetProblemSpec", request, timeout, default)

    async def UpdateProblemSpec(
        self, request: spec_pb.UpdateProblemSpecRequest, timeout: float | None = None
    ) -> spec_pb.UpdateProblemSpecResponse:
        default = spec_pb.UpdateProblemSpecResponse(problem_spec=problem_spec())
        return self._answer("UpdateProblemSpec", request, timeout, default)

    async def ListProblemSpecProvenance(
        self, request: spec_pb.ListProblemSpecProvenanceRequest, timeout: float | None = None
    ) -> spec_pb.ListProblemSpecProvenanceResponse:
        default = spec_pb.ListProblemSpecProvenanceResponse(entries=[provenance_entry()])
        return self._answer("ListProblemSpecProvenance", request, timeout, default)

    async def GetWorldModel(
        self, request: spec_pb.GetWorldModelRequest, timeout: float | None = None
    ) -> spec_pb.GetWorldModelResponse:
        default = spec_pb.GetWorldModelResponse(world_model=world_model())
        return self._answer("GetWorldModel", request, timeout, default)

    async def UpdateWorldModel(
        self, request: spec_pb.UpdateWorldModelRequest, timeout: float | None = None
    ) -> spec_pb.UpdateWorldModelResponse:
        default = spec_pb.UpdateWorldModelResponse(world_model=world_model())
        return self._answer("UpdateWorldModel", request, timeout, default)

    async def ListWorldModelProvenance(
        self, request: spec_pb.ListWorldModelProvenanceRequest, timeout: float | None = None
    ) -> spec_pb.ListWorldModelProvenanceResponse:
        default = spec_pb.ListWorldModelProvenanceResponse(entries=[provenance_entry()], next_page_token="n")
        return self._answer("ListWorldModelProvenance", request, timeout, default)

    async def CreateSpecWithPlanning(
        self, request: spec_pb.CreateSpecWithPlanningRequest, timeout: float | None = None
    ) -> spec_pb.CreateSpecWithPlanningResponse:
        default = spec_pb.CreateSpecWithPlanningResponse(spec=spec())
        return self._answer("CreateSpecWithPlanning", request, timeout, default)

    async def ListSpecs(
        self, request: spec_pb.ListSpecsRequest, timeout: float | None = None
    ) -> spec_pb.ListSpecsResponse:
        return self._answer("ListSpecs", request, timeout, spec_pb.ListSpecsResponse(specs=[spec()]))

    async def GetSpec(self, request: spec_pb.GetSpecRequest, timeout: float | None = None) -> spec_pb.GetSpecResponse:
        return self._answer("GetSpec", request, timeout, spec_pb.GetSpecResponse(spec=spec()))

    async def SavePlanningAnswers(
        self, request: spec_pb.SavePlanningAnswersRequest, timeout: float | None = None
    ) -> spec_pb.SavePlanningAnswersResponse:
        default = spec_pb.SavePlanningAnswersResponse(spec=spec(spec_pb.PLANNING_STATUS_ANSWERED))
        return self._answer("SavePlanningAnswers", request, timeout, default)

    async def CreateSprint(
        self, request: spec_pb.CreateSprintRequest, timeout: float | None = None
    ) -> spec_pb.CreateSprintResponse:
        return self._answer("CreateSprint", request, timeout, spec_pb.CreateSprintResponse(sprint=sprint()))

    async def CreateChatTurn(
        self, request: spec_pb.CreateChatTurnRequest, timeout: float | None = None
    ) -> spec_pb.CreateChatTurnResponse:
        user, agent = turn_messages()
        default = spec_pb.CreateChatTurnResponse(user_message=user, agent_message=agent)
        return self._answer("CreateChatTurn", request, timeout, default)

    def StreamChatTurn(self, request: spec_pb.StreamChatTurnRequest, timeout: float | None = None) -> FakeTurn:
        """The next of ``turns`` (a plain one when none is left); a set failure fails it at once."""
        self.calls.append(Call("StreamChatTurn", request, timeout))
        turn = self.turns.pop(0) if self.turns else FakeTurn()
        if "StreamChatTurn" in self.failures:
            turn = FakeTurn(events=[], failure=self.failures["StreamChatTurn"])
        self.streams.append(turn)
        return turn


@dataclass
class FakeTurn:
    """A streamed turn as the stub returns it: its events, then a failure (a stream that breaks off)
    or, held, no end until it is cancelled; ``cancel`` counts only on a call still going, as gRPC's."""

    events: list[spec_pb.StreamChatTurnResponse] = field(default_factory=lambda: turn_events("Hel", "lo"))
    failure: grpc.aio.AioRpcError | None = None
    hold: bool = False
    finished: bool = False
    cancelled: bool = False

    def __aiter__(self) -> AsyncIterator[spec_pb.StreamChatTurnResponse]:
        return self._stream()

    async def _stream(self) -> AsyncIterator[spec_pb.StreamChatTurnResponse]:
        for event in self.events:
            yield event
        if self.hold:
            await asyncio.Event().wait()
        self.finished = True
        if self.failure is not None:
            raise self.failure

    def cancel(self) -> bool:
        if self.finished:
            return False
        self.cancelled = True
        return True


class FakeAgent(FakeStub):
    async def ExecuteAgentRun(
        self, request: agent_pb.ExecuteAgentRunRequest, timeout: float | None = None
    ) -> agent_pb.ExecuteAgentRunResponse:
        default = agent_pb.ExecuteAgentRunResponse(result=agent_run_result())
        return self._answer("ExecuteAgentRun", request, timeout, default)

    async def ListAgentRuns(
        self, request: agent_pb.ListAgentRunsRequest, timeout: float | None = None
    ) -> agent_pb.ListAgentRunsResponse:
        default = agent_pb.ListAgentRunsResponse(agent_runs=[agent_run()], next_page_token="n")
        return self._answer("ListAgentRuns", request, timeout, default)

    async def GetAgentRun(
        self, request: agent_pb.GetAgentRunRequest, timeout: float | None = None
    ) -> agent_pb.GetAgentRunResponse:
        return self._answer("GetAgentRun", request, timeout, agent_pb.GetAgentRunResponse(result=agent_run_result()))

    async def ForkAgentRun(
        self, request: agent_pb.ForkAgentRunRequest, timeout: float | None = None
    ) -> agent_pb.ForkAgentRunResponse:
        return self._answer("ForkAgentRun", request, timeout, agent_pb.ForkAgentRunResponse(result=agent_run_result()))

    async def GetUsage(
        self, request: agent_pb.GetUsageRequest, timeout: float | None = None
    ) -> agent_pb.GetUsageResponse:
        default = agent_pb.GetUsageResponse(
            total=usage(),
            by_model=[agent_pb.ModelUsage(provider="openai", model_name="gpt-x", priced=True, usage=usage(2))],
        )
        return self._answer("GetUsage", request, timeout, default)

    async def ListLlmCalls(
        self, request: agent_pb.ListLlmCallsRequest, timeout: float | None = None
    ) -> agent_pb.ListLlmCallsResponse:
        return self._answer("ListLlmCalls", request, timeout, agent_pb.ListLlmCallsResponse(llm_calls=[llm_call()]))

    async def GetLlmCall(
        self, request: agent_pb.GetLlmCallRequest, timeout: float | None = None
    ) -> agent_pb.GetLlmCallResponse:
        return self._answer("GetLlmCall", request, timeout, agent_pb.GetLlmCallResponse(llm_call=llm_call()))


class FakeSprints(FakeStub):
    """No CreateSprint: the gateway asks the spec service, which owns specs, to create sprints."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[sprint_pb.WatchSprintResponse] = []
        # Raised after the events, as a stream that breaks off does.
        self.stream_failure: grpc.aio.AioRpcError | None = None

    async def StartSprint(
        self, request: sprint_pb.StartSprintRequest, timeout: float | None = None
    ) -> sprint_pb.StartSprintResponse:
        return self._answer("StartSprint", request, timeout, sprint_pb.StartSprintResponse(sprint=sprint()))

    async def CancelSprint(
        self, request: sprint_pb.CancelSprintRequest, timeout: float | None = None
    ) -> sprint_pb.CancelSprintResponse:
        return self._answer("CancelSprint", request, timeout, sprint_pb.CancelSprintResponse(sprint=sprint()))

    async def GetSprint(
        self, request: sprint_pb.GetSprintRequest, timeout: float | None = None
    ) -> sprint_pb.GetSprintResponse:
        return self._answer("GetSprint", request, timeout, sprint_pb.GetSprintResponse(sprint=sprint()))

    async def ListSprints(
        self, request: sprint_pb.ListSprintsRequest, timeout: float | None = None
    ) -> sprint_pb.ListSprintsResponse:
        return self._answer("ListSprints", request, timeout, sprint_pb.ListSprintsResponse(sprints=[sprint()]))

    async def ListArtifacts(
        self, request: sprint_pb.ListArtifactsRequest, timeout: float | None = None
    ) -> sprint_pb.ListArtifactsResponse:
        default = sprint_pb.ListArtifactsResponse(
            artifacts=[sprint_pb.Artifact(path="hello.py", size=21)], next_page_token="page-2"
        )
        return self._answer("ListArtifacts", request, timeout, default)

    async def GetArtifact(
        self, request: sprint_pb.GetArtifactRequest, timeout: float | None = None
    ) -> sprint_pb.GetArtifactResponse:
        default = sprint_pb.GetArtifactResponse(path=request.path, content=b"print('hello world')\n")
        return self._answer("GetArtifact", request, timeout, default)

    def WatchSprint(
        self, request: sprint_pb.WatchSprintRequest, timeout: float | None = None
    ) -> AsyncIterator[sprint_pb.WatchSprintResponse]:
        self.calls.append(Call("WatchSprint", request, timeout))
        return self._stream(self.failures.get("WatchSprint"))

    async def _stream(self, failure: grpc.aio.AioRpcError | None) -> AsyncIterator[sprint_pb.WatchSprintResponse]:
        if failure is not None:
            raise failure
        for event in self.events:
            yield event
        if self.stream_failure is not None:
            raise self.stream_failure


class FakeRuns(FakeStub):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[run_pb.WatchRunResponse] = []
        # Raised after the events, as a stream that breaks off does.
        self.stream_failure: grpc.aio.AioRpcError | None = None

    async def PreflightRun(
        self, request: run_pb.PreflightRunRequest, timeout: float | None = None
    ) -> run_pb.PreflightRunResponse:
        return self._answer("PreflightRun", request, timeout, preflight())

    async def CreateRun(
        self, request: run_pb.CreateRunRequest, timeout: float | None = None
    ) -> run_pb.CreateRunResponse:
        return self._answer("CreateRun", request, timeout, run_pb.CreateRunResponse(run=run(run_pb.RUN_STATUS_CREATED)))

    async def ExecuteRun(
        self, request: run_pb.ExecuteRunRequest, timeout: float | None = None
    ) -> run_pb.ExecuteRunResponse:
        return self._answer("ExecuteRun", request, timeout, run_pb.ExecuteRunResponse(run=run()))

    async def GetRun(self, request: run_pb.GetRunRequest, timeout: float | None = None) -> run_pb.GetRunResponse:
        return self._answer("GetRun", request, timeout, run_pb.GetRunResponse(run=run()))

    async def ListRuns(self, request: run_pb.ListRunsRequest, timeout: float | None = None) -> run_pb.ListRunsResponse:
        return self._answer("ListRuns", request, timeout, run_pb.ListRunsResponse(runs=[run()], next_page_token="r2"))

    async def CancelRun(
        self, request: run_pb.CancelRunRequest, timeout: float | None = None
    ) -> run_pb.CancelRunResponse:
        default = run_pb.CancelRunResponse(run=run(run_pb.RUN_STATUS_CANCELLED))
        return self._answer("CancelRun", request, timeout, default)

    async def ListCandidates(
        self, request: run_pb.ListCandidatesRequest, timeout: float | None = None
    ) -> run_pb.ListCandidatesResponse:
        default = run_pb.ListCandidatesResponse(candidates=[run_candidate()], next_page_token="c2")
        return self._answer("ListCandidates", request, timeout, default)

    async def ListScenarios(
        self, request: run_pb.ListScenariosRequest, timeout: float | None = None
    ) -> run_pb.ListScenariosResponse:
        default = run_pb.ListScenariosResponse(scenarios=[scenario()], next_page_token="s2")
        return self._answer("ListScenarios", request, timeout, default)

    async def ListEvaluations(
        self, request: run_pb.ListEvaluationsRequest, timeout: float | None = None
    ) -> run_pb.ListEvaluationsResponse:
        default = run_pb.ListEvaluationsResponse(evaluations=[evaluation(), failed_evaluation()], next_page_token="e2")
        return self._answer("ListEvaluations", request, timeout, default)

    async def GetRunResults(
        self, request: run_pb.GetRunResultsRequest, timeout: float | None = None
    ) -> run_pb.GetRunResultsResponse:
        return self._answer("GetRunResults", request, timeout, run_results())

    async def GetRunStatistics(
        self, request: run_pb.GetRunStatisticsRequest, timeout: float | None = None
    ) -> run_pb.GetRunStatisticsResponse:
        default = run_pb.GetRunStatisticsResponse(statistics=run_statistics())
        return self._answer("GetRunStatistics", request, timeout, default)

    async def GetRunLineage(
        self, request: run_pb.GetRunLineageRequest, timeout: float | None = None
    ) -> run_pb.GetRunLineageResponse:
        return self._answer("GetRunLineage", request, timeout, run_pb.GetRunLineageResponse(lineage=run_lineage()))

    def WatchRun(
        self, request: run_pb.WatchRunRequest, timeout: float | None = None
    ) -> AsyncIterator[run_pb.WatchRunResponse]:
        self.calls.append(Call("WatchRun", request, timeout))
        return self._stream(self.failures.get("WatchRun"))

    async def _stream(self, failure: grpc.aio.AioRpcError | None) -> AsyncIterator[run_pb.WatchRunResponse]:
        if failure is not None:
            raise failure
        for event in self.events:
            yield event
        if self.stream_failure is not None:
            raise self.stream_failure


# ---------------------------------------------------------------- the snapshot service


def snapshot_data() -> dict[str, object]:
    """The contract's snapshot_data: full copies, with their schema version."""
    return {
        "version": "2.0",
        "problem_spec": {
            "constraints": [{"name": "safety", "description": "no injuries", "weight": 100}],
            "goals": [{"description": "double output"}],
            "resolution": "coarse",
            "mode": "full_search",
            "provenance_log": [],
        },
        "world_model": {"model_data": {"actors": ["crew"]}, "provenance": []},
        "run_config": {"mode": "full_search", "parameters": {"num_candidates": 3, "num_scenarios": 5}},
        "chat_context": [{"role": "user", "content": "Model a grid", "created_at": "2025-01-02T03:04:05Z"}],
    }


def run_metrics(run_id: str = RUN_ID, *, top: bool = True) -> snap_pb.RunMetrics:
    metrics = snap_pb.RunMetrics(
        run_id=run_id,
        status="COMPLETED",
        candidates=3,
        scenarios=5,
        evaluations=15,
        coverage=1.0,
        duration_seconds=42.5,
        input_tokens=1200,
        output_tokens=800,
        usd=0.42,
        llm_calls=17,
    )
    if top:
        metrics.top_i, metrics.top_p, metrics.top_r = 2.5, 0.75, 0.3
        metrics.top_candidate_id = CANDIDATE_ID
    return metrics


def invariant(kind: str = "min_candidates", value: object = 3) -> snap_pb.Invariant:
    holder = struct({"v": value})
    return snap_pb.Invariant(type=kind, value=holder.fields["v"], description=f"{kind} {value}")


def snapshot(snapshot_id: str = SNAPSHOT_ID, name: str = "Grid baseline", *, data: bool = True) -> snap_pb.Snapshot:
    message = snap_pb.Snapshot(
        id=snapshot_id,
        name=name,
        description="a completed run of the grid study",
        tags=["grid", "baseline"],
        project_id=PROJECT_ID,
        run_id=RUN_ID,
        reference_metrics=run_metrics(),
        invariants=[invariant(), invariant("run_status", "COMPLETED")],
        reference_results=[invariant_result(), invariant_result("run_status", "COMPLETED", "COMPLETED")],
        version="2.0",
        create_time=timestamp(CREATED),
        update_time=timestamp(CREATED),
    )
    if data:
        message.snapshot_data.CopyFrom(struct(snapshot_data()))
    return message


def invariant_result(
    kind: str = "min_candidates",
    expected: object = 3,
    actual: object = 3,
    status: snap_pb.ResultStatus.ValueType = snap_pb.RESULT_STATUS_PASSED,
) -> snap_pb.InvariantResult:
    values = struct({"expected": expected, "actual": actual})
    return snap_pb.InvariantResult(
        type=kind,
        description=f"{kind} {expected}",
        status=status,
        expected=values.fields["expected"],
        actual=values.fields["actual"],
        pass_rate=1.0 if status == snap_pb.RESULT_STATUS_PASSED else 0.0,
        message="" if status == snap_pb.RESULT_STATUS_PASSED else f"expected {expected}, got {actual}",
    )


def suite_result(
    status: snap_pb.ResultStatus.ValueType = snap_pb.RESULT_STATUS_PASSED,
    snapshot_id: str = SNAPSHOT_ID,
    name: str = "Grid baseline",
) -> snap_pb.SnapshotTestResult:
    """One snapshot's result as the suite reports it: passed, failed (an invariant broken), skipped, error."""
    result = snap_pb.SnapshotTestResult(snapshot_id=snapshot_id, snapshot_name=name, status=status, repetitions=1)
    if status == snap_pb.RESULT_STATUS_SKIPPED:
        result.reason = "cost limit: the estimate $0.40 would cross $0.50"
        return result
    if status == snap_pb.RESULT_STATUS_ERROR:
        result.reason = "the run service is unavailable"
        return result
    failed = status == snap_pb.RESULT_STATUS_FAILED
    result.replay_run_id = REPLAY_RUN_ID
    result.replay_run_ids.append(REPLAY_RUN_ID)
    result.invariants.extend(
        [
            invariant_result(),
            invariant_result(
                "run_status",
                "COMPLETED",
                "FAILED" if failed else "COMPLETED",
                snap_pb.RESULT_STATUS_FAILED if failed else snap_pb.RESULT_STATUS_PASSED,
            ),
        ]
    )
    result.metrics_delta["candidate_count"].CopyFrom(snap_pb.MetricDelta(baseline=3, replay=3, delta=0))
    result.metrics_delta["duration_seconds"].CopyFrom(
        snap_pb.MetricDelta(baseline=42.5, replay=40.0, delta=-2.5, flagged=True)
    )
    result.cost_usd = 0.45
    return result


def suite_report(
    *results: snap_pb.SnapshotTestResult, status: snap_pb.ReportStatus.ValueType = snap_pb.REPORT_STATUS_COMPLETED
) -> snap_pb.TestReport:
    """A report over ``results`` (one passed when none is given), its summary counted from them."""
    chosen = list(results) or [suite_result()]

    def count(s: snap_pb.ResultStatus.ValueType) -> int:
        return sum(r.status == s for r in chosen)

    report = snap_pb.TestReport(
        id=REPORT_ID,
        status=status,
        summary=snap_pb.TestSummary(
            total=len(chosen),
            passed=count(snap_pb.RESULT_STATUS_PASSED),
            failed=count(snap_pb.RESULT_STATUS_FAILED),
            skipped=count(snap_pb.RESULT_STATUS_SKIPPED),
            errors=count(snap_pb.RESULT_STATUS_ERROR),
        ),
        results=chosen,
        total_cost_usd=sum(r.cost_usd for r in chosen),
        options=snap_pb.TestOptions(phases=snap_pb.REPLAY_PHASES_FULL, num_candidates=3, cost_limit_usd=10.0),
        snapshot_ids=[r.snapshot_id for r in chosen],
        create_time=timestamp(CREATED),
        snapshot_test_id="suite-1",
    )
    if status != snap_pb.REPORT_STATUS_RUNNING:
        report.end_time.CopyFrom(timestamp(UPDATED))
    if status == snap_pb.REPORT_STATUS_FAILED:
        report.error = "the snapshot service lost its database"
    return report


def suite_events(report: snap_pb.TestReport | None = None) -> list[snap_pb.RunSnapshotTestsResponse]:
    """A suite's stream: started, each snapshot's replay running then ended, its result, the report last."""
    report = report or suite_report()
    started = snap_pb.TestReportStarted(report_id=report.id, snapshot_ids=list(report.snapshot_ids), repetitions=1)
    moves = [
        snap_pb.ReplayProgress(
            snapshot_id=r.snapshot_id, snapshot_name=r.snapshot_name, repetition=1, state=state, run_id=run_id
        )
        for r in report.results
        for run_id in r.replay_run_ids[:1]
        for state in (snap_pb.REPLAY_STATE_RUNNING, snap_pb.REPLAY_STATE_ENDED)
    ]
    return [
        snap_pb.RunSnapshotTestsResponse(started=started),
        *(snap_pb.RunSnapshotTestsResponse(replay=m) for m in moves),
        *(snap_pb.RunSnapshotTestsResponse(result=r) for r in report.results),
        snap_pb.RunSnapshotTestsResponse(report=report),
    ]


@dataclass
class FakeSuite:
    """A suite's stream as the stub returns it: its events, then a failure or, held, no end; and
    whether the caller cancelled it (leaving, which the contract says does not stop the suite)."""

    events: list[snap_pb.RunSnapshotTestsResponse] = field(default_factory=suite_events)
    failure: grpc.aio.AioRpcError | None = None
    hold: bool = False
    read: int = 0
    cancelled: bool = False

    def __aiter__(self) -> AsyncIterator[snap_pb.RunSnapshotTestsResponse]:
        return self._stream()

    async def _stream(self) -> AsyncIterator[snap_pb.RunSnapshotTestsResponse]:
        for event in self.events:
            self.read += 1
            yield event
        if self.hold:
            await asyncio.Event().wait()
        if self.failure is not None:
            raise self.failure

    def cancel(self) -> bool:
        self.cancelled = True
        return True


class FakeSnapshots(FakeStub):
    def __init__(self) -> None:
        super().__init__()
        # RunSnapshotTests' streams, one per call (a plain passing suite when none is left), and
        # the events WatchTestReport relays.
        self.suites: list[FakeSuite] = []
        self.streams: list[FakeSuite] = []
        self.watch_events: list[snap_pb.WatchTestReportResponse] = watch_events(suite_report())
        self.watch_failure: grpc.aio.AioRpcError | None = None

    async def CreateSnapshot(
        self, request: snap_pb.CreateSnapshotRequest, timeout: float | None = None
    ) -> snap_pb.CreateSnapshotResponse:
        return self._answer("CreateSnapshot", request, timeout, snap_pb.CreateSnapshotResponse(snapshot=snapshot()))

    async def ListSnapshots(
        self, request: snap_pb.ListSnapshotsRequest, timeout: float | None = None
    ) -> snap_pb.ListSnapshotsResponse:
        default = snap_pb.ListSnapshotsResponse(snapshots=[snapshot(data=False)], next_page_token="")
        return self._answer("ListSnapshots", request, timeout, default)

    async def GetSnapshot(
        self, request: snap_pb.GetSnapshotRequest, timeout: float | None = None
    ) -> snap_pb.GetSnapshotResponse:
        return self._answer("GetSnapshot", request, timeout, snap_pb.GetSnapshotResponse(snapshot=snapshot()))

    async def DeleteSnapshot(
        self, request: snap_pb.DeleteSnapshotRequest, timeout: float | None = None
    ) -> snap_pb.DeleteSnapshotResponse:
        if not request.confirm and "DeleteSnapshot" not in self.failures:
            # The contract's rule, as the service applies it.
            self.calls.append(Call("DeleteSnapshot", request, timeout))
            raise rpc_error(
                FailedPrecondition("deleting a snapshot needs confirm", reason="CONFIRMATION_REQUIRED"),
                "snapshot.crucible",
            )
        return self._answer("DeleteSnapshot", request, timeout, snap_pb.DeleteSnapshotResponse())

    async def ReplaySnapshot(
        self, request: snap_pb.ReplaySnapshotRequest, timeout: float | None = None
    ) -> snap_pb.ReplaySnapshotResponse:
        waited = request.wait
        default = snap_pb.ReplaySnapshotResponse(
            project_id=PROJECT_ID,
            run_id=REPLAY_RUN_ID,
            status="COMPLETED" if waited else "RUNNING",
            metrics=run_metrics(REPLAY_RUN_ID) if waited else None,
            invariants=[invariant_result()] if waited else [],
        )
        return self._answer("ReplaySnapshot", request, timeout, default)

    def RunSnapshotTests(self, request: snap_pb.RunSnapshotTestsRequest, timeout: float | None = None) -> FakeSuite:
        self.calls.append(Call("RunSnapshotTests", request, timeout))
        suite = self.suites.pop(0) if self.suites else FakeSuite()
        if "RunSnapshotTests" in self.failures:
            suite = FakeSuite(events=[], failure=self.failures["RunSnapshotTests"])
        self.streams.append(suite)
        return suite

    def WatchTestReport(
        self, request: snap_pb.WatchTestReportRequest, timeout: float | None = None
    ) -> AsyncIterator[snap_pb.WatchTestReportResponse]:
        self.calls.append(Call("WatchTestReport", request, timeout))
        return self._watch(self.failures.get("WatchTestReport"))

    async def _watch(self, failure: grpc.aio.AioRpcError | None) -> AsyncIterator[snap_pb.WatchTestReportResponse]:
        if failure is not None:
            raise failure
        for event in self.watch_events:
            yield event
        if self.watch_failure is not None:
            raise self.watch_failure

    async def GetTestReport(
        self, request: snap_pb.GetTestReportRequest, timeout: float | None = None
    ) -> snap_pb.GetTestReportResponse:
        return self._answer("GetTestReport", request, timeout, snap_pb.GetTestReportResponse(report=suite_report()))

    async def ListTestReports(
        self, request: snap_pb.ListTestReportsRequest, timeout: float | None = None
    ) -> snap_pb.ListTestReportsResponse:
        default = snap_pb.ListTestReportsResponse(reports=[suite_report()], next_page_token="r2")
        return self._answer("ListTestReports", request, timeout, default)


def watch_events(report: snap_pb.TestReport) -> list[snap_pb.WatchTestReportResponse]:
    """The WatchTestReport stream of a suite that produced ``report``."""
    events = []
    for e in suite_events(report):
        kind = e.WhichOneof("event")
        events.append(
            snap_pb.WatchTestReportResponse(
                started=e.started if kind == "started" else None,
                result=e.result if kind == "result" else None,
                report=e.report if kind == "report" else None,
                replay=e.replay if kind == "replay" else None,
            )
        )
    return events


@dataclass
class FakeClients(ServiceClients):
    """The gateway's clients over the fakes: no channels, and the health report the test sets."""

    statuses: dict[str, str] = field(default_factory=dict)

    async def health(self, timeout: float = 1.0) -> dict[str, str]:
        return dict(self.statuses)

    async def close(self) -> None:
        raise AssertionError("the gateway closes only the clients it opened itself")


@dataclass
class Fakes:
    spec: FakeSpec = field(default_factory=FakeSpec)
    agent: FakeAgent = field(default_factory=FakeAgent)
    sprints: FakeSprints = field(default_factory=FakeSprints)
    runs: FakeRuns = field(default_factory=FakeRuns)
    snapshots: FakeSnapshots = field(default_factory=FakeSnapshots)
    statuses: dict[str, str] = field(
        default_factory=lambda: dict.fromkeys(("spec", "run", "snapshot", "agent"), "SERVING")
    )

    def clients(self) -> FakeClients:
        return FakeClients(
            channels={},
            spec=cast("SpecServiceAsyncStub", self.spec),
            agent=cast("AgentServiceAsyncStub", self.agent),
            sprints=cast("SprintServiceAsyncStub", self.sprints),
            runs=cast("RunServiceAsyncStub", self.runs),
            snapshots=cast("SnapshotServiceAsyncStub", self.snapshots),
            statuses=self.statuses,
        )

    def calls(self) -> Sequence[Call]:
        return [*self.spec.calls, *self.agent.calls, *self.sprints.calls, *self.runs.calls, *self.snapshots.calls]
