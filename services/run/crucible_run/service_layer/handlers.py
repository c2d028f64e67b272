"""The run context's use cases: preflight, create (only by an explicit trigger), execute, and the reads."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from crucible_common.errors import FieldViolation, PreconditionViolation, ValidationFailed
from crucible_common.ids import parse_id
from crucible_common.leases import Workers
from crucible_common.pagination import Cursor, page_request, split_page, time_cursor
from crucible_run.domain import preflight as rules
from crucible_run.domain.errors import (
    ProjectNotFound,
    RecommendationInvalid,
    ReplaySourceNotEnded,
    ReplaySourceNotFound,
    RunBlocked,
    RunFinished,
    RunNotCreated,
    RunNotFound,
    TriggerRequired,
    TriggerReused,
)
from crucible_run.domain.events import NewRunEvent, RunCreated, RunEnded, RunEvent, RunEventType, RunStarted
from crucible_run.domain.lineage import ChatMessage, RunLineage, lineage_refs, run_lineage
from crucible_run.domain.model import (
    BlockerCode,
    Candidate,
    Evaluation,
    EvaluationStatus,
    JsonObject,
    RankedCandidate,
    Run,
    RunStatistics,
    RunStatus,
    Scenario,
    Trigger,
    TriggerSource,
    with_needs,
)
from crucible_run.domain.spans import RECOMMENDATION_TRACE_KEY, recommendation_span
from crucible_run.service_layer import commands as c
from crucible_run.service_layer import prompts, tracing
from crucible_run.service_layer.ports import Models, SpecService, TraceStore, Updates
from crucible_run.service_layer.unit_of_work import RUN, AbstractUnitOfWork, UowFactory

logger = logging.getLogger(__name__)

MAX_TRIGGER_ID = 200
MAX_TRIGGER_METADATA_KEYS = 50
MAX_TRIGGER_METADATA_BYTES = 16 * 1024
# What the agent service's correlation ids hold.
MAX_SNAPSHOT_TEST_ID = 100
# A watcher is woken by each commit of the run's events; it also looks this often regardless.
WATCH_FALLBACK_SECONDS = 1.0
# ... and reads at most this often, so a run's evaluations (fifty finishing in a burst, a commit
# every few) reach each watcher as a few reads a second, not one a commit: five a second is smooth
# for a progress bar, and a run's end is read at once (``Waiter.pause``). At 0.05 s a watcher read
# some 25 times in a run of ``make bench BENCH=run_pipeline``, at a cost in the run service's CPU
# of 0.1-0.3 ms per evaluation.
WATCH_MIN_INTERVAL_SECONDS = 0.2
WATCH_PAGE = 500


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PipelineModels:
    """Who designs and who evaluates: the models preflight prices."""

    designer: tuple[str, str]
    evaluator: tuple[str, str]


@dataclass(frozen=True)
class RunDeps:
    uow: UowFactory
    spec: SpecService
    models: Models
    pipeline_models: PipelineModels
    scheduler: Workers
    owner: str
    updates: Updates
    traces: TraceStore


# ---------------------------------------------------------------- preflight and create


async def preflight_run(cmd: c.PreflightRun, deps: RunDeps) -> rules.Preflight:
    return (await _preflight(cmd, deps))[0]


async def _preflight(cmd: c.PreflightRun, deps: RunDeps) -> tuple[rules.Preflight, JsonObject | None]:
    """The preflight, and the recommendation's config it checked (None without one, or an invalid one)."""
    project_id = parse_id(cmd.project_id, "project_id")
    # Three questions to two services that do not depend on one another, asked at once (one after
    # the other, they were most of a preflight's time): a missing project has no problem to read.
    exists, problem, pricing = await asyncio.gather(
        deps.spec.project_exists(project_id),
        deps.spec.problem(project_id),
        deps.models.prices([deps.pipeline_models.designer, deps.pipeline_models.evaluator]),
    )
    if not exists:
        raise ProjectNotFound(project_id)
    async with deps.uow(read_only=True) as uow:
        named = [s for s in cmd.parameters.seed_candidate_ids if _is_uuid(s)]
        known = await uow.repo.project_candidates(project_id, named) if named else []
        latest = await uow.repo.latest_completed_candidates(project_id)
    facts = rules.Facts(
        problem_spec=problem.has_problem_spec,
        world_model=problem.has_world_model,
        resolution=problem.problem.resolution if problem.problem else "medium",
        # The counts' digits aside (0 stands for a default), these are the prompts the run will send;
        # with no problem yet (a blocker), what the calls read besides it.
        prompts=prompts.sizes(
            problem.problem or prompts.NO_PROBLEM,
            cmd.parameters.num_candidates,
            cmd.parameters.num_scenarios,
        ),
        known_seeds=frozenset(x.id for x in known),
        latest_run_candidates=tuple(x.id for x in latest),
        designer=pricing.prices[0],
        evaluator=pricing.prices[1],
        seed_chars={x.id: prompts.candidate_chars(x) for x in (*known, *latest)},
        draft_chars=tuple(prompts.candidate_chars(d) for d in cmd.parameters.seed_candidates),
    )
    result = rules.preflight(cmd.mode, cmd.parameters, facts)
    extra, recommended = await _context_blockers(project_id, cmd.chat_session_id, cmd.recommended_message_id, deps.spec)
    if not extra:
        return result, recommended
    blocked = rules.Preflight(
        False,
        (*result.blockers, *extra),
        result.warnings,
        result.config,
        result.prerequisites,
        result.notes,
        result.estimate,
    )
    return blocked, recommended


