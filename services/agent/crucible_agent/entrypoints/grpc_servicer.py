"""The AgentService servicer: proto in → command → handler → proto out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from crucible.agent.v1 import agent_service_pb2 as pb
from crucible.agent.v1 import agent_service_pb2_grpc as pb_grpc
from crucible_agent.domain.model import Delta, LlmResult
from crucible_agent.entrypoints import proto_mapping as m
from crucible_agent.service_layer import commands as c
from crucible_agent.service_layer import handlers as h
from crucible_agent.service_layer.agent_runs import AgentRunner
from crucible_agent.service_layer.call_log import CallLog
from crucible_agent.service_layer.llm import LlmService
from crucible_agent.service_layer.unit_of_work import UowFactory
from crucible_common.ids import parse_id
from crucible_common.protobuf import schema_dict, struct_to_dict
from crucible_common.streams import Emit, relay

Context = grpc.aio.ServicerContext[Any, Any]


class AgentServicer(pb_grpc.AgentServiceServicer):
    def __init__(self, llm: LlmService, runner: AgentRunner, uow: UowFactory, calls: CallLog) -> None:
        self._llm = llm
        self._runner = runner
        self._uow = uow
        self._calls = calls

    async def Complete(self, request: pb.CompleteRequest, context: Context) -> pb.CompleteResponse:
        return m.complete_response(await h.complete(_complete(request), self._llm, self._calls))

    async def StreamComplete(
        self, request: pb.StreamCompleteRequest, context: Context
    ) -> AsyncIterator[pb.StreamCompleteResponse]:
        cmd = _complete(request.request)

        async def call(emit: Emit[Delta | LlmResult]) -> Delta | LlmResult:
            return await h.complete(cmd, self._llm, self._calls, on_delta=emit)

        async for event in relay(call):
            yield m.stream_complete_response(event)

    async def ExecuteAgentRun(self, request: pb.ExecuteAgentRunRequest, context: Context) -> pb.ExecuteAgentRunResponse:
        cmd = c.ExecuteAgentRun(
            message=request.message,
            subagents=m.subagents(list(request.subagents)),
            judge=m.judge(request.judge, request.HasField("judge")),
            history=m.messages(list(request.history), "history"),
            workspace_ref=request.workspace_ref,
            metadata=struct_to_dict(request.metadata),
            correlation=m.correlation(request.correlation),
            recording=m.recording(request.recording),
            json_schema=struct_to_dict(request.json_schema) if request.HasField("json_schema") else None,
            schema_name=request.schema_name,
        )
        return pb.ExecuteAgentRunResponse(result=m.result_pb(await self._runner.execute(cmd)))

    async def GetAgentRun(self, request: pb.GetAgentRunRequest, context: Context) -> pb.GetAgentRunResponse:
        run_id = parse_id(request.agent_run_id, "agent_run_id")
        return pb.GetAgentRunResponse(result=m.result_pb(await self._runner.result(run_id)))

    async def ListAgentRuns(self, request: pb.ListAgentRunsRequest, context: Context) -> pb.ListAgentRunsResponse:
        cmd = c.ListAgentRuns(m.correlation(request.filter), request.page_size, request.page_token)
        runs, token = await h.list_agent_runs(cmd, self._uow)
        return pb.ListAgentRunsResponse(agent_runs=[m.agent_run_pb(r) for r in runs], next_page_token=token)

    async def ListCheckpoints(self, request: pb.ListCheckpointsRequest, context: Context) -> pb.ListCheckpointsResponse:
        cmd = c.ListCheckpoints(request.agent_run_id, request.page_size, request.page_token)
        checkpoints, token = await h.list_checkpoints(cmd, self._uow)
        return pb.ListCheckpointsResponse(checkpoints=[m.checkpoint_pb(x) for x in checkpoints], next_page_token=token)

    async def ForkAgentRun(self, request: pb.ForkAgentRunRequest, context: Context) -> pb.ForkAgentRunResponse:
        cmd = c.ForkAgentRun(
            agent_run_id=parse_id(request.agent_run_id, "agent_run_id"),
            checkpoint_id=request.checkpoint_id,
            checkpoint_label=request.checkpoint_label,
            label=request.label,
            reason=request.reason,
            recording=m.recording(request.recording) if request.HasField("recording") else None,
        )
        return pb.ForkAgentRunResponse(result=m.result_pb(await self._runner.fork(cmd)))

    async def GetUsage(self, request: pb.GetUsageRequest, context: Context) -> pb.GetUsageResponse:
        cmd = c.GetUsage(
            m.correlation(request.filter),
            tuple(m.usage_dimensions(list(request.group_by))),
            request.group_limit,
        )
        return m.usage_report_pb(await h.get_usage(cmd, self._uow))

    async def ListLlmCalls(self, request: pb.ListLlmCallsRequest, context: Context) -> pb.ListLlmCallsResponse:
        cmd = c.ListLlmCalls(m.correlation(request.filter), request.page_size, request.page_token)
        calls, token = await h.list_llm_calls(cmd, self._uow)
        return pb.ListLlmCallsResponse(llm_calls=[m.llm_call_pb(x) for x in calls], next_page_token=token)

    async def GetLlmCall(self, request: pb.GetLlmCallRequest, context: Context) -> pb.GetLlmCallResponse:
        call = await h.get_llm_call(c.GetLlmCall(request.llm_call_id), self._uow)
        return pb.GetLlmCallResponse(llm_call=m.llm_call_pb(call, with_response=True))

    async def GetModelPrices(self, request: pb.GetModelPricesRequest, context: Context) -> pb.GetModelPricesResponse:
        cmd = c.GetModelPrices(tuple(m.model_ref(x) for x in request.models))
        return pb.GetModelPricesResponse(
            prices=[m.model_price_pb(p) for p in h.model_prices(cmd, self._llm.prices)],
            structured_attempts=self._llm.structured_attempts,
        )


def _complete(request: pb.CompleteRequest) -> c.Complete:
    return c.Complete(
        provider=request.model.provider,
        model=request.model.model_name,
        messages=m.messages(list(request.messages)),
        json_schema=schema_dict(request.json_schema) if request.HasField("json_schema") else None,
        schema_name=request.schema_name,
        tools=m.tools(list(request.tools)),
        correlation=m.correlation(request.correlation),
        max_tokens=request.max_tokens,
        temperature=request.temperature if request.HasField("temperature") else None,
        recording=m.recording(request.recording),
        idempotency_key=request.idempotency_key,
        allowance=m.call_allowance(request.allowance) if request.HasField("allowance") else None,
    )
