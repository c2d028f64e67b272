"""Multi-provider agent runs: subagents in parallel, then a judge; checkpoints; forks; resume.

Each step is stored before the next begins (the run with its ``start`` checkpoint; each
candidate with its ``candidate:<name>`` checkpoint and its model calls; the decision with its
``decision`` checkpoint), so a run continued after a crash, or forked from a checkpoint,
re-executes only what follows and pays for no call twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import asdict, replace
from datetime import datetime

from opentelemetry import trace

from crucible_agent.domain.errors import AgentRunNotFound, CheckpointNotFound
from crucible_agent.domain.limits import size_violations
from crucible_agent.domain.model import (
    AgentRun,
    AgentRunResult,
    AgentRunStatus,
    Candidate,
    ChatMessage,
    Checkpoint,
    Decision,
    ForkOrigin,
    JsonObject,
    JudgeConfig,
    LlmRequest,
    Role,
    SubagentConfig,
    SubagentError,
)
from crucible_agent.service_layer import commands as c
from crucible_agent.service_layer.leases import HEARTBEAT_SECONDS
from crucible_agent.service_layer.leases import lease_until as _lease_until
from crucible_agent.service_layer.leases import now as _now
from crucible_agent.service_layer.llm import LlmOutcome, LlmService, UowFactory, check_schema
from crucible_agent.service_layer.unit_of_work import AbstractUnitOfWork
from crucible_common.errors import FieldViolation, InvalidArgument, ValidationFailed

logger = logging.getLogger(__name__)
tracer = trace.get_tracer("crucible.agent")

RESUME_BATCH = 10
MAX_SUBAGENTS = 8
MAX_MESSAGE_CHARS = 200_000
JUDGE_SCHEMA_NAME = "judge_decision"
JUDGE_SYSTEM = (
    "You are the judge of a multi-agent run: several subagents answered the same task. "
    "Choose the single best answer for the task and explain your choice in two or three sentences."
)


def _new_id() -> str:
    return str(uuid.uuid4())


class AgentRunner:
    def __init__(
        self,
        llm: LlmService,
        uow: UowFactory,
        *,
        default_subagents: tuple[SubagentConfig, ...],
        default_judge: JudgeConfig | None,
        owner: str,
    ) -> None:
        self._llm = llm
        self._uow = uow
        self._default_subagents = default_subagents
        self._default_judge = default_judge
        # This process's name in run leases.
        self._owner = owner
        self._background: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ use cases

    async def execute(self, cmd: c.ExecuteAgentRun, *, fail_if_cancelled: bool = True) -> AgentRunResult:
        """Run it to the end; ``fail_if_cancelled=False`` leaves a cancelled run to be resumed later."""
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
        self._validate(cmd.message, subagents, judge)
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
        async with self._uow() as uow:
            await uow.repo.add_run(run, self._owner, _lease_until())
            await uow.repo.add_checkpoint(Checkpoint(_new_id(), run.id, 1, "start", start_state, now))
            await uow.commit()
        await self._advance_holding_lease(run, fail_if_cancelled=fail_if_cancelled)
        return await self.result(run.id)

    async def fork(self, cmd: c.ForkAgentRun) -> AgentRunResult:
        if not (cmd.checkpoint_id or cmd.checkpoint_label):
            raise InvalidArgument(
                "name the checkpoint to fork from by checkpoint_id or checkpoint_label",
                violations=[FieldViolation("checkpoint_label", "required when checkpoint_id is empty")],
            )
        if cmd.recording is not None and len(cmd.recording.key) > 200:
            raise InvalidArgument(
                "recording_key is too long",
                violations=size_violations(recording=cmd.recording),
                reason="VALIDATION_FAILED",
            )
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
        async with self._uow() as uow:
            await uow.repo.add_run(run, self._owner, _lease_until())
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
            await uow.commit()
        if point.label != "decision":
            await self._advance_holding_lease(run)
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
        async with self._uow() as uow:
            runs = await uow.repo.claim_stale_runs(self._owner, _lease_until(), RESUME_BATCH)
            await uow.commit()
        for run in runs:
            logger.info("agent run %s: lease lapsed; continuing it from its checkpoints", run.id)
            task = asyncio.create_task(self._advance_holding_lease(run))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return len(runs)

    async def resume_forever(self, interval: float = HEARTBEAT_SECONDS) -> None:
        """The background loop of the service: take over abandoned runs, now and then."""
        while True:
            try:
                await self.resume_stale()
            # The loop must outlive one failed round (a lost database, ...); the traceback is logged.
            except Exception:
                logger.exception("resuming abandoned agent runs failed; will retry")
            await asyncio.sleep(interval)

    async def _advance_holding_lease(self, run: AgentRun, *, fail_if_cancelled: bool = True) -> None:
        work = asyncio.create_task(self.advance(run))
        heartbeat = asyncio.create_task(self._heartbeat(run.id, work))
        try:
            await work
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if me is None or not me.cancelling():
                # The heartbeat stopped the work: the lease went to another process, which
                # continues the run from its checkpoints. Wait for it rather than pay twice.
                logger.warning("agent run %s: lease lost; waiting for its new owner", run.id)
                await self._until_finished(run.id)
                return
            # The caller went away (deadline, disconnect): a run nobody waits for is not continued
            # later and paid for again. In-process callers that resume (sprints) keep it running.
            if fail_if_cancelled:
                await asyncio.shield(self._fail(run.id, "cancelled before it finished"))
            raise
        except Exception as exc:
            # A deterministic failure would fail again on every resume, paying each time: end it.
            logger.exception("agent run %s failed", run.id)
            await self._fail(run.id, f"internal error: {type(exc).__name__}")
            raise
        finally:
            heartbeat.cancel()

    async def _until_finished(self, run_id: str) -> None:
        # Another process writes the outcome; the database is the only place to see it.
        while True:
            if (await self.result(run_id)).run.status is not AgentRunStatus.RUNNING:
                return
            await asyncio.sleep(HEARTBEAT_SECONDS / 5)

    async def _fail(self, run_id: str, reason: str) -> None:
        async with self._uow() as uow:
            run = await uow.repo.get_run(run_id, for_update=True)
            if run is not None and run.status is AgentRunStatus.RUNNING:
                await uow.repo.finish_run(run_id, AgentRunStatus.FAILED, reason, _now())
                await uow.commit()

    async def _heartbeat(self, run_id: str, work: asyncio.Task[None]) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                async with self._uow() as uow:
                    held = await uow.repo.renew_lease(run_id, self._owner, _lease_until())
                    await uow.commit()
            except Exception:
                # The database away for a moment: the lease still has time; try again next beat.
                logger.warning("agent run %s: could not renew its lease", run_id, exc_info=True)
                continue
            if not held:
                work.cancel()
                return

    async def advance(self, run: AgentRun) -> None:
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
            await asyncio.gather(*(self._run_subagent(run, s) for s in pending))
            if not decided:
                await self._decide(run)

    # ------------------------------------------------------------ steps

    async def _run_subagent(self, run: AgentRun, subagent: SubagentConfig) -> None:
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
            outcome = await self._llm.complete(request, correlation, run.recording)
        now = _now()
        async with self._uow() as uow:
            await uow.repo.get_run(run.id, for_update=True)
            await outcome.store(uow)
            if outcome.result is None:
                assert outcome.error is not None
                error = SubagentError(
                    run.id,
                    subagent.name,
                    subagent.provider,
                    subagent.model,
                    outcome.error.reason,
                    outcome.error.message,
                )
                await uow.repo.add_subagent_error(error, now)
            else:
                result = outcome.result
                candidate = Candidate(
                    id=_new_id(),
                    agent_run_id=run.id,
                    name=subagent.name,
                    provider=subagent.provider,
                    model=subagent.model,
                    output=result.text,
                    metrics={
                        "duration_ms": outcome.duration_ms,
                        "input_tokens": result.input_tokens,
                        "output_tokens": result.output_tokens,
                        "usd": result.usd,
                        "attempts": len(result.calls),
                        "response_model": result.response_model,
                    },
                    llm_call_id=result.final_call.id,
                    created_at=now,
                    structured=result.structured,
                )
                await uow.repo.add_candidate(candidate)
                await self._checkpoint(uow, run.id, f"candidate:{subagent.name}", _candidate_state(candidate), now)
            await uow.commit()

    async def _decide(self, run: AgentRun) -> None:
        async with self._uow(read_only=True) as uow:
            by_name = {x.name: x for x in await uow.repo.candidates(run.id)}
            errors = await uow.repo.subagent_errors(run.id)
        # Subagent order, not completion order: the fallback rule must not depend on timing.
        candidates = [by_name[s.name] for s in run.subagents if s.name in by_name]
        now = _now()
        if not candidates:
            reasons = "; ".join(f"{e.name}: {e.reason}" for e in errors)
            async with self._uow() as uow:
                await uow.repo.finish_run(run.id, AgentRunStatus.FAILED, f"every subagent failed ({reasons})", now)
                await uow.commit()
            return

        outcome: LlmOutcome | None = None
        if len(candidates) == 1:
            decision = _fallback(run.id, candidates[0], "single_candidate")
        elif run.judge is None:
            decision = _fallback(run.id, candidates[0], "no_judge_configured")
        else:
            outcome = await self._judge(run, run.judge, candidates)
            if outcome.result is not None and outcome.result.structured is not None:
                choice = outcome.result.structured["choice"]
                chosen = next(x for x in candidates if x.name == choice)
                decision = Decision(
                    run.id,
                    chosen.id,
                    chosen.name,
                    run.judge.provider,
                    run.judge.model,
                    str(outcome.result.structured["rationale"]),
                    fallback=False,
                    fallback_reason="",
                )
            else:
                assert outcome.error is not None
                logger.warning("agent run %s: judge failed (%s); fallback rule applies", run.id, outcome.error.reason)
                decision = _fallback(
                    run.id, candidates[0], f"judge_failed: {outcome.error.reason}: {outcome.error.message}"[:500]
                )
        async with self._uow() as uow:
            await uow.repo.get_run(run.id, for_update=True)
            if outcome is not None:
                await outcome.store(uow)
            await uow.repo.set_decision(decision, now)
            await self._checkpoint(uow, run.id, "decision", asdict(decision), now)
            await uow.repo.finish_run(run.id, AgentRunStatus.COMPLETED, "", now)
            await uow.commit()

    async def _judge(self, run: AgentRun, judge: JudgeConfig, candidates: list[Candidate]) -> LlmOutcome:
        with tracer.start_as_current_span(
            "judge", attributes={"gen_ai.provider.name": judge.provider, "gen_ai.request.model": judge.model}
        ):
            names = [x.name for x in candidates]
            schema = {
                "type": "object",
                "properties": {
                    "choice": {"type": "string", "enum": names, "description": "name of the best candidate"},
                    "rationale": {"type": "string", "minLength": 1, "description": "why it is the best"},
                },
                "required": ["choice", "rationale"],
                "additionalProperties": False,
            }
            listing = json.dumps({"candidates": [{"name": x.name, "output": x.output} for x in candidates]}, indent=1)
            system = JUDGE_SYSTEM + (f"\n\n{judge.instructions}" if judge.instructions else "")
            request = LlmRequest(
                judge.provider,
                judge.model,
                (
                    ChatMessage(Role.SYSTEM, system),
                    ChatMessage(Role.USER, f"Task:\n{run.message}\n\nCandidates:\n{listing}"),
                ),
                json_schema=schema,
                schema_name=JUDGE_SCHEMA_NAME,
            )
            return await self._llm.complete(request, run.correlation.with_purpose("judge", run.id), run.recording)

    async def _checkpoint(
        self, uow: AbstractUnitOfWork, run_id: str, label: str, state: JsonObject, at: datetime
    ) -> None:
        sequence = await uow.repo.next_checkpoint_sequence(run_id)
        await uow.repo.add_checkpoint(Checkpoint(_new_id(), run_id, sequence, label, state, at))

    def _validate(self, message: str, subagents: tuple[SubagentConfig, ...], judge: JudgeConfig | None) -> None:
        problems: list[FieldViolation] = []
        if not message.strip():
            problems.append(FieldViolation("message", "must not be empty"))
        if len(message) > MAX_MESSAGE_CHARS:
            problems.append(FieldViolation("message", f"at most {MAX_MESSAGE_CHARS} characters"))
        if not subagents:
            problems.append(FieldViolation("subagents", "no subagent given and no provider configured"))
        if len(subagents) > MAX_SUBAGENTS:
            problems.append(FieldViolation("subagents", f"at most {MAX_SUBAGENTS}"))
        seen: set[str] = set()
        for i, s in enumerate(subagents):
            if not s.name.strip() or len(s.name) > 100:
                problems.append(FieldViolation(f"subagents[{i}].name", "1 to 100 characters"))
            elif s.name in seen:
                problems.append(FieldViolation(f"subagents[{i}].name", f"duplicate name {s.name!r}"))
            seen.add(s.name)
            if not s.model.strip():
                problems.append(FieldViolation(f"subagents[{i}].model_name", "must not be empty"))
        if judge is not None and not judge.model.strip():
            problems.append(FieldViolation("judge.model_name", "must not be empty"))
        if problems:
            raise ValidationFailed(problems, "agent run")
        for i, s in enumerate(subagents):
            self._llm.check_provider(s.provider, f"subagents[{i}].provider")
        if judge is not None:
            self._llm.check_provider(judge.provider, "judge.provider")


def _fallback(run_id: str, candidate: Candidate, reason: str) -> Decision:
    # The rule, stated once: the first successful candidate in subagent order.
    return Decision(
        run_id,
        candidate.id,
        candidate.name,
        provider="",
        model="",
        rationale=f"fallback rule: the first successful candidate in subagent order ({candidate.name})",
        fallback=True,
        fallback_reason=reason,
    )


def _candidate_state(candidate: Candidate) -> JsonObject:
    return {
        "candidate_id": candidate.id,
        "name": candidate.name,
        "provider": candidate.provider,
        "model_name": candidate.model,
        "output": candidate.output,
        "structured": candidate.structured,
        "metrics": candidate.metrics,
    }
