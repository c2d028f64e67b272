"""/api/usage and /api/llm-calls: what the models cost, by correlation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from crucible.agent.v1 import agent_service_pb2 as pb
from crucible_gateway.api.deps import Clients
from crucible_gateway.schemas.agent_runs import MAX_CORRELATION, CorrelationBody
from crucible_gateway.schemas.common import Id, IdFilter, PageSize, PageToken
from crucible_gateway.schemas.usage import (
    USAGE_DIMENSION,
    GroupBy,
    GroupLimit,
    LlmCallDetail,
    LlmCallList,
    LlmCallRead,
    UsageReport,
)

router = APIRouter(tags=["agent"])


@router.get("/usage")
async def get_usage(
    clients: Clients,
    project_id: IdFilter = "",
    run_id: IdFilter = "",
    sprint_id: IdFilter = "",
    snapshot_test_id: IdFilter = "",
    agent_run_id: IdFilter = "",
    purpose: Annotated[
        str, Query(max_length=MAX_CORRELATION, description="Only the calls made for this purpose (e.g. evaluator)")
    ] = "",
    group_by: GroupBy = (),
    group_limit: GroupLimit = 0,
) -> UsageReport:
    correlation = CorrelationBody(
        project_id=project_id, run_id=run_id, sprint_id=sprint_id, snapshot_test_id=snapshot_test_id, purpose=purpose
    )
    request = pb.GetUsageRequest(
        filter=correlation.to_proto(agent_run_id),
        group_by=[USAGE_DIMENSION.number(d) for d in dict.fromkeys(group_by)],
        group_limit=group_limit,
    )
    return UsageReport.from_proto(await clients.agent.GetUsage(request, timeout=clients.timeout))


@router.get("/llm-calls")
async def list_llm_calls(
    clients: Clients,
    project_id: IdFilter = "",
    run_id: IdFilter = "",
    sprint_id: IdFilter = "",
    agent_run_id: IdFilter = "",
    page_size: PageSize = 0,
    page_token: PageToken = "",
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
        llm_calls=[LlmCallRead.from_proto(c) for c in response.llm_calls], next_page_token=response.next_page_token
    )


@router.get("/llm-calls/{llm_call_id}")
async def get_llm_call(llm_call_id: Id, clients: Clients) -> LlmCallDetail:
    """One model call (one attempt), with the answer it got whole."""
    response = await clients.agent.GetLlmCall(pb.GetLlmCallRequest(llm_call_id=llm_call_id), timeout=clients.timeout)
    return LlmCallDetail.from_proto(response.llm_call)
