"""The RunService servicer: proto in → command → handler → proto out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from crucible.run.v1 import run_service_pb2 as pb
from crucible.run.v1 import run_service_pb2_grpc as pb_grpc
from crucible_common.protobuf import struct_to_dict
from crucible_run.entrypoints import proto_mapping as m
from crucible_run.service_layer import commands as c
from crucible_run.service_layer import handlers as h
from crucible_run.service_layer.handlers import RunDeps

Context = grpc.aio.ServicerContext[Any, Any]


class RunServicer(pb_grpc.RunServiceServicer):
    def __init__(self, deps: RunDeps) -> None:
        self._deps = deps

    async def PreflightRun(self, request: pb.PreflightRunRequest, context: Context) -> pb.PreflightRunResponse:
        cmd = c.PreflightRun(
            request.project_id,
            m.MODE.from_proto(request.mode, "mode"),
            m.parameters(request.parameters),
            request.chat_session_id,
            request.recommended_message_id,
        )
        return m.preflight_pb(await h.preflight_run(cmd, self._deps))

    async def CreateRun(self, request: pb.CreateRunRequest, context: Context) -> pb.CreateRunResponse:
        cmd = c.CreateRun(
            project_id=request.project_id,
            mode=m.MODE.from_proto(request.mode, "mode"),
            parameters=m.parameters(request.parameters),
            chat_session_id=request.chat_session_id,
            recommended_message_id=request.recommended_message_id,
            ui_trigger_id=request.ui_trigger_id,
            ui_trigger_source=m.TRIGGER_SOURCE.from_proto(request.ui_trigger_source, "ui_trigger_source"),
            ui_trigger_metadata=struct_to_dict(request.ui_trigger_metadata),
            replay_of_run_id=request.replay_of_run_id,
            snapshot_test_id=request.snapshot_test_id,
        )
        return pb.CreateRunResponse(run=m.run_pb(await h.create_run(cmd, self._deps)))

    async def ExecuteRun(self, request: pb.ExecuteRunRequest, context: Context) -> pb.ExecuteRunResponse:
        cmd = c.ExecuteRun(request.run_id, m.phases(list(request.phases)))
        return pb.ExecuteRunResponse(run=m.run_pb(await h.execute_run(cmd, self._deps)))

    async def GetRun(self, request: pb.GetRunRequest, context: Context) -> pb.GetRunResponse:
        return pb.GetRunResponse(run=m.run_pb(await h.show_run(request.run_id, self._deps.uow)))

    async def ListRuns(self, request: pb.ListRunsRequest, context: Context) -> pb.ListRunsResponse:
        cmd = c.ListRuns(
            request.project_id, m.STATUS.from_proto(request.status, "status"), request.page_size, request.page_token
        )
        runs, token = await h.list_runs(cmd, self._deps.uow)
        return pb.ListRunsResponse(runs=[m.run_pb(r) for r in runs], next_page_token=token)

    async def WatchRun(self, request: pb.WatchRunRequest, context: Context) -> AsyncIterator[pb.WatchRunResponse]:
        cmd = c.WatchRun(request.run_id, request.after_sequence)
        async for event in h.watch_run(cmd, self._deps.uow, self._deps.updates):
            yield pb.WatchRunResponse(event=m.event_pb(event))

    async def CancelRun(self, request: pb.CancelRunRequest, context: Context) -> pb.CancelRunResponse:
        run = await h.cancel_run(c.CancelRun(request.run_id, request.reason), self._deps)
        return pb.CancelRunResponse(run=m.run_pb(run))

    async def ListCandidates(self, request: pb.ListCandidatesRequest, context: Context) -> pb.ListCandidatesResponse:
        cmd = c.ListRunItems(request.run_id, request.page_size, request.page_token)
        items, token = await h.list_candidates(cmd, self._deps.uow)
        return pb.ListCandidatesResponse(candidates=[m.candidate_pb(x) for x in items], next_page_token=token)

    async def ListScenarios(self, request: pb.ListScenariosRequest, context: Context) -> pb.ListScenariosResponse:
        cmd = c.ListRunItems(request.run_id, request.page_size, request.page_token)
        items, token = await h.list_scenarios(cmd, self._deps.uow)
        return pb.ListScenariosResponse(scenarios=[m.scenario_pb(x) for x in items], next_page_token=token)

    async def ListEvaluations(self, request: pb.ListEvaluationsRequest, context: Context) -> pb.ListEvaluationsResponse:
        cmd = c.ListRunItems(request.run_id, request.page_size, request.page_token, request.candidate_id)
        items, token = await h.list_evaluations(cmd, self._deps.uow)
        return pb.ListEvaluationsResponse(evaluations=[m.evaluation_pb(x) for x in items], next_page_token=token)

    async def GetRunResults(self, request: pb.GetRunResultsRequest, context: Context) -> pb.GetRunResultsResponse:
        run, ranking = await h.run_results(request.run_id, self._deps.uow)
        return pb.GetRunResultsResponse(run_id=run.id, candidates=[m.ranked_pb(r) for r in ranking])

    async def GetRunStatistics(
        self, request: pb.GetRunStatisticsRequest, context: Context
    ) -> pb.GetRunStatisticsResponse:
        statistics = await h.run_statistics(request.run_id, self._deps.uow, self._deps.models)
        return pb.GetRunStatisticsResponse(statistics=m.statistics_pb(statistics))

    async def GetRunLineage(self, request: pb.GetRunLineageRequest, context: Context) -> pb.GetRunLineageResponse:
        return pb.GetRunLineageResponse(lineage=m.lineage_pb(await h.get_lineage(request.run_id, self._deps)))
