"""Multi-provider agent runs: subagents in parallel, then a judge; checkpoints; forks; resume.

Each step is stored before the next begins (the run with its ``start`` checkpoint; each
candidate with its ``candidate:<name>`` checkpoint and its model calls; the decision with its
``decision`` checkpoint), so a run continued after a crash, or forked from a checkpoint,
re-executes only what follows and pays for no call twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import asdict, dataclass, replace

from opentelemetry import trace

from crucible_agent.domain.errors import AgentRunNotFound, CheckpointNotFound
from crucible_agent.domain.limits import size_violations
from crucible_agent.domain.model import (
    AgentRun,
    AgentRunResult,
    AgentRunStatus,
    Candidate,
    CandidateMetrics,
    ChatMessage,
    ForkOrigin,
    JsonObject,
    JudgeConfig,
    LlmRequest,
    Role,
    SubagentConfig,
    SubagentError,
)
from crucible_agent.service_layer import commands as c
from crucible_agent.service_layer import journal, judging
from crucible_agent.service_layer.journal import new_id as _new_id
from crucible_agent.service_layer.journal import now as _now
from crucible_agent.service_layer.llm import LlmOutcome, LlmService, lease_fence, stop_if_fenced, store_leased
from crucible_agent.service_layer.ports import LeaseStore
from crucible_agent.service_layer.run_input import fork_violations, validate_run
from crucible_agent.service_layer.structured import check_schema
from crucible_agent.service_layer.unit_of_work import AGENT_RUN, AbstractUnitOfWork, UowFactory
from crucible_common.database import database_unavailable
from crucible_common.errors import CrucibleError, FieldViolation, InvalidArgument, ValidationFailed
from crucible_common.leases import HEARTBEAT_SECONDS, Lease, LeaseLost, hold, reclaim, reclaim_forever

logger = logging.getLogger(__name__)
tracer = trace.get_tracer("crucible.agent")

RESUME_BATCH = 10


@dataclass(frozen=True)
class NewRun:
    """A validated agent run and its ``start`` checkpoint's state, ready to be stored."""

    run: AgentRun
    start_state: JsonObject