async def create_run(cmd: c.CreateRun, deps: RunDeps) -> Run:
    """A CREATED run, only by an explicit action; the same trigger again returns the same run."""
    trigger_id = cmd.ui_trigger_id.strip()
    if not trigger_id:
        raise TriggerRequired
    problems = []
    if len(trigger_id) > MAX_TRIGGER_ID:
        problems.append(FieldViolation("ui_trigger_id", f"at most {MAX_TRIGGER_ID} characters"))
    if len(cmd.ui_trigger_metadata) > MAX_TRIGGER_METADATA_KEYS:
        problems.append(FieldViolation("ui_trigger_metadata", f"at most {MAX_TRIGGER_METADATA_KEYS} keys"))
    elif len(json.dumps(cmd.ui_trigger_metadata).encode()) > MAX_TRIGGER_METADATA_BYTES:
        # Every read of the run carries it: a list of runs must still fit in one message.
        problems.append(
            FieldViolation("ui_trigger_metadata", f"at most {MAX_TRIGGER_METADATA_BYTES // 1024} KiB as JSON")
        )
    if len(cmd.snapshot_test_id) > MAX_SNAPSHOT_TEST_ID:
        problems.append(FieldViolation("snapshot_test_id", f"at most {MAX_SNAPSHOT_TEST_ID} characters"))
    if problems:
        raise ValidationFailed(problems, "run trigger")
    project_id = parse_id(cmd.project_id, "project_id")
    replay_of = parse_id(cmd.replay_of_run_id, "replay_of_run_id") if cmd.replay_of_run_id else ""
    async with deps.uow(read_only=True) as uow:
        existing = await uow.repo.run_by_trigger(trigger_id)
        source = await uow.repo.get_run(replay_of) if replay_of else None
    if existing is not None:
        if existing.project_id != project_id:
            raise TriggerReused(trigger_id, existing.id)
        return existing
    if replay_of:
        # Only an ended run's calls are all stored: a running one's would answer part of the replay.
        if source is None:
            raise ReplaySourceNotFound(replay_of)
        if not source.status.finished:
            raise ReplaySourceNotEnded(replay_of, source.status.value)
    check, snapshot = await _preflight(
        c.PreflightRun(project_id, cmd.mode, cmd.parameters, cmd.chat_session_id, cmd.recommended_message_id), deps
    )
    if not check.ready:
        raise RunBlocked(
            [PreconditionViolation(b.code.value, b.field or project_id, b.message) for b in check.blockers]
        )
    if snapshot is not None and recommendation_span(snapshot) is None and RECOMMENDATION_TRACE_KEY in snapshot:
        # The run is created all the same; only the link from its span to the recommendation is lost.
        logger.warning("recommendation %s has no valid trace context to link to", cmd.recommended_message_id)
    message_id = parse_id(cmd.recommended_message_id, "recommended_message_id") if cmd.recommended_message_id else ""
    with tracing.tracer.start_as_current_span(
        tracing.CREATE_RUN_SPAN,
        links=tracing.recommendation_link(snapshot, message_id),
        attributes={"crucible.project_id": project_id, "crucible.trigger_id": trigger_id},
    ) as span:
        at = now()
        run = Run(
            id=str(uuid.uuid4()),
            project_id=project_id,
            mode=check.config.mode,
            parameters=check.config.parameters,
            status=RunStatus.CREATED,
            trigger=Trigger(
                trigger_id, cmd.ui_trigger_source or TriggerSource.API_CLIENT, dict(cmd.ui_trigger_metadata), at
            ),
            chat_session_id=parse_id(cmd.chat_session_id, "chat_session_id") if cmd.chat_session_id else "",
            recommended_message_id=message_id,
            recommended_config_snapshot=snapshot,
            created_at=at,
            create_span=tracing.ref_of(span),
            replay_of_run_id=replay_of,
            snapshot_test_id=cmd.snapshot_test_id,
        )
        async with deps.uow() as uow:
            if not await uow.repo.add_run(run):
                # Another request with the same trigger won the race: its run is the run.
                await uow.rollback()
                winner = await uow.repo.run_by_trigger(trigger_id)
                assert winner is not None
                span.set_attribute("crucible.run_id", winner.id)
                if winner.project_id != project_id:
                    # As when the trigger is found before: it names another project's run.
                    raise TriggerReused(trigger_id, winner.id)
                return winner
            created = RunCreated(run.mode.value, run.trigger.id, run.trigger.source.value)
            await uow.repo.add_event(run.id, NewRunEvent(RunEventType.RUN_CREATED, created), at)
            await uow.commit()
        span.set_attribute("crucible.run_id", run.id)
    return run


