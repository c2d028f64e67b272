"""The snapshot service's client of the run service: runs' metrics, estimates, and the replays' runs.

A replay's run is created like any run, by an explicit trigger (source SNAPSHOT_TEST): the replay
request's own trigger id, or in a suite one derived from the suite's, so creating it again answers
the same run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

import grpc

from crucible.run.v1 import run_service_pb2 as pb
from crucible_common.enums import enum_names, short_names
from crucible_common.errors import details_of, relayed
from crucible_common.protobuf import struct
from crucible_snapshot.adapters.grpc_calls import call, call_or_none, translated
from crucible_snapshot.domain.model import ENDED_RUN_STATUSES, RunMetrics, RunPhase
from crucible_snapshot.domain.snapshot_data import RunConfig, RunParameters, SeedCandidate
from crucible_snapshot.service_layer.ports import NewRun, RunInfo, RunService

if TYPE_CHECKING:  # the async stub type exists only in the generated .pyi
    from crucible.run.v1.run_service_pb2_grpc import RunServiceAsyncStub

logger = logging.getLogger(__name__)

STATUSES = short_names(pb.RunStatus)
MODES = enum_names(pb.RunMode)
PHASES = {name: number for number, name in enum_names(pb.RunPhase).items()}
# Failures of the watch itself (the run service restarting), not of the run: watch again.
_AWAY = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
WATCH_RETRY_SECONDS = 1.0
# The run service's largest page: a run has at most 100 candidates (50 seeds, 50 designed).
CANDIDATE_PAGE = 100


# The limits a run's parameters may leave unset (proto3 optional fields).
LIMITS: tuple[Literal["budget_tokens", "budget_usd", "max_runtime_s"], ...] = (
    "budget_tokens",
    "budget_usd",
    "max_runtime_s",
)


def _config(run: pb.Run) -> RunConfig:
    p = run.parameters
    limits = {name: getattr(p, name) for name in LIMITS if p.HasField(name)}
    drafts = tuple(SeedCandidate(d.title, d.description, d.approach, tuple(d.assumptions)) for d in p.seed_candidates)
    counts = RunParameters(p.num_candidates, p.num_scenarios, tuple(p.seed_candidate_ids), seed_candidates=drafts)
    return RunConfig(MODES.get(run.mode, "full_search"), replace(counts, **limits))


def _parameters_pb(p: RunParameters) -> pb.RunParameters:
    limits = {name: value for name in LIMITS if (value := getattr(p, name)) is not None}
    return pb.RunParameters(
        num_candidates=p.num_candidates,
        num_scenarios=p.num_scenarios,
        seed_candidate_ids=list(p.seed_candidate_ids),
        seed_candidates=[
            pb.CandidateDraft(title=d.title, description=d.description, approach=d.approach, assumptions=d.assumptions)
            for d in p.seed_candidates
        ],
        **limits,
    )


def _mode_pb(mode: str) -> pb.RunMode.ValueType:
    return pb.RunMode.ValueType(next((n for n, name in MODES.items() if name == mode), 0))


def _info(run: pb.Run) -> RunInfo:
    return RunInfo(run.id, run.project_id, STATUSES.get(run.status, ""), _config(run), run.failure_reason)


def metrics_of(run: pb.Run, statistics: pb.RunStatistics) -> RunMetrics:
    """The run's metrics: one definition for a reference run and for a replay."""
    top = statistics.top_candidate if statistics.HasField("top_candidate") else None
    status = STATUSES.get(statistics.status, "")
    usage = statistics.usage
    return RunMetrics(
        run_id=run.id,
        status=status,
        candidates=statistics.counts.candidates,
        scenarios=statistics.counts.scenarios,
        evaluations=statistics.counts.evaluations,
        failed_evaluations=statistics.counts.failed_evaluations,
        coverage=statistics.coverage,
        hard_constraint_violations=statistics.hard_constraint_violations,
        # The statistics say 0 for a run that has not ended: unknown then, not instant.
        duration_seconds=statistics.duration_seconds if run.HasField("end_time") else None,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        usd=usage.usd,
        llm_calls=usage.calls,
        unpriced_calls=usage.unpriced_calls,
        error_summary="; ".join(s for s in (statistics.failure_reason, statistics.error_summary) if s)[:2_000],
        top_i=top.i if top else None,
        top_p=top.p if top else None,
        top_r=top.r if top else None,
        top_candidate_id=top.candidate_id if top else "",
        failure_reason=statistics.failure_reason,
    )


