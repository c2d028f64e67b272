"""The pipeline of one run: designers ∥ scenario generator, then the evaluations, then the I-ranker.

The executor works from what is stored, under the run's lease: each candidate, scenario and
evaluation is stored (fenced by the lease) as it completes, and every model call carries an
idempotency key (the run, the phase, the pair), so a run continued after a crash re-asks nothing
the agent service already answered and pays for nothing twice. Evaluations fan out under a
concurrency limit; a budget stops the run before a call would cross it; an evaluation that never
gets a valid answer fails alone, with its reason and raw answer, never with an invented score.
When the run ends, its summary is posted to the project's chat, once; a FAILED run of a project
with auto_snapshot_failed_runs is snapshotted, once. Both are steps after the end, kept as leased
work until done: a service that is away holds up neither the run's end nor the other step.

A recorded replay (``replay_of_run_id``) runs the same code; only its model calls are answered
from the replayed run's calls, so a call that run never made stops it: the replay diverged.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TypeVar

from opentelemetry.trace import Status, StatusCode

from crucible_common.batching import GroupCommit
from crucible_common.database import database_unavailable
from crucible_common.errors import Unavailable
from crucible_common.leases import HEARTBEAT_SECONDS, Lease, LeaseLost
from crucible_common.wording import counted
from crucible_run.domain import estimates as est
from crucible_run.domain.budget import Budget, BudgetExhausted, Reservation
from crucible_run.domain.estimates import ModelPrice
from crucible_run.domain.events import (
    ENDED,
    CandidateAdded,
    EvaluationDone,
    NewRunEvent,
    PhaseChanged,
    PhaseStarted,
    RunEnded,
    RunEventType,
    RunRanked,
    ScenarioAdded,
    SummaryPosted,
)
from crucible_run.domain.failure_snapshot import failure_snapshot, wants_snapshot
from crucible_run.domain.model import (
    Candidate,
    CandidateOrigin,
    ConstraintResult,
    Evaluation,
    EvaluationStatus,
    JsonObject,
    LlmUsage,
    ProblemCopy,
    Run,
    RunCounts,
    RunMode,
    RunPhase,
    RunStatus,
    Scenario,
    Score,
)
from crucible_run.domain.ranking import rank
from crucible_run.domain.summary import (
    run_rejections,
    run_summary,
    summary_message_id,
    summary_metadata,
    summary_text,
)
from crucible_run.service_layer import prompts, tracing
from crucible_run.service_layer.ports import (
    CallNotRecorded,
    ChatTarget,
    LeaseStore,
    ModelCall,
    ModelCallFailed,
    Models,
    SnapshotRefused,
    Snapshots,
    SpecService,
    SummaryRefused,
)
from crucible_run.service_layer.tracing import tracer
from crucible_run.service_layer.unit_of_work import AbstractUnitOfWork, UowFactory

logger = logging.getLogger(__name__)
# A failed evaluation's raw answer is kept up to this many characters (an evaluation's answer is
# about 2,000), to keep a page of evaluations small. The agent service's record of the call keeps
# it whole.
RAW_ANSWER_KEPT = 4_000
# The agent service's error carries the first 500 characters of a raw answer (GetLlmCall has the
# rest): a stored raw answer that long may be cut short.
ERROR_RAW_ANSWER_CHARS = 500
# At the run's end, the cut answers are asked for this many at a time, for this long in all.
WHOLE_ANSWER_READS = 8
WHOLE_ANSWERS_SECONDS = 10.0

T = TypeVar("T")

# How often a step after the end (the summary, the failure snapshot) is tried while its service is
# away, before the run is left for a later claim to try again.
AFTER_END_ATTEMPTS = 3


@dataclass(frozen=True)
class PipelineDeps:
    uow: UowFactory
    spec: SpecService
    models: Models
    leases: LeaseStore
    designer: tuple[str, str]
    evaluator: tuple[str, str]
    concurrency: int
    snapshots: Snapshots
    heartbeat_seconds: float = HEARTBEAT_SECONDS


class RunStopped(Exception):
    """The run stops early (budget, runtime, a phase that could not produce its output): FAILED, with why."""


class ReplayDiverged(RunStopped):
    """A recorded replay asked a call its source run never made: what it replays is no longer what ran."""


class RunExecutor:
    """Runs one run to its end from what is stored, while its caller holds the run's lease."""

    def __init__(self, deps: PipelineDeps, lease: Lease) -> None:
        self._deps = deps
        self._lease = lease
        self._run_id = lease.id
        self._project_id = ""
        self._replay_of = ""
        self._snapshot_test_id = ""
        # The designer's and the evaluator's prices, and how many times a structured call is asked.
        self._pricing = est.Pricing((est.UNPRICED, est.UNPRICED))
        # Set (and replaced) whenever a call in flight ends: what it held of the budget is free again.
        self._call_ended = asyncio.Event()
        # How many calls the design and scenario phases make at once (see ``_phases``).
        self._first_calls = 2
        # The refusal that stops the run: a call the budget had no room for, with none in flight.
        self._exhausted: BudgetExhausted | None = None
        # The agent service's account of the run, asked for once its last call has ended (see
        # ``_phases``): read while the ranker works, for ``_finish``.
        self._final_usage: asyncio.Future[LlmUsage] | None = None
        # PHASE_STARTED writes (see ``_announce``) that no write of the run has waited for yet.
        self._announcing: set[asyncio.Task[None]] = set()
        # The phases a runner before this one began (a continued run): their starts say so.
        self._started_before: set[RunPhase] = set()

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            await self._drop_announcements()

    async def _run(self) -> None:
        async with self._deps.uow(read_only=True) as uow:
            run = await uow.repo.get_run(self._run_id)
        if run is None:
            return
        self._project_id = run.project_id
        self._replay_of = run.replay_of_run_id
        self._snapshot_test_id = run.snapshot_test_id
        if run.status is RunStatus.RUNNING:
            if self._lease.token > 1:
                # ExecuteRun takes the first lease: a later one continues what another runner began.
                async with self._deps.uow(read_only=True) as uow:
                    self._started_before = await uow.repo.phases_started(run.id)
            run = await self._execute(run)
        if run.status.finished and run.summary_pending:
            if run.status is RunStatus.CANCELLED:
                run = await self._account(run)
            await self._post_summary(run)
        if run.status.finished and run.snapshot_pending:
            await self._snapshot_failure(run)

    # ------------------------------------------------------------ the phases

    async def _execute(self, run: Run) -> Run:
        assert run.problem is not None, "a running run has its copy of the problem"
        # Under the run's root, whichever process this is: a continued run stays in its one trace.
        # It also links to the root, as each span of the chain names the one it follows.
        with tracer.start_as_current_span(
            tracing.EXECUTOR_SPAN,
            context=tracing.under(run.trace_context),
            links=tracing.run_link(run),
            attributes={
                "crucible.run_id": run.id,
                "crucible.project_id": run.project_id,
                "crucible.run.mode": run.mode.value,
                "crucible.lease_token": self._lease.token,
                # ExecuteRun takes the first lease; any later one is a claim that continues the run.
                "crucible.run.continued": self._lease.token > 1,
            },
        ):
            status, reason = RunStatus.COMPLETED, ""
            try:
                # Two independent questions to the agent service, asked at once: the run's first
                # model call waits for both. What it spent is read once the calls a runner before
                # left in flight have ended, so that their cost is counted (asked again, their
                # keys are answered from what they stored, at no new cost).
                usage, pricing = await asyncio.gather(
                    self._deps.models.settled_usage(run.id),
                    self._deps.models.prices([self._deps.designer, self._deps.evaluator]),
                )
                budget = Budget.of(run.parameters, usage)
                self._pricing = pricing
                async with asyncio.timeout(self._remaining(run)):
                    await self._phases(run, run.problem, budget)
            except BudgetExhausted as stop:
                status, reason = RunStatus.FAILED, f"stopped before crossing the budget: {stop.reason}"
                await self._rank_what_was_found(run, budget)
            except TimeoutError:
                status, reason = RunStatus.FAILED, f"stopped at max_runtime_s ({run.parameters.max_runtime_s} s)"
                await self._rank_what_was_found(run, budget)
            except RunStopped as stop:
                status, reason = RunStatus.FAILED, str(stop)
            except LeaseLost:
                raise
            except Exception as exc:
                if database_unavailable(exc) or isinstance(exc, Unavailable):
                    raise  # not the run's failure: it goes on from what it stored (leases.Workers)
                logger.exception("run %s failed unexpectedly", run.id)
                status, reason = RunStatus.FAILED, f"internal error: {type(exc).__name__}"
            return await self._finish(run, status, reason)

    async def _rank_what_was_found(self, run: Run, budget: Budget) -> None:
        """A run stopped by one of its limits keeps what it found: the I-ranker ranks the evaluations
        it stored (a candidate evaluated in too few scenarios is UNDER_TEST), with no model call.

        Best effort: the run ends FAILED with its limit's reason whether or not this works, but for
        a lost lease or a service away, after which the run goes on from what it stored.
        """
        assert run.problem is not None
        try:
            async with self._deps.uow(read_only=True) as uow:
                # As stored now: the limit may have been met in the rank phase itself.
                current = await uow.repo.get_run(run.id)
                counts = await uow.repo.counts(run.id)
            if current is None or RunPhase.RANK not in current.phases or RunPhase.RANK in current.phases_done:
                return
            if counts.evaluations:
                self._announce([RunPhase.RANK])
                await self._phase(RunPhase.RANK, self._rank, run, run.problem, budget)
        except LeaseLost:
            raise
        except Exception as exc:
            if database_unavailable(exc) or isinstance(exc, Unavailable):
                raise
            logger.exception("run %s: what it found could not be ranked after its stop", run.id)

    def _remaining(self, run: Run) -> float | None:
        if run.parameters.max_runtime_s is None or run.started_at is None:
            return None
        elapsed = (datetime.now(UTC) - run.started_at).total_seconds()
        return max(0.0, run.parameters.max_runtime_s - elapsed)

    async def _phases(self, run: Run, problem: ProblemCopy, budget: Budget) -> None:
        todo = [p for p in run.phases if p not in run.phases_done]
        first = [p for p in (RunPhase.DESIGN, RunPhase.SCENARIOS) if p in todo]
        designs = RunPhase.DESIGN in first and run.mode is not RunMode.EVAL_ONLY and run.parameters.num_candidates > 0
        # The design and scenario calls are made at the same time: they share the budget's room.
        self._first_calls = int(designs) + int(RunPhase.SCENARIOS in first)
        # Designers and the scenario generator work at the same time; the first failure stops both.
        # Their starts in one write: two would take the run's lease row one after the other.
        self._announce(first)
        try:
            async with asyncio.TaskGroup() as group:
                for phase in first:
                    work = self._design if phase is RunPhase.DESIGN else self._scenarios
                    group.create_task(self._phase(phase, work, run, problem, budget))
        except BaseExceptionGroup as failed:
            raise _first(failed) from None
        if RunPhase.EVALUATE in todo:
            self._announce([RunPhase.EVALUATE])
            await self._phase(RunPhase.EVALUATE, self._evaluate, run, problem, budget)
        if RunPhase.RANK in todo:
            # Every call of the run has ended, and the ranker makes none: what they cost is final,
            # and is read while the ranker works. Kept only for a run whose phases all ended.
            usage = asyncio.ensure_future(self._deps.models.usage(run.id))
            try:
                self._announce([RunPhase.RANK])
                await self._phase(RunPhase.RANK, self._rank, run, problem, budget)
            except BaseException:
                usage.cancel()
                if not usage.cancelled():
                    usage.exception()  # read already, and failed: not an error never retrieved
                raise
            self._final_usage = usage

    async def _phase(
        self,
        phase: RunPhase,
        work: Callable[[Run, ProblemCopy, Budget], Awaitable[None]],
        run: Run,
        problem: ProblemCopy,
        budget: Budget,
    ) -> None:
        """A phase's work; its caller announces its start (``_announce``)."""
        with tracer.start_as_current_span(f"phase {phase.value}", attributes={"crucible.run.phase": phase.value}):
            try:
                await work(run, problem, budget)
            except ModelCallFailed as failed:
                raise RunStopped(f"{phase.value} failed: {failed.reason}: {failed.message}"[:2000]) from failed

    async def _design(self, run: Run, problem: ProblemCopy, budget: Budget) -> None:
        at = datetime.now(UTC)
        seeds: list[Candidate] = []
        if run.parameters.seed_candidate_ids:
            async with self._deps.uow(read_only=True) as uow:
                found = await uow.repo.project_candidates(run.project_id, run.parameters.seed_candidate_ids)
            seeds = [
                replace(
                    x,
                    id=str(uuid.uuid4()),
                    run_id=run.id,
                    origin=CandidateOrigin.SEED,
                    source_candidate_id=x.id,
                    created_at=at,
                    position=i,
                )
                for i, x in enumerate(found)
            ]
        seeds += [
            Candidate(
                str(uuid.uuid4()),
                run.id,
                x.title,
                x.description,
                x.approach,
                x.assumptions,
                CandidateOrigin.SEED,
                at,
                position=len(seeds) + i,
            )
            for i, x in enumerate(run.parameters.seed_candidates)
        ]
        designed: list[Candidate] = []
        count = run.parameters.num_candidates if run.mode is not RunMode.EVAL_ONLY else 0
        if count:
            prompt = prompts.design_prompt(problem, count)
            try:
                answer = await self._call(
                    budget,
                    "design",
                    self._deps.designer,
                    prompts.DESIGNER_SYSTEM,
                    prompt,
                    prompts.DESIGN_SCHEMA_NAME,
                    prompts.design_schema(count),
                    f"run:{run.id}:design",
                    est.design_output(count),
                    self._pricing.prices[0],
                    self._first_phase_calls,
                )
            finally:
                self._first_calls -= 1  # the other first-phase call may hold its room
            designed = [
                Candidate(
                    str(uuid.uuid4()),
                    run.id,
                    str(x["title"]),
                    str(x["description"]),
                    str(x["approach"]),
                    tuple(str(a) for a in x.get("assumptions", [])),
                    CandidateOrigin.DESIGNED,
                    at,
                    position=len(seeds) + i,
                )
                for i, x in enumerate(answer["candidates"][:count])
            ]
        candidates = [*seeds, *designed]
        # Added and done once the designers have answered, not when they were asked.
        ended = datetime.now(UTC)

        async def store(uow: AbstractUnitOfWork) -> None:
            await uow.repo.add_candidates(candidates)
            added = [
                NewRunEvent(RunEventType.CANDIDATE_ADDED, CandidateAdded(x.id, x.title, x.origin)) for x in candidates
            ]
            await uow.repo.add_events(run.id, [(event, ended) for event in added])
            await self._done(uow, RunPhase.DESIGN, ended, budget)

        await self._write(store)

    async def _scenarios(self, run: Run, problem: ProblemCopy, budget: Budget) -> None:
        count = run.parameters.num_scenarios
        prompt = prompts.scenarios_prompt(problem, count)
        try:
            answer = await self._call(
                budget,
                "scenarios",
                self._deps.designer,
                prompts.SCENARIO_SYSTEM,
                prompt,
                prompts.SCENARIOS_SCHEMA_NAME,
                prompts.scenarios_schema(count),
                f"run:{run.id}:scenarios",
                est.scenarios_output(count),
                self._pricing.prices[0],
                self._first_phase_calls,
            )
        finally:
            self._first_calls -= 1  # the other first-phase call may hold its room
        at = datetime.now(UTC)
        scenarios = [
            Scenario(
                str(uuid.uuid4()),
                run.id,
                str(x["title"]),
                str(x["description"]),
                tuple(str(c) for c in x.get("conditions", [])),
                str(x["severity"]),
                at,
                position=i,
            )
            for i, x in enumerate(answer["scenarios"][:count])
        ]

        async def store(uow: AbstractUnitOfWork) -> None:
            await uow.repo.add_scenarios(scenarios)
            added = [
                NewRunEvent(RunEventType.SCENARIO_ADDED, ScenarioAdded(s.id, s.title, s.severity)) for s in scenarios
            ]
            await uow.repo.add_events(run.id, [(event, at) for event in added])
            await self._done(uow, RunPhase.SCENARIOS, at, budget)

        await self._write(store)

    async def _evaluate(self, run: Run, problem: ProblemCopy, budget: Budget) -> None:
        async with self._deps.uow(read_only=True) as uow:
            candidates = await uow.repo.candidates(run.id)
            scenarios = await uow.repo.scenarios(run.id)
            # The pairs a runner before this one evaluated (a continued run): not their whole rows.
            seen = await uow.repo.evaluated_pairs(run.id)
        if not candidates or not scenarios:
            raise RunStopped(
                f"nothing to evaluate: {counted(len(candidates), 'candidate')}, {counted(len(scenarios), 'scenario')}"
            )
        # Scenario by scenario, every candidate in each: a run stopped early (its budget, its
        # max_runtime_s) has evaluated each candidate in as many scenarios as it could, so that all
        # are ranked on the same ground, rather than the first few in every scenario and the rest in none.
        pending = [(x, s) for s in scenarios for x in candidates if (x.id, s.id) not in seen]
        progress = _Progress(done=len(seen), total=len(candidates) * len(scenarios))
        queue = deque(pending)
        stop: list[BudgetExhausted] = []
        # Evaluations arrive a few milliseconds apart; a write waits 20 ms for the ones behind it.
        # What a crash loses in that window is answered again from the agent service's stored
        # calls (same idempotency keys), for free.
        writer = GroupCommit[Evaluation](
            lambda batch: self._store_evaluations(run.id, batch, budget, progress), linger=0.02
        )

        unanswered = len(pending)

        def slots() -> int:
            """How many evaluation calls may be in flight at once from now on."""
            return min(self._deps.concurrency, unanswered)

        async def evaluator(group: asyncio.TaskGroup) -> None:
            """One of the phase's callers (``concurrency`` of them, fewer for fewer pairs): the next
            pair as soon as its last answer is in.

            An answer's own task sends the next call: a slot handed back to a loop that then made a
            task for the next pair cost the call two turns of the event loop, each behind whatever
            else was ready (fifty answers' work, at its busiest).
            """
            nonlocal unanswered
            while queue and not stop:
                candidate, scenario = queue.popleft()
                try:
                    evaluation = await self._evaluate_pair(run, problem, candidate, scenario, budget, slots)
                except BudgetExhausted as exhausted:
                    # No new call starts; the calls in flight finish and are stored.
                    stop.append(exhausted)
                    unanswered -= len(queue)
                    queue.clear()
                    return
                finally:
                    unanswered -= 1
                    if unanswered == 0:
                        writer.flush()  # the last answers have no one behind them to wait for
                # Handed to the writer now (a phase stopped in this very turn still stores it), its
                # write awaited in the background, so that the next call is not held for it; a
                # write that fails (a lost lease) fails the group, as the call would have.
                group.create_task(_written(writer.submit(evaluation)))

        # Structured: should one evaluation fail unexpectedly (a lost lease, a lost database), the
        # others are cancelled with it rather than left running unowned.
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(self._deps.concurrency, len(pending))):
                    group.create_task(evaluator(group))
                    # The call is sent by a task of the gRPC channel's own, queued behind whatever
                    # is ready when the call is made: without this turn, a burst of fifty calls
                    # went out only once all fifty were made, and the agent service, idle
                    # meanwhile, began on the first 10-20 ms late (the runs' traces).
                    await asyncio.sleep(0)
        except BaseExceptionGroup as failed:
            raise _first(failed) from None
        finally:
            # However the phase ends (max_runtime_s, a lost lease), the answers already handed to
            # the writer are stored before the run's end counts what is stored.
            writer.flush()
            await writer.settled()
        if stop:
            raise stop[0]
        await self._write(lambda uow: self._done(uow, RunPhase.EVALUATE, datetime.now(UTC), budget))

    async def _evaluate_pair(
        self,
        run: Run,
        problem: ProblemCopy,
        candidate: Candidate,
        scenario: Scenario,
        budget: Budget,
        slots: Callable[[], int],
    ) -> Evaluation:
        prompt = prompts.evaluation_prompt(problem, candidate, scenario)
        try:
            answer = await self._call(
                budget,
                "evaluation",
                self._deps.evaluator,
                prompts.EVALUATOR_SYSTEM,
                prompt,
                prompts.EVALUATION_SCHEMA_NAME,
                prompts.EVALUATION_SCHEMA,
                f"run:{run.id}:evaluation:{candidate.id}:{scenario.id}",
                est.EVALUATION_OUTPUT,
                self._pricing.prices[1],
                slots,
            )
        except ModelCallFailed as failed:
            # The raw answer as far as the error carried it; the rest is had when the run ends.
            return Evaluation(
                str(uuid.uuid4()),
                run.id,
                candidate.id,
                scenario.id,
                EvaluationStatus.FAILED,
                datetime.now(UTC),
                failure_reason=f"{failed.reason}: {failed.message}"[:2000],
                raw_answer=failed.raw_answer[:RAW_ANSWER_KEPT],
                llm_call_id=failed.llm_call_id,
            )
        return _evaluation(run.id, candidate.id, scenario.id, problem, answer)

    async def _store_evaluations(
        self, run_id: str, batch: list[Evaluation], budget: Budget, progress: _Progress
    ) -> None:
        """Evaluations that completed while the previous write was in flight: one transaction for all."""
        events = []
        for evaluation in batch:
            progress.done += 1
            ok = evaluation.status is EvaluationStatus.SUCCEEDED
            events.append(
                NewRunEvent(
                    RunEventType.EVALUATION_COMPLETED if ok else RunEventType.EVALUATION_FAILED,
                    EvaluationDone(
                        evaluation.candidate_id,
                        evaluation.scenario_id,
                        progress.done,
                        progress.total,
                        round(budget.spent_usd, 6),
                        evaluation.p.overall if evaluation.p else None,
                        evaluation.r.overall if evaluation.r else None,
                        evaluation.failure_reason,
                        budget.unpriced_calls,
                    ),
                )
            )

        async def store(uow: AbstractUnitOfWork) -> None:
            await uow.repo.add_evaluations(batch)
            await uow.repo.add_events(run_id, [(event, e.created_at) for event, e in zip(events, batch, strict=True)])

        await self._write(store)

    async def _rank(self, run: Run, problem: ProblemCopy, budget: Budget) -> None:
        async with self._deps.uow(read_only=True) as uow:
            candidates = await uow.repo.candidates(run.id)
            scenarios = await uow.repo.scenarios(run.id)
            evaluations = await uow.repo.evaluations(run.id)
        ranking = rank(candidates, len(scenarios), evaluations)
        top = next((r for r in ranking if not r.rejected and r.i is not None), None)
        ranked = RunRanked(
            len(ranking), sum(1 for r in ranking if r.rejected), top.candidate_id if top else "", top.i if top else None
        )
        at = datetime.now(UTC)

        async def store(uow: AbstractUnitOfWork) -> None:
            await uow.repo.set_ranking(run.id, ranking)
            await uow.repo.add_event(run.id, NewRunEvent(RunEventType.RUN_RANKED, ranked), at)
            await self._done(uow, RunPhase.RANK, at, budget)

        await self._write(store)

    # ------------------------------------------------------------ calls and writes

    async def _call(
        self,
        budget: Budget,
        purpose: str,
        model: tuple[str, str],
        system: str,
        prompt: str,
        schema_name: str,
        schema: JsonObject,
        key: str,
        output_tokens: int,
        price: ModelPrice,
        slots: Callable[[], int],
    ) -> JsonObject:
        """One model call; ``slots``: how many calls may be in flight at once (see ``Budget.reserve``)."""
        estimate = est.of_call(system, prompt, schema, output_tokens, price)
        reservation = await self._reserve(
            budget, estimate, est.most(estimate, price, self._pricing.structured_attempts), slots
        )
        try:
            answer = await self._deps.models.complete(
                ModelCall(
                    purpose,
                    model[0],
                    model[1],
                    system,
                    prompt,
                    schema_name,
                    schema,
                    key,
                    self._project_id,
                    self._run_id,
                    replay_of_run_id=self._replay_of,
                    snapshot_test_id=self._snapshot_test_id,
                    allowance=reservation.allowance,
                )
            )
        except CallNotRecorded as missing:
            budget.release(reservation)
            # Not one failed evaluation among others: from here on the replay is not the run it replays.
            raise ReplayDiverged(
                f"the replay diverged from run {self._replay_of}: that run never made this {purpose} call "
                f"(request {missing.request_hash[:16]}…)"
            ) from missing
        except ModelCallFailed as failed:
            # No answer, but its attempts were paid: the budget counts them (the agent service
            # estimates those whose usage the provider did not report).
            # A model without a price: its paid attempts' cost is unknown.
            unpriced = reservation.estimate.usd is None and failed.tokens > 0
            budget.settle(reservation, failed.tokens, failed.usd, priced=not unpriced)
            raise
        except BaseException:
            budget.release(reservation)
            raise
        else:
            if answer.replayed:
                budget.settle(reservation, 0, 0.0)
            elif answer.usd is None and not answer.tokens:
                # Paid, at a cost the answer did not report (re-asks, maybe): the budget counts
                # what was held for it.
                budget.settle(reservation, reservation.tokens, reservation.usd, priced=False)
            else:
                budget.settle(reservation, answer.tokens, answer.usd or 0.0, priced=answer.usd is not None)
        finally:
            # Settled or released: the calls waiting for room look again.
            self._call_ended.set()
            self._call_ended = asyncio.Event()
        return answer.structured

    async def _reserve(
        self, budget: Budget, estimate: est.CallEstimate, most: est.CallEstimate, slots: Callable[[], int]
    ) -> Reservation:
        """Room in the budget for a call; refused (BudgetExhausted) only once no other call is in
        flight, since each holds room for re-asks it may not make and gives it back when it ends.
        Once one call is refused so, no call waiting for room starts: the run stops."""
        while True:
            if self._exhausted is not None:
                raise BudgetExhausted(self._exhausted.reason)
            try:
                return budget.reserve(estimate, most, slots())
            except BudgetExhausted as refused:
                if not budget.in_flight:
                    self._exhausted = refused
                    raise
                await self._call_ended.wait()

    async def _write(self, store: Callable[[AbstractUnitOfWork], Awaitable[None]]) -> None:
        # After the PHASE_STARTED events in flight: in the run's events a phase starts before its work.
        for announcing in list(self._announcing):
            try:
                # Shielded: a writer cancelled while it waits does not cancel what it waits for.
                await asyncio.shield(announcing)
            finally:
                # Waited for once: a failed one fails this write (as it would have failed its phase),
                # not every write after it, the run's end among them.
                if announcing.done():
                    self._announcing.discard(announcing)
        await self._write_now(store)

    async def _write_now(self, store: Callable[[AbstractUnitOfWork], Awaitable[None]]) -> None:
        async with self._deps.uow(lease=self._lease) as uow:
            await store(uow)
            await uow.commit()

    def _announce(self, phases: Sequence[RunPhase]) -> None:
        """PHASE_STARTED for ``phases`` (the first two at once), written while their work begins.

        Written before it, as it was, it held each phase's first model call for a commit, and the
        design and scenario phases for two, one after the other (a run's writes take its lease's
        row lock in turn). The run's next write waits for it; one that failed (a lost lease, the
        database away) fails that write, as it would have failed the phase, and no other.
        """
        if not phases:
            return
        at = datetime.now(UTC)
        events = [
            (NewRunEvent(RunEventType.PHASE_STARTED, PhaseStarted(phase, phase in self._started_before)), at)
            for phase in phases
        ]

        async def store(uow: AbstractUnitOfWork) -> None:
            await uow.repo.add_events(self._run_id, events)

        self._announcing.add(asyncio.ensure_future(self._write_now(store)))

    async def _drop_announcements(self) -> None:
        """As the executor ends: the announcements no write waited for (a phase that failed before
        its first write) end too; one that failed is logged, since nothing else will report it."""
        announcing, self._announcing = list(self._announcing), set()
        for task in announcing:
            task.cancel()
        for outcome in await asyncio.gather(*announcing, return_exceptions=True):
            if isinstance(outcome, Exception):
                logger.warning("run %s: a phase's start was not recorded: %s", self._run_id, outcome)

    async def _done(self, uow: AbstractUnitOfWork, phase: RunPhase, at: datetime, budget: Budget) -> None:
        await uow.repo.phase_done(self._run_id, phase)
        done = PhaseChanged(phase, round(budget.spent_usd, 6), budget.unpriced_calls)
        await uow.repo.add_event(self._run_id, NewRunEvent(RunEventType.PHASE_COMPLETED, done), at)

    # ------------------------------------------------------------ the end

    async def _finish(self, run: Run, status: RunStatus, reason: str) -> Run:
        async def stored() -> tuple[RunCounts, list[Evaluation]]:
            # The failed evaluations only: their reasons make the error summary, the counts the rest.
            async with self._deps.uow(read_only=True) as uow:
                return await uow.repo.counts(run.id), await uow.repo.evaluations(run.id, status=EvaluationStatus.FAILED)

        # The agent service's account (asked for when the ranker started, if it ran to its end)
        # and the run's own rows, read at once.
        usage_read, self._final_usage = self._final_usage or self._deps.models.usage(run.id), None
        usage, (counts, failed) = await asyncio.gather(usage_read, stored())
        at = datetime.now(UTC)
        whole = await self._whole_answers(failed)
        evaluated = counts.evaluations + counts.failed_evaluations
        error_summary = _error_summary(failed, evaluated)
        if status is RunStatus.COMPLETED and evaluated and len(failed) == evaluated:
            status, reason = RunStatus.FAILED, f"no evaluation succeeded ({error_summary})"
        # Whether the project wants it is asked after the end: the spec service may be away now.
        snapshot_pending = wants_snapshot(status, run.trigger.source)

        async def store(uow: AbstractUnitOfWork) -> None:
            await uow.repo.set_raw_answers(whole)
            await uow.repo.finish(
                run.id,
                status,
                failure_reason=reason,
                error_summary=error_summary,
                counts=counts,
                usage=usage,
                at=at,
                summary_pending=True,
                snapshot_pending=snapshot_pending,
            )
            await uow.repo.add_event(run.id, NewRunEvent(ENDED[status], RunEnded(status, reason)), at)

        await self._write(store)
        async with self._deps.uow(read_only=True) as uow:
            ended = await uow.repo.get_run(run.id)
        assert ended is not None
        return ended

    def _first_phase_calls(self) -> int:
        return self._first_calls

    async def _whole_answers(self, failed: Sequence[Evaluation]) -> list[tuple[str, str]]:
        """The failed evaluations' raw answers that their errors carried cut short, had whole (up to
        ``RAW_ANSWER_KEPT``) from the agent service's record of their calls. Read from what is
        stored, so a run continued after a crash has them too; a few at a time, within
        ``WHOLE_ANSWERS_SECONDS`` in all: an answer not had stays as it was stored."""
        cut = [e for e in failed if e.llm_call_id and ERROR_RAW_ANSWER_CHARS <= len(e.raw_answer) < RAW_ANSWER_KEPT]
        if not cut:
            return []
        gate = asyncio.Semaphore(WHOLE_ANSWER_READS)

        async def read(evaluation: Evaluation) -> tuple[str, str] | None:
            async with gate:
                text = await self._deps.models.answer_text(evaluation.llm_call_id)
            if text is None or len(text) <= len(evaluation.raw_answer):
                return None
            return evaluation.id, text[:RAW_ANSWER_KEPT]

        tasks = [asyncio.ensure_future(read(e)) for e in cut]
        try:
            done, _ = await asyncio.wait(tasks, timeout=WHOLE_ANSWERS_SECONDS)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        found = []
        for task in done:
            if task.cancelled():
                continue
            if (error := task.exception()) is not None:
                logger.warning("run %s: a raw answer could not be had whole: %r", self._run_id, error)
            elif (pair := task.result()) is not None:
                found.append(pair)
        if len(found) < len(cut):
            logger.info(
                "run %s: %d failed evaluations keep their raw answers cut short", self._run_id, len(cut) - len(found)
            )
        return found

    async def _account(self, run: Run) -> Run:
        """A cancelled run's cost as the agent service recorded it: the cancel, which may come from
        any process and must not wait on the agent service, stored only what the run had stored.
        Its calls then in flight go on in the agent service (an answer bought is kept): their
        cost is waited for."""
        usage = await self._deps.models.settled_usage(run.id)
        async with self._deps.uow(read_only=True) as uow:
            failed = await uow.repo.evaluations(run.id, status=EvaluationStatus.FAILED)
        whole = await self._whole_answers(failed)

        async def store(uow: AbstractUnitOfWork) -> None:
            await uow.repo.set_raw_answers(whole)
            await uow.repo.set_usage(run.id, usage)

        await self._write(store)
        return replace(run, usage=usage)

    async def _post_summary(self, run: Run) -> None:
        with tracing.after_end(tracing.SUMMARY_SPAN, run) as span:
            async with self._deps.uow(read_only=True) as uow:
                ranking = await uow.repo.ranking(run.id)
                counts = await uow.repo.counts(run.id)
            summary = run_summary(run, counts, ranking, run.ended_at or datetime.now(UTC))
            try:
                message_id = await _tried(
                    lambda: self._deps.spec.post_summary(
                        ChatTarget(run.project_id, run.chat_session_id),
                        summary_message_id(run.id),
                        summary_text(summary, ranking, run.failure_reason),
                        summary_metadata(summary, run_rejections(ranking)),
                    )
                )
            except OSError:
                # The run stays leased work with its summary pending: a later claim posts it.
                logger.warning("run %s: the spec service did not take its summary; it will be retried", run.id)
                return
            except SummaryRefused as refused:
                # Asked again, it would refuse again: the run's end stands, with no summary message
                # (its watchers are not kept waiting for one that will never come).
                logger.warning("run %s: the spec service refused its summary: %s", run.id, refused)
                span.set_status(Status(StatusCode.ERROR, str(refused)))
                message_id = ""
            span.set_attribute("crucible.summary_message_id", message_id)

        async def store(uow: AbstractUnitOfWork) -> None:
            await uow.repo.set_summary(run.id, message_id, tracing.ref_of(span))
            posted = NewRunEvent(RunEventType.SUMMARY_POSTED, SummaryPosted(message_id))
            await uow.repo.add_event(run.id, posted, datetime.now(UTC))

        await self._write(store)

    async def _snapshot_failure(self, run: Run) -> None:
        """A snapshot of the failed run when its project asks for one (auto_snapshot_failed_runs), made once."""
        with tracing.after_end(tracing.FAILURE_SNAPSHOT_SPAN, run) as span:
            try:
                wanted = await _tried(lambda: self._deps.spec.auto_snapshot_failed_runs(run.project_id))
                if wanted:
                    await _tried(lambda: self._deps.snapshots.create(failure_snapshot(run)))
                span.set_attribute("crucible.snapshot.made", wanted)
            except OSError:
                # Still pending: a later claim of the run tries again, under the same snapshot name.
                logger.warning("run %s: its failure snapshot could not be made now; it will be retried", run.id)
                return
            except SnapshotRefused as refused:
                # Asked again, the snapshot service would refuse again; the run's end stands.
                logger.warning("run %s: the snapshot service refused its failure snapshot: %s", run.id, refused)
                span.set_status(Status(StatusCode.ERROR, str(refused)))
        await self._write(lambda uow: uow.repo.snapshot_done(run.id))