class AgentRunner:
    def __init__(
        self,
        llm: LlmService,
        uow: UowFactory,
        leases: LeaseStore,
        *,
        default_subagents: tuple[SubagentConfig, ...],
        default_judge: JudgeConfig | None,
        owner: str,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
    ) -> None:
        self._llm = llm
        self._uow = uow
        self._leases = leases
        self._default_subagents = default_subagents
        self._default_judge = default_judge
        # This process's name in run leases.
        self._owner = owner
        self._heartbeat = heartbeat_seconds
        # Runs this process took over from a dead one, by id (see ``stop``).
        self._resumed: dict[str, asyncio.Task[None]] = {}

    # ------------------------------------------------------------ use cases

    async def execute(self, cmd: c.ExecuteAgentRun) -> AgentRunResult:
        """Run it to the end."""
        new = self.new_run(cmd)
        async with self._uow() as uow:
            lease = await self.open(uow, new)
            await uow.commit()
        return await self.drive(new.run, lease)

    def new_run(self, cmd: c.ExecuteAgentRun) -> NewRun:
        """The run ``cmd`` asks for, validated, not yet stored."""
        subagents = cmd.subagents or self._default_subagents
        judge = cmd.judge or self._default_judge
        sizes = size_violations(
            correlation=cmd.correlation,
            recording=cmd.recording,
            models={
                **{f"subagents[{i}].model_name": s.model for i, s in enumerate(subagents)},
                **({"judge.model_name": judge.model} if judge else {}),
            },
            schema_name=cmd.schema_name,
            workspace_ref=cmd.workspace_ref,
        )
        if sizes:
            raise ValidationFailed(sizes, "agent run")
        validate_run(cmd.message, subagents, judge, self._llm.check_provider, cmd.history)
        if cmd.json_schema is not None:
            problem = check_schema(cmd.json_schema)
            if problem:
                raise InvalidArgument(
                    f"invalid json_schema: {problem}",
                    violations=[FieldViolation("json_schema", problem)],
                    reason="VALIDATION_FAILED",
                )
        now = _now()
        run = AgentRun(
            id=cmd.run_id or _new_id(),
            status=AgentRunStatus.RUNNING,
            message=cmd.message,
            history=cmd.history,
            subagents=subagents,
            judge=judge,
            workspace_ref=cmd.workspace_ref,
            metadata=dict(cmd.metadata),
            correlation=cmd.correlation,
            recording=cmd.recording,
            fork_of=None,
            failure_reason="",
            created_at=now,
            updated_at=now,
            json_schema=cmd.json_schema,
            schema_name=cmd.schema_name,
        )
        start_state: JsonObject = {
            "message": cmd.message,
            "subagents": [asdict(s) for s in subagents],
            "judge": asdict(judge) if judge else None,
            "metadata": dict(cmd.metadata),
        }
        return NewRun(run, start_state)

    async def open(self, uow: AbstractUnitOfWork, new: NewRun) -> Lease:
        """Store the run with its ``start`` checkpoint and this process's lease, in the caller's unit of work.

        A sprint stores its phase attempt in the same transaction: the attempt never names a run
        that does not exist.
        """
        await journal.open_run(uow, new.run, driver=journal.AGENT_RUNNER, start_state=new.start_state)
        return await uow.take_lease(AGENT_RUN, new.run.id, self._owner)

    async def drive(self, run: AgentRun, lease: Lease, *, fail_if_cancelled: bool = True) -> AgentRunResult:
        """Run an opened run to its end; ``fail_if_cancelled=False`` leaves a cancelled task's run to be resumed."""
        await self._drive(run, lease, fail_if_cancelled=fail_if_cancelled)
        return await self.result(run.id)

    async def fork(self, cmd: c.ForkAgentRun) -> AgentRunResult:
        if not (cmd.checkpoint_id or cmd.checkpoint_label):
            raise InvalidArgument(
                "name the checkpoint to fork from by checkpoint_id or checkpoint_label",
                violations=[FieldViolation("checkpoint_label", "required when checkpoint_id is empty")],
            )
        sizes = size_violations(recording=cmd.recording) if cmd.recording is not None else []
        sizes += fork_violations(cmd.checkpoint_label, cmd.label, cmd.reason)
        if sizes:
            raise ValidationFailed(sizes, "fork request")
        source = await self.result(cmd.agent_run_id)
        point = next(
            (
                cp
                for cp in source.checkpoints
                if (cmd.checkpoint_id and cp.id == cmd.checkpoint_id)
                or (not cmd.checkpoint_id and cp.label == cmd.checkpoint_label)
            ),
            None,
        )
        if point is None:
            raise CheckpointNotFound(cmd.agent_run_id, cmd.checkpoint_id or cmd.checkpoint_label)
        now = _now()
        run = replace(
            source.run,
            id=_new_id(),
            status=AgentRunStatus.RUNNING,
            recording=cmd.recording or source.run.recording,
            fork_of=ForkOrigin(source.run.id, point.id, point.label, cmd.label, cmd.reason),
            failure_reason="",
            created_at=now,
            updated_at=now,
        )
        kept = [cp for cp in source.checkpoints if cp.sequence <= point.sequence]
        kept_names = {cp.label.removeprefix("candidate:") for cp in kept if cp.label.startswith("candidate:")}
        lease: Lease | None = None
        async with self._uow() as uow:
            await uow.repo.add_run(run, journal.AGENT_RUNNER)
            for cp in kept:
                await uow.repo.add_checkpoint(replace(cp, id=_new_id(), agent_run_id=run.id, created_at=now))
            # Candidates up to the fork point are carried over as they are (same output, same
            # call): only what follows the checkpoint runs, and is paid for, again.
            renamed: dict[str, str] = {}
            for candidate in source.candidates:
                if candidate.name in kept_names:
                    copy = replace(candidate, id=_new_id(), agent_run_id=run.id)
                    renamed[candidate.id] = copy.id
                    await uow.repo.add_candidate(copy)
            if point.label == "decision" and source.decision is not None:
                for error in source.errors:
                    await uow.repo.add_subagent_error(replace(error, agent_run_id=run.id), now)
                decision = replace(
                    source.decision,
                    agent_run_id=run.id,
                    candidate_id=renamed.get(source.decision.candidate_id, source.decision.candidate_id),
                )
                await uow.repo.set_decision(decision, now)
                await uow.repo.finish_run(run.id, AgentRunStatus.COMPLETED, "", now)
            else:
                lease = await uow.take_lease(AGENT_RUN, run.id, self._owner)
            await uow.commit()
        if lease is not None:
            await self._drive(run, lease)
        return await self.result(run.id)

    async def result(self, agent_run_id: str) -> AgentRunResult:
        async with self._uow(read_only=True) as uow:
            run = await uow.repo.get_run(agent_run_id)
            if run is None:
                raise AgentRunNotFound(agent_run_id)
            return AgentRunResult(
                run=run,
                candidates=await uow.repo.candidates(run.id),
                decision=await uow.repo.decision(run.id),
                checkpoints=await uow.repo.checkpoints(run.id),
                errors=await uow.repo.subagent_errors(run.id),
            )

    async def resume_stale(self) -> int:
        """Continue running runs whose process died (lease lapsed); returns how many were taken."""
        return await reclaim(self._leases, self._launch, batch=RESUME_BATCH)

    async def resume_forever(self) -> None:
        """The background loop of the service: take over abandoned runs, now and then."""
        await reclaim_forever(self._leases, self._launch, interval=self._heartbeat, batch=RESUME_BATCH)

    async def stop(self, run_id: str) -> None:
        """Stop this process's work on a run it took over, and wait for it (its sprint was cancelled)."""
        task = self._resumed.get(run_id)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _launch(self, lease: Lease) -> None:
        task = asyncio.create_task(self._resume(lease), name=f"agent run {lease.id}")
        self._resumed[lease.id] = task
        task.add_done_callback(lambda done: self._forget(lease.id, done))

    def _forget(self, run_id: str, task: asyncio.Task[None]) -> None:
        if self._resumed.get(run_id) is task:
            del self._resumed[run_id]

    async def _resume(self, lease: Lease) -> None:
        run = (await self.result(lease.id)).run
        # _drive has logged a failure and ended the run as failed; nobody awaits this task.
        with contextlib.suppress(Exception):
            await self._drive(run, lease)

    async def _drive(self, run: AgentRun, lease: Lease, *, fail_if_cancelled: bool = True) -> None:
        """Advance ``run`` to its end while holding its lease."""
        try:
            await hold(self._leases, lease, self.advance(run, lease), heartbeat_seconds=self._heartbeat)
        except LeaseLost:
            # Another process owns the run now and continues it from its checkpoints: wait for
            # it rather than pay twice.
            logger.warning("agent run %s: lease lost; waiting for its new owner", run.id)
            await self._until_finished(run.id)
        except asyncio.CancelledError:
            # The caller went away (deadline, disconnect): a run nobody waits for is not continued
            # later and paid for again. In-process callers that resume (sprints) keep it running.
            if fail_if_cancelled:
                await asyncio.shield(self._fail(run.id, lease, "cancelled before it finished"))
            raise
        except CrucibleError as exc:
            if database_unavailable(exc):
                raise  # not the run's failure: it is continued from its checkpoints once claimed
            # A failure the domain names (a provider with no key, a request it refuses): it would
            # fail again on every resume, so the run ends, with the reason a user can act on.
            logger.warning("agent run %s failed: %s: %s", run.id, exc.reason, exc.message)
            await self._fail(run.id, lease, f"{exc.reason}: {exc.message}")
            raise
        except Exception as exc:
            if database_unavailable(exc):
                raise  # not the run's failure: it is continued from its checkpoints once claimed
            # A deterministic failure would fail again on every resume, paying each time: end it.
            logger.exception("agent run %s failed", run.id)
            await self._fail(run.id, lease, f"internal error: {type(exc).__name__}")
            raise

    async def _until_finished(self, run_id: str) -> None:
        # Another process writes the outcome (or a cancel did); the database is the only place to see it.
        while True:
            if (await self.result(run_id)).run.status is not AgentRunStatus.RUNNING:
                return
            await asyncio.sleep(self._heartbeat / 5)

    async def _fail(self, run_id: str, lease: Lease, reason: str) -> None:
        try:
            async with self._uow(lease=lease) as uow:
                if await journal.fail(uow, run_id, reason, _now()):
                    await uow.commit()
        except LeaseLost:
            logger.info("agent run %s: not failed here, another process owns it", run_id)

    async def advance(self, run: AgentRun, lease: Lease) -> None:
        """Run whatever the stored state of ``run`` still lacks: missing candidates, the decision."""
        with tracer.start_as_current_span(
            "invoke_agent crucible.agent_run",
            attributes={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.id": run.id,
                "crucible.agent_run.subagents": len(run.subagents),
            },
        ):
            async with self._uow(read_only=True) as uow:
                done = {x.name for x in await uow.repo.candidates(run.id)}
                done |= {e.name for e in await uow.repo.subagent_errors(run.id)}
                decided = await uow.repo.decision(run.id) is not None
            pending = [s for s in run.subagents if s.name not in done]
            await asyncio.gather(*(self._run_subagent(run, lease, s) for s in pending))
            if not decided:
                await self._decide(run, lease)

    # ------------------------------------------------------------ steps

    async def _run_subagent(self, run: AgentRun, lease: Lease, subagent: SubagentConfig) -> None:
        with tracer.start_as_current_span(
            f"subagent {subagent.name}",
            attributes={"crucible.subagent": subagent.name, "gen_ai.provider.name": subagent.provider},
        ):
            messages = (
                *([ChatMessage(Role.SYSTEM, subagent.system_prompt)] if subagent.system_prompt else []),
                *run.history,
                ChatMessage(Role.USER, run.message),
            )
            request = LlmRequest(
                subagent.provider,
                subagent.model,
                tuple(messages),
                json_schema=run.json_schema,
                schema_name=run.schema_name,
            )
            correlation = run.correlation.with_purpose(run.correlation.purpose or "subagent", run.id)
            outcome = await self._llm.complete(request, correlation, run.recording, fence=lease_fence(self._uow, lease))
        await stop_if_fenced(self._uow, outcome)
        now = _now()
        if outcome.result is None:
            assert outcome.error is not None
            error = SubagentError(
                run.id, subagent.name, subagent.provider, subagent.model, outcome.error.reason, outcome.error.message
            )

            async def write(uow: AbstractUnitOfWork) -> None:
                await journal.add_error(uow, error, now)

        else:
            result = outcome.result
            candidate = Candidate(
                id=_new_id(),
                agent_run_id=run.id,
                name=subagent.name,
                provider=subagent.provider,
                model=subagent.model,
                output=result.text,
                metrics=CandidateMetrics(
                    duration_ms=outcome.duration_ms,
                    input_tokens=result.input_tokens,
                    output_tokens=result.output_tokens,
                    usd=result.usd,
                    attempts=len(result.calls),
                    response_model=result.response_model,
                ),
                llm_call_id=result.final_call.id,
                created_at=now,
                structured=result.structured,
            )

            async def write(uow: AbstractUnitOfWork) -> None:
                await journal.add_candidate(uow, candidate)

        await store_leased(self._uow, lease, outcome, write)

    async def _decide(self, run: AgentRun, lease: Lease) -> None:
        async with self._uow(read_only=True) as uow:
            by_name = {x.name: x for x in await uow.repo.candidates(run.id)}
            errors = await uow.repo.subagent_errors(run.id)
        # Subagent order, not completion order: the fallback rule must not depend on timing.
        candidates = [by_name[s.name] for s in run.subagents if s.name in by_name]
        now = _now()
        if not candidates:
            reasons = "; ".join(f"{e.name}: {e.reason}" for e in errors)

            async def fail(uow: AbstractUnitOfWork) -> None:
                await journal.fail(uow, run.id, f"every subagent failed ({reasons})", now)

            await store_leased(self._uow, lease, None, fail)
            return

        outcome: LlmOutcome | None = None
        if len(candidates) > 1 and run.judge is not None:
            with tracer.start_as_current_span(
                "judge",
                attributes={"gen_ai.provider.name": run.judge.provider, "gen_ai.request.model": run.judge.model},
            ):
                request = judging.judge_request(run.message, run.judge, candidates)
                outcome = await self._llm.complete(
                    request,
                    run.correlation.with_purpose("judge", run.id),
                    run.recording,
                    fence=lease_fence(self._uow, lease),
                )
            await stop_if_fenced(self._uow, outcome)
            if outcome.error is not None:
                logger.warning("agent run %s: judge failed (%s); fallback rule applies", run.id, outcome.error.reason)
        decision = judging.decide(run.id, run.judge, candidates, outcome)

        async def write(uow: AbstractUnitOfWork) -> None:
            await journal.decide(uow, decision, now)

        await store_leased(self._uow, lease, outcome, write)
