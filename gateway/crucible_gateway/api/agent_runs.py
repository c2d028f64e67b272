"""/api/agent-runs, /api/usage and /api/llm-calls"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from crucible.agent.v1 import agent_service_pb2 as pb
from crucible_common.protobuf import struct, to_datetime
from crucible_gateway.agent_schemas import (
    AgentRunCreate,
    AgentRunFork,
    AgentRunList,
    AgentRunResult,
    CorrelationBody,
    LlmCallList,
    LlmCallRead,
    ModelUsageRead,
    RecordingBody,
    UsageRead,
    UsageReport,
    run_from_proto,
)
from crucible_gateway.api.deps import Clients
from crucible_gateway.schemas import PageSize

router = APIRouter(tags=["agent"])

ROLES = {"system": pb.ROLE_SYSTEM, "user": pb.ROLE_USER, "assistant": pb.ROLE_ASSISTANT}
RECORDING_MODES = {"record": pb.RECORDING_MODE_RECORD, "replay": pb.RECORDING_MODE_REPLAY}
CALL_STATUS = {
    pb.LLM_CALL_STATUS_SUCCEEDED: "succeeded",
    pb.LLM_CALL_STATUS_FAILED: "failed",
    pb.LLM_CALL_STATUS_INVALID_OUTPUT: "invalid_output",
    pb.LLM_CALL_STATUS_REPLAYED: "replayed",
}
Id = Annotated[str, Query(max_length=100)]


def _correlation(body: CorrelationBody, agent_run_id: str = "") -> pb.Correlation:
    return pb.Correlation(
        project_id=body.project_id,
        run_id=body.run_id,
        sprint_id=body.sprint_id,
        snapshot_test_id=body.snapshot_test_id,
        purpose=body.purpose,
        agent_run_id=agent_run_id,
    )


def _recording(body: RecordingBody | None) -> pb.Recording | None:
    return pb.Recording(mode=RECORDING_MODES[body.mode], recording_key=body.recording_key) if body else None


@router.post("/agent-runs", status_code=201)
async def create_agent_run(body: AgentRunCreate, clients: Clients) -> AgentRunResult:
    names: list[str] = []
    for s in body.subagents:
        # Unnamed subagents are named after their provider: "openai", "anthropic", "openai-2".
        base = s.name or s.provider
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}-{n}"
        names.append(name)
    request = pb.ExecuteAgentRunRequest(
        message=body.message,
        history=[pb.Message(role=ROLES[m.role], content=m.content) for m in body.history],
        subagents=[
            pb.SubagentConfig(name=name, provider=s.provider, model_name=s.model_name, system_prompt=s.system_prompt)
            for name, s in zip(names, body.subagents, strict=True)
        ],
        workspace_ref=body.workspace_ref,
        metadata=struct(body.metadata),
        correlation=_correlation(body.correlation),
        recording=_recording(body.recording),
        json_schema=struct(body.json_schema) if body.json_schema is not None else None,
        schema_name=body.schema_name,
    )
    if body.judge is not None:
        request.judge.CopyFrom(
            pb.JudgeConfig(
                provider=body.judge.provider, model_name=body.judge.model_name, instructions=body.judge.instructions
            )
        )
    response = await clients.agent.ExecuteAgentRun(request, timeout=clients.llm_timeout)
    return AgentRunResult.from_proto(response.result)


@router.get("/agent-runs")
async def list_agent_runs(
    clients: Clients,
    project_id: Id = "",
    run_id: Id = "",
    sprint_id: Id = "",
    page_size: Annotated[PageSize, Query()] = 0,
    page_token: Annotated[str, Query(max_length=1024)] = "",
) -> AgentRunList:
    response = await clients.agent.ListAgentRuns(
        pb.ListAgentRunsRequest(
            filter=pb.Correlation(project_id=project_id, run_id=run_id, sprint_id=sprint_id),
            page_size=page_size,
            page_token=page_token,
        ),
        timeout=clients.timeout,
    )
    return AgentRunList(
        agent_runs=[run_from_proto(r) for r in response.agent_runs], next_page_token=response.next_page_token
    )


@router.get("/agent-runs/{agent_run_id}")
async def get_agent_run(agent_run_id: str, clients: Clients) -> AgentRunResult:
    response = await clients.agent.GetAgentRun(
        pb.GetAgentRunRequest(agent_run_id=agent_run_id), timeout=clients.timeout
    )
    return AgentRunResult.from_proto(response.result)


@router.post("/agent-runs/{agent_run_id}/fork", status_code=201)
async def fork_agent_run(agent_run_id: str, body: AgentRunFork, clients: Clients) -> AgentRunResult:
    response = await clients.agent.ForkAgentRun(
        pb.ForkAgentRunRequest(
            agent_run_id=agent_run_id,
            checkpoint_id=body.checkpoint_id,
            checkpoint_label=body.checkpoint_label,
            label=body.label,
            reason=body.reason,
        ),
        timeout=clients.llm_timeout,
    )
    return AgentRunResult.from_proto(response.result)


@router.get("/usage")
async def get_usage(
    clients: Clients,
    project_id: Id = "",
    run_id: Id = "",
    sprint_id: Id = "",
    snapshot_test_id: Id = "",
    agent_run_id: Id = "",
    purpose: Id = "",
) -> UsageReport:
    correlation = CorrelationBody(
        project_id=project_id, run_id=run_id, sprint_id=sprint_id, snapshot_test_id=snapshot_test_id, purpose=purpose
    )
    response = await clients.agent.GetUsage(
        pb.GetUsageRequest(filter=_correlation(correlation, agent_run_id)), timeout=clients.timeout
    )
    return UsageReport(
        total=UsageRead.from_proto(response.total),
        by_model=[
            ModelUsageRead(
                provider=m.provider, model_name=m.model_name, priced=m.priced, usage=UsageRead.from_proto(m.usage)
            )
            for m in response.by_model
        ],
    )


@router.get("/llm-calls")
async def list_llm_calls(
    clients: Clients,
    project_id: Id = "",
    run_id: Id = "",
    sprint_id: Id = "",
    agent_run_id: Id = "",
    page_size: Annotated[PageSize, Query()] = 0,
    page_token: Annotated[str, Query(max_length=1024)] = "",
) -> LlmCallList:
    response = await clients.agent.ListLlmCalls(
        pb.ListLlmCallsRequest(
            filter=pb.Correlation(project_id=project_id, run_id=run_id, sprint_id=sprint_id, agent_run_id=agent_run_id),
            page_size=page_size,
            page_token=page_token,
        ),
        timeout=clients.timeout,
    )
    return LlmCallList(
        llm_calls=[
            LlmCallRead(
                id=c.id,
                provider=c.provider,
                model_name=c.model_name,
                response_model=c.response_model,
                status=CALL_STATUS.get(c.status, "unspecified"),
                input_tokens=c.input_tokens,
                output_tokens=c.output_tokens,
                usd=c.usd if c.has_usd else None,
                latency_ms=c.latency_ms,
                attempt=c.attempt,
                error=c.error,
                correlation=CorrelationBody(
                    project_id=c.correlation.project_id,
                    run_id=c.correlation.run_id,
                    sprint_id=c.correlation.sprint_id,
                    snapshot_test_id=c.correlation.snapshot_test_id,
                    purpose=c.correlation.purpose,
                ),
                agent_run_id=c.correlation.agent_run_id,
                created_at=to_datetime(c.create_time),
            )
            for c in response.llm_calls
        ],
        next_page_token=response.next_page_token,
    )