async def execute_run(cmd: c.ExecuteRun, deps: RunDeps) -> Run:
    """Start a created run in the background, on a copy of the project's problem as it is now."""
    run = await get_run(cmd.run_id, deps.uow)
    if run.status is not RunStatus.CREATED:
        raise RunNotCreated(run.id, run.status.value)
    # Its project may have been deleted since the run was created: then it has no problem to run.
    exists, problem = await asyncio.gather(deps.spec.project_exists(run.project_id), deps.spec.problem(run.project_id))
    if not exists:
        raise ProjectNotFound(run.project_id)
    missing = [
        PreconditionViolation(code, run.project_id, message)
        for code, message, ok in (
            ("missing_problem_spec", "the ProblemSpec has no constraint and no goal", problem.has_problem_spec),
            ("missing_world_model", "the WorldModel has no item", problem.has_world_model),
        )
        if not ok
    ]
    if missing or problem.problem is None:
        raise RunBlocked(missing)
    phases = with_needs(cmd.phases)
    at = now()
    async with deps.uow() as uow:
        current = await uow.repo.get_run(run.id, for_update=True)
        if current is None or current.status is not RunStatus.CREATED:
            raise RunNotCreated(run.id, current.status.value if current else "gone")
        with tracing.execution_root(run, phases) as root:
            await uow.repo.start(run.id, phases, problem.problem, at, root)
            lease = await uow.take_lease(RUN, run.id, deps.owner)
            await uow.repo.add_event(run.id, NewRunEvent(RunEventType.RUN_STARTED, RunStarted(phases)), at)
            await uow.commit()
    deps.scheduler.launch(lease)
    return await get_run(run.id, deps.uow)


async def cancel_run(cmd: c.CancelRun, deps: RunDeps) -> Run:
    """Stop a run: its lease is taken from whoever executes it, so no process stores one more step."""
    run_id = parse_id(cmd.run_id, "run_id")
    reason = f"cancelled: {cmd.reason.strip()[:500] or 'no reason given'}"
    at = now()
    async with deps.uow() as uow:
        run = await uow.repo.get_run(run_id, for_update=True)
        if run is None:
            raise RunNotFound(run_id)
        if run.status.finished:
            raise RunFinished(run_id, run.status.value)
        ran = run.status is RunStatus.RUNNING
        await uow.repo.finish(
            run_id,
            RunStatus.CANCELLED,
            failure_reason=reason,
            error_summary=run.error_summary,
            counts=await uow.repo.counts(run_id),
            usage=run.usage,
            at=at,
            summary_pending=ran,
        )
        ended = NewRunEvent(RunEventType.RUN_CANCELLED, RunEnded(RunStatus.CANCELLED, reason))
        await uow.repo.add_event(run_id, ended, at)
        # Taking the lease fences the runner out; this process then posts the summary.
        lease = await uow.take_lease(RUN, run_id, deps.owner) if ran else None
        await uow.commit()
    deps.scheduler.stop(run_id)
    if lease is not None:
        await deps.scheduler.wait(run_id)
        deps.scheduler.launch(lease)
    return await get_run(run_id, deps.uow)


# ---------------------------------------------------------------- reads


async def get_run(run_id: str, uow: UowFactory) -> Run:
    async with uow(read_only=True) as unit:
        return await _required(unit, run_id)


