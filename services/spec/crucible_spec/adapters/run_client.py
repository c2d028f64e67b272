"""The spec service's client of the run service: preflight and reads, and nothing else.

This is the only place the spec context reaches the run service. It calls PreflightRun,
ListRuns and GetRunResults; it has no method that creates or executes a run, so the Architect
(or anything a chat message says) cannot start one. ``tests/unit/spec/test_run_contract.py``
checks that no code of the spec service names the RPCs that would.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc

from crucible.run.v1 import run_service_pb2 as pb
from crucible_common.enums import enum_names
from crucible_spec.domain.architect import Blocker, Preflight
from crucible_spec.domain.errors import RunServiceUnavailable
from crucible_spec.domain.model import RunMode
from crucible_spec.service_layer.architect import RankedDigest, RunAdvisor, RunDigest

if TYPE_CHECKING:  # the async stub type exists only in the generated .pyi
    from crucible.run.v1.run_service_pb2_grpc import RunServiceAsyncStub

_BLOCKERS = enum_names(pb.BlockerCode)
_WARNINGS = enum_names(pb.WarningCode)
_MODES = enum_names(pb.RunMode)
_STATUSES = {n: name.upper() for n, name in enum_names(pb.RunStatus).items()}
_LABELS = enum_names(pb.CandidateLabel)
_MODE_NUMBERS = {name: pb.RunMode.ValueType(number) for number, name in _MODES.items()}
# Results of this many of a run's best candidates go into an analysis prompt.
TOP_CANDIDATES = 3


class RunServiceAdvisor(RunAdvisor):
    def __init__(self, stub: RunServiceAsyncStub, *, timeout: float) -> None:
        self._stub = stub
        self._timeout = timeout

    async def preflight(
        self,
        project_id: str,
        chat_session_id: str,
        mode: RunMode | None,
        num_candidates: int,
        num_scenarios: int,
    ) -> Preflight:
        request = pb.PreflightRunRequest(
            project_id=project_id,
            mode=_MODE_NUMBERS[mode.value] if mode else pb.RUN_MODE_UNSPECIFIED,
            parameters=pb.RunParameters(num_candidates=num_candidates, num_scenarios=num_scenarios),
            chat_session_id=chat_session_id,
        )
        try:
            r = await self._stub.PreflightRun(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise RunServiceUnavailable(f"preflight: {exc.code().name}: {exc.details()}") from exc
        params = r.normalized_config.parameters
        parameters = {
            "num_candidates": params.num_candidates,
            "num_scenarios": params.num_scenarios,
            "seed_candidate_ids": list(params.seed_candidate_ids),
            "budget_tokens": params.budget_tokens if params.HasField("budget_tokens") else None,
            "budget_usd": params.budget_usd if params.HasField("budget_usd") else None,
            "max_runtime_s": params.max_runtime_s if params.HasField("max_runtime_s") else None,
        }
        cost = r.estimated_cost
        return Preflight(
            ready=r.ready,
            blockers=tuple(Blocker(_BLOCKERS.get(b.code, "validation_error"), b.message, b.field) for b in r.blockers),
            warnings=tuple(_WARNINGS.get(w.code, "") for w in r.warnings),
            mode=RunMode(_MODES.get(r.normalized_config.mode, RunMode.FULL_SEARCH.value)),
            parameters=parameters,
            prerequisites={
                "problem_spec": r.prerequisites.problem_spec,
                "world_model": r.prerequisites.world_model,
                "seed_candidates": r.prerequisites.seed_candidates,
            },
            notes=tuple(r.notes),
            estimated_tokens=cost.tokens,
            estimated_usd=cost.usd if cost.HasField("usd") else None,
            estimated_calls=cost.calls,
        )

    async def recent_runs(self, project_id: str, limit: int) -> tuple[RunDigest, ...]:
        try:
            listed = await self._stub.ListRuns(
                pb.ListRunsRequest(project_id=project_id, page_size=limit), timeout=self._timeout
            )
            results = await asyncio.gather(
                *(
                    self._stub.GetRunResults(pb.GetRunResultsRequest(run_id=run.id), timeout=self._timeout)
                    for run in listed.runs
                )
            )
        except grpc.aio.AioRpcError as exc:
            raise RunServiceUnavailable(f"runs of project {project_id}: {exc.code().name}") from exc
        return tuple(_digest(run, result) for run, result in zip(listed.runs, results, strict=True))


def _digest(run: pb.Run, result: pb.GetRunResultsResponse) -> RunDigest:
    return RunDigest(
        run_id=run.id,
        mode=_MODES.get(run.mode, ""),
        status=_STATUSES.get(run.status, ""),
        created_at=run.create_time.ToDatetime(),
        candidates=run.counts.candidates,
        scenarios=run.counts.scenarios,
        evaluations=run.counts.evaluations,
        failed_evaluations=run.counts.failed_evaluations,
        top=tuple(
            RankedDigest(
                candidate_id=c.candidate_id,
                title=c.title,
                label=_LABELS.get(c.label, ""),
                i=c.i if c.HasField("i") else None,
                p=c.p if c.HasField("p") else None,
                r=c.r if c.HasField("r") else None,
                rejected=c.rejected,
                violated_constraints=tuple(v.constraint for v in c.violated_constraints),
            )
            for c in result.candidates[:TOP_CANDIDATES]
        ),
    )