async def _written(write: asyncio.Future[None]) -> None:
    # Shielded: should the phase be stopped, this waiter goes, the write it waits for stays.
    await asyncio.shield(write)


async def _tried(action: Callable[[], Awaitable[T]]) -> T:
    """``action()``, tried again a few seconds apart while its service is away (OSError), then that error."""
    for attempt in range(1, AFTER_END_ATTEMPTS):
        try:
            return await action()
        except OSError:
            await asyncio.sleep(attempt)
    return await action()


@dataclass
class _Progress:
    done: int
    total: int


def _evaluation(
    run_id: str, candidate_id: str, scenario_id: str, problem: ProblemCopy, answer: JsonObject
) -> Evaluation:
    """The evaluator's answer (valid against EVALUATION_SCHEMA), with each constraint's weight from the problem."""

    def score(part: JsonObject) -> Score:
        return Score(float(part["overall"]), {str(k): float(v) for k, v in part.get("components", {}).items()})

    results = []
    for item in answer.get("constraint_satisfaction", []):
        known = problem.constraint(str(item["constraint"]))
        results.append(
            ConstraintResult(
                # The problem's own name, so a violation names the constraint as the user wrote it.
                known.name if known else str(item["constraint"]),
                known.weight if known else 0,
                bool(item["satisfied"]),
                float(item["score"]),
                str(item.get("note", "")),
            )
        )
    return Evaluation(
        str(uuid.uuid4()),
        run_id,
        candidate_id,
        scenario_id,
        EvaluationStatus.SUCCEEDED,
        datetime.now(UTC),
        p=score(answer["P"]),
        r=score(answer["R"]),
        constraint_satisfaction=tuple(results),
        explanation=str(answer["explanation"]),
    )


def _error_summary(failed: Sequence[Evaluation], total: int) -> str:
    if not failed:
        return ""
    reasons = Counter(e.failure_reason.split(":", 1)[0] for e in failed)
    listed = ", ".join(f"{reason}: {n}" for reason, n in reasons.most_common())
    return f"{len(failed)} of {counted(total, 'evaluation')} failed ({listed})"


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error that says most of a group: a lost lease first (stop quietly), else the first one."""
    errors = [e for e in group.exceptions if not isinstance(e, asyncio.CancelledError)] or list(group.exceptions)
    return next((e for e in errors if isinstance(e, LeaseLost)), errors[0])