async def show_run(run_id: str, uow: UowFactory) -> Run:
    """A run as GetRun shows it (see ``_as_shown``)."""
    async with uow(read_only=True) as unit:
        return await _as_shown(unit, await _required(unit, run_id))


async def _required(unit: AbstractUnitOfWork, run_id: str) -> Run:
    """The run by its id as a client sent it: INVALID_ARGUMENT when it is no id, NOT_FOUND when no run has it."""
    run_id = parse_id(run_id, "run_id")
    run = await unit.repo.get_run(run_id)
    if run is None:
        raise RunNotFound(run_id)
    return run


async def _as_shown(unit: AbstractUnitOfWork, run: Run) -> Run:
    """A run as its readers see it: one that runs with its counts so far (stored whole when it ends)."""
    return replace(run, counts=await unit.repo.counts(run.id)) if run.status is RunStatus.RUNNING else run


async def list_runs(cmd: c.ListRuns, uow: UowFactory) -> tuple[list[Run], str]:
    """A project's runs, newest first; a RUNNING one with its counts so far, as GetRun shows it.

    Whether the project exists is not asked here: a read of this service's own table does not wait
    on the spec service (the gateway answers a project it does not know with a 404)."""
    project_id = parse_id(cmd.project_id, "project_id")
    scope = f"runs:{project_id}:{cmd.status.value if cmd.status else ''}"
    page = page_request(cmd.page_size, cmd.page_token, scope=scope)
    async with uow(read_only=True) as unit:
        rows = await unit.repo.list_runs(
            project_id, cmd.status, page.size + 1, (page.after.time, page.after.id) if page.after else None
        )
        rows = [await _as_shown(unit, r) for r in rows]
    return split_page(rows, page, time_cursor, scope=scope)


async def list_candidates(cmd: c.ListRunItems, uow: UowFactory) -> tuple[list[Candidate], str]:
    run = await get_run(cmd.run_id, uow)
    scope = f"candidates:{run.id}"
    page = page_request(cmd.page_size, cmd.page_token, scope=scope, key="position")
    async with uow(read_only=True) as unit:
        rows = await unit.repo.candidates(run.id, page.size + 1, int(page.after.key) if page.after else -1)
    return split_page(rows, page, lambda x: Cursor(str(x.position), x.id), scope=scope)


async def list_scenarios(cmd: c.ListRunItems, uow: UowFactory) -> tuple[list[Scenario], str]:
    run = await get_run(cmd.run_id, uow)
    scope = f"scenarios:{run.id}"
    page = page_request(cmd.page_size, cmd.page_token, scope=scope, key="position")
    async with uow(read_only=True) as unit:
        rows = await unit.repo.scenarios(run.id, page.size + 1, int(page.after.key) if page.after else -1)
    return split_page(rows, page, lambda x: Cursor(str(x.position), x.id), scope=scope)


async def list_evaluations(cmd: c.ListRunItems, uow: UowFactory) -> tuple[list[Evaluation], str]:
    run = await get_run(cmd.run_id, uow)
    candidate_id = parse_id(cmd.candidate_id, "candidate_id") if cmd.candidate_id else ""
    scope = f"evaluations:{run.id}:{candidate_id}"
    page = page_request(cmd.page_size, cmd.page_token, scope=scope)
    async with uow(read_only=True) as unit:
        rows = await unit.repo.evaluations(
            run.id, candidate_id, page.size + 1, (page.after.time, page.after.id) if page.after else None
        )
    return split_page(rows, page, time_cursor, scope=scope)


async def run_results(run_id: str, uow: UowFactory) -> tuple[Run, list[RankedCandidate]]:
    run = await get_run(run_id, uow)
    async with uow(read_only=True) as unit:
        return run, await unit.repo.ranking(run.id)


async def run_statistics(run_id: str, uow: UowFactory, models: Models) -> RunStatistics:
    run = await get_run(run_id, uow)
    async with uow(read_only=True) as unit:
        candidates = await unit.repo.candidates(run.id)
        scenarios = await unit.repo.scenarios(run.id)
        done = await unit.repo.evaluated_pairs(run.id, EvaluationStatus.SUCCEEDED)
        ranking = await unit.repo.ranking(run.id)
        counts = await unit.repo.counts(run.id)
    pairs = [(x.id, s.id) for x in candidates for s in scenarios]
    # A run still going has spent what the agent service recorded so far, and so has a run cancelled
    # while it ran until its executor stores that account (with its summary).
    unaccounted = run.status is RunStatus.RUNNING or (run.status is RunStatus.CANCELLED and run.summary_pending)
    usage = await models.usage(run.id) if unaccounted else run.usage
    return RunStatistics(
        run_id=run.id,
        status=run.status,
        counts=counts,
        coverage=len(done) / len(pairs) if pairs else 0.0,
        missing_pairs=tuple(p for p in pairs if p not in done),
        duration_seconds=run.duration_seconds,
        usage=usage,
        top_candidate=next((r for r in ranking if not r.rejected and r.i is not None), None),
        hard_constraint_violations=sum(1 for r in ranking if r.rejected),
        error_summary=run.error_summary,
        failure_reason=run.failure_reason,
    )