class RunClient(RunService):
    def __init__(self, stub: RunServiceAsyncStub, *, timeout: float, wait_seconds: float) -> None:
        self._stub = stub
        self._timeout = timeout
        self._wait = wait_seconds

    async def get_run(self, run_id: str) -> RunInfo | None:
        found = await call_or_none(
            lambda: self._stub.GetRun(pb.GetRunRequest(run_id=run_id), timeout=self._timeout, wait_for_ready=True)
        )
        return _info(found.run) if found is not None else None

    async def metrics(self, run_id: str) -> RunMetrics:
        run, statistics = await asyncio.gather(
            call(
                lambda: self._stub.GetRun(pb.GetRunRequest(run_id=run_id), timeout=self._timeout, wait_for_ready=True)
            ),
            call(
                lambda: self._stub.GetRunStatistics(
                    pb.GetRunStatisticsRequest(run_id=run_id), timeout=self._timeout, wait_for_ready=True
                )
            ),
        )
        return metrics_of(run.run, statistics.statistics)

    async def seed_candidates(self, run_id: str) -> tuple[SeedCandidate, ...]:
        seeds: list[SeedCandidate] = []
        token = ""
        while True:
            request = pb.ListCandidatesRequest(run_id=run_id, page_size=CANDIDATE_PAGE, page_token=token)
            page = await call_or_none(
                lambda: self._stub.ListCandidates(request, timeout=self._timeout, wait_for_ready=True)  # noqa: B023
            )
            if page is None:
                return ()  # the run is gone (its project deleted): it has no seeds to give
            seeds += [
                SeedCandidate(c.title, c.description, c.approach, tuple(c.assumptions), c.source_candidate_id)
                for c in page.candidates
                if c.origin == pb.CANDIDATE_ORIGIN_SEED
            ]
            token = page.next_page_token
            if not token:
                return tuple(seeds)

    async def estimate_usd(self, project_id: str, config: RunConfig) -> float | None:
        request = pb.PreflightRunRequest(
            project_id=project_id, mode=_mode_pb(config.mode), parameters=_parameters_pb(config.parameters)
        )
        answer = await call(lambda: self._stub.PreflightRun(request, timeout=self._timeout, wait_for_ready=True))
        estimate = answer.estimated_cost
        return estimate.usd if estimate.HasField("usd") else None

    async def create_run(self, new: NewRun) -> RunInfo:
        request = pb.CreateRunRequest(
            project_id=new.project_id,
            mode=_mode_pb(new.config.mode),
            parameters=_parameters_pb(new.config.parameters),
            ui_trigger_id=new.trigger_id,
            ui_trigger_source=pb.TRIGGER_SOURCE_SNAPSHOT_TEST,
            ui_trigger_metadata=struct(new.trigger_metadata),
            replay_of_run_id=new.replay_of_run_id,
            snapshot_test_id=new.snapshot_test_id,
        )
        created = await call(lambda: self._stub.CreateRun(request, timeout=self._timeout, wait_for_ready=True))
        return _info(created.run)

    async def execute_run(self, run_id: str, phases: tuple[RunPhase, ...]) -> RunInfo:
        request = pb.ExecuteRunRequest(run_id=run_id, phases=[pb.RunPhase.ValueType(PHASES[p.value]) for p in phases])
        try:
            executed = await self._stub.ExecuteRun(request, timeout=self._timeout, wait_for_ready=True)
        except grpc.aio.AioRpcError as exc:
            if details_of(exc).reason != "RUN_NOT_CREATED":
                raise translated(exc) from exc
            # Started already (a retried request, a resumed suite): it is that run's to finish.
            found = await self.get_run(run_id)
            assert found is not None, "the run service keeps its runs"
            return found
        return _info(executed.run)

    async def cancel_run(self, run_id: str, reason: str) -> None:
        request = pb.CancelRunRequest(run_id=run_id, reason=reason)
        try:
            await self._stub.CancelRun(request, timeout=self._timeout, wait_for_ready=True)
        except grpc.aio.AioRpcError as exc:
            if details_of(exc).reason != "RUN_FINISHED":
                raise translated(exc) from exc

    async def wait_ended(self, run_id: str) -> RunInfo:
        """Follow the run's events until the stream ends (the run ended, its summary posted).

        A watch cut short by the run service restarting is resumed after the last event seen; the
        run service being away longer than ``wait_seconds`` at a stretch fails the wait.
        """
        after = 0
        away_since: float | None = None
        while True:
            try:
                stream = self._stub.WatchRun(
                    pb.WatchRunRequest(run_id=run_id, after_sequence=after), wait_for_ready=True
                )
                async for response in stream:
                    after = response.event.sequence
                    away_since = None
                found = await self.get_run(run_id)
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in _AWAY:
                    raise relayed(exc) from exc
                away_since = away_since or time.monotonic()
                if time.monotonic() - away_since > self._wait:
                    raise translated(exc) from exc
                logger.info("watching run %s: the run service is away (%s); watching again", run_id, exc.code().name)
                await asyncio.sleep(WATCH_RETRY_SECONDS)
                continue
            if found is not None and found.status in ENDED_RUN_STATUSES:
                return found
            await asyncio.sleep(WATCH_RETRY_SECONDS)
