"""/api/agent-runs"""

from __future__ import annotations

from fastapi import APIRouter

from crucible.agent.v1 import agent_service_pb2 as pb
from crucible_common.protobuf import struct
from crucible_gateway.api.deps import Clients
from crucible_gateway.schemas.agent_runs import (
    RECORDING_MODE,
    ROLE,
    AgentRunCreate,
    AgentRunFork,
    AgentRunList,
    AgentRunRead,
    AgentRunResult,
    RecordingBody,
)
from crucible_gateway.schemas.common import Id, IdFilter, PageSize, PageToken

router = APIRouter(tags=["agent"])


def _recording(body: RecordingBody | None) -> pb.Recording | None:
    return pb.Recording(mode=RECORDING_MODE.number(body.mode), recording_key=body.recording_key) if body else None


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
        history=[pb.Message(role=ROLE.number(m.role), content=m.content) for m in body.history],
        subagents=[
            pb.SubagentConfig(name=name, provider=s.provider, model_name=s.model_name, system_prompt=s.system_prompt)
            for name, s in zip(names, body.subagents, strict=True)
        ],
        workspace_ref=body.workspace_ref,
        metadata=struct(body.metadata),
        correlation=body.correlation.to_proto(),
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
    project_id: IdFilter = "",
    run_id: IdFilter = "",
    sprint_id: IdFilter = "",
    page_size: PageSize = 0,
    page_token: PageToken = "",
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
        agent_runs=[AgentRunRead.from_proto(r) for r in response.agent_runs], next_page_token=response.next_page_token
    )


@router.get("/agent-runs/{agent_run_id}")
async def get_agent_run(agent_run_id: Id, clients: Clients) -> AgentRunResult:
    response = await clients.agent.GetAgentRun(
        pb.GetAgentRunRequest(agent_run_id=agent_run_id), timeout=clients.timeout
    )
    return AgentRunResult.from_proto(response.result)


@router.post("/agent-runs/{agent_run_id}/fork", status_code=201)
async def fork_agent_run(agent_run_id: Id, body: AgentRunFork, clients: Clients) -> AgentRunResult:
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