async def watch_run(cmd: c.WatchRun, uow: UowFactory, updates: Updates) -> AsyncIterator[RunEvent]:
    """Every event after ``after_sequence``, then new ones, until the run has ended and its summary is posted."""
    run = await get_run(cmd.run_id, uow)
    cursor = cmd.after_sequence
    # Subscribed before the first read: nothing stored in between goes unnoticed.
    with updates.subscribe(run.id) as waiter:
        while True:
            read_at = time.monotonic()
            async with uow(read_only=True) as unit:
                # Status first: an end that commits between the two reads still has its event read.
                state = await unit.repo.run_state(run.id)
                events = await unit.repo.events(run.id, cursor, WATCH_PAGE)
            for event in events:
                cursor = event.sequence
                yield event
            over = state is None or state.over
            if over and not events:
                return
            if over or len(events) == WATCH_PAGE:
                continue
            # Whatever commits after the read above notifies the waiter, so it is safe to wait.
            # Then a pause, so that a burst (fifty evaluations finishing together) is one read
            # for each watcher, not fifty.
            await waiter.wait(WATCH_FALLBACK_SECONDS)
            await waiter.pause(read_at + WATCH_MIN_INTERVAL_SECONDS - time.monotonic())


async def get_lineage(run_id: str, deps: RunDeps) -> RunLineage:
    """Where the run came from and what it led to: its messages, its trigger, and the spans that link them."""
    return await lineage_of(await get_run(run_id, deps.uow), deps.spec, deps.traces)


async def lineage_of(run: Run, spec: SpecService, traces: TraceStore) -> RunLineage:
    async def message(message_id: str) -> ChatMessage | None:
        return await spec.chat_message(message_id) if message_id else None

    recommendation, summary, search = await asyncio.gather(
        message(run.recommended_message_id),
        message(run.run_summary_message_id),
        traces.find({ref.trace_id for _, ref in lineage_refs(run)}),
    )
    return run_lineage(run, recommendation, summary, search)


# ---------------------------------------------------------------- helpers


async def _context_blockers(
    project_id: str, chat_session_id: str, message_id: str, spec: SpecService
) -> tuple[list[rules.Blocker], JsonObject | None]:
    """A chat session or recommendation that is not this project's blocks the run (validation_error);
    with them, the recommendation's config (read once: CreateRun keeps it)."""
    blockers = []
    if chat_session_id and (
        not _is_uuid(chat_session_id) or await spec.chat_session_project(chat_session_id) != project_id
    ):
        blockers.append(_invalid("chat_session_id", "not a chat session of this project"))
    config = None
    if message_id:
        try:
            config = await _recommended_config(project_id, chat_session_id, message_id, spec)
        except RecommendationInvalid as exc:
            blockers.append(_invalid("recommended_message_id", exc.violations[0].description))
    return blockers, config


async def _recommended_config(
    project_id: str, chat_session_id: str, message_id: str, spec: SpecService
) -> JsonObject | None:
    """The recommended_run_config of the Architect message a run follows, checked to be this project's."""
    if not message_id:
        return None
    if not _is_uuid(message_id):
        raise RecommendationInvalid(message_id, "not a message id")
    found = await spec.chat_message(message_id)
    if found is None:
        raise RecommendationInvalid(message_id, "no such message")
    if found.project_id != project_id:
        raise RecommendationInvalid(message_id, "a message of another project")
    if chat_session_id and found.chat_session_id != chat_session_id:
        raise RecommendationInvalid(message_id, "a message of another chat session")
    config = found.metadata.get("recommended_run_config")
    if not found.from_agent or not isinstance(config, dict):
        raise RecommendationInvalid(message_id, "not an Architect message with a recommended_run_config")
    return config


def _invalid(field: str, message: str) -> rules.Blocker:
    return rules.Blocker(BlockerCode.VALIDATION_ERROR, f"{field}: {message}", field)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
