"""The sprint workflow: Discovery, then Coding and Verification, retried with what failed.

Discovery is a multi-provider agent run (each planner proposes a plan, a judge picks one) that
writes ``implementation_plan.md``; the planner whose plan won codes it. Coding is a tool loop
(up to ``MAX_RETRIES`` attempts, each told why the previous one failed). Verification runs the
tests in the sandbox and asks an agent who may only read and run tests to confirm with
``VERIFICATION_SUCCESS``.

The runner works from what is stored: a finished phase attempt is never redone, a running one is
continued, so a sprint taken over by another process pays for no model call twice.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import replace

from crucible_agent.domain.errors import AgentRunNotFound
from crucible_agent.domain.model import AgentRunResult, AgentRunStatus, Correlation, SubagentConfig
from crucible_agent.domain.sprints import (
    MAX_RETRIES,
    CandidateCompleted,
    CandidateFailed,
    JudgeDecided,
    NewSprintEvent,
    Phase,
    PhaseAttempt,
    PhaseAttemptStatus,
    PhaseOutput,
    Sprint,
    SprintEventType,
    SprintPlan,
    SprintStatus,
    Verdict,
)
from crucible_agent.service_layer import commands as c
from crucible_agent.service_layer.ports import SprintWorkspace
from crucible_agent.service_layer.sprints import prompts
from crucible_agent.service_layer.sprints.tool_loop import LoopTask, ToolLoop
from crucible_agent.service_layer.sprints.workflow import PhaseFailed, SprintDeps, SprintRecords, SprintStopped
from crucible_common.database import database_unavailable
from crucible_common.errors import CrucibleError
from crucible_common.leases import Lease, LeaseLost

logger = logging.getLogger(__name__)

# How often Discovery looks whether an agent run another process continues has ended.
RUN_POLL_SECONDS = 0.5


class PhaseRunner:
    """Runs one sprint to its end from what is stored, while its caller holds the sprint's lease."""

    def __init__(self, deps: SprintDeps, lease: Lease) -> None:
        self._deps = deps
        self._records = SprintRecords(deps.uow, lease)
        self._sprint_id = lease.id

    async def run(self) -> None:
        try:
            sprint = await self._records.active()
            workspace = self._deps.workspaces.open(sprint.workspace_ref)
            plan, coder = await self._discovery(sprint, workspace)
            feedback = ""
            for number in range(1, MAX_RETRIES + 1):
                try:
                    await self._coding(sprint, workspace, number, plan, coder, feedback)
                    await self._verification(sprint, workspace, number, coder)
                except PhaseFailed as failure:
                    feedback = failure.summary
                    continue
                await self._records.finish(SprintStatus.COMPLETED, "")
                return
            await self._records.finish(
                SprintStatus.FAILED, f"coding failed {MAX_RETRIES} times; last failure: {feedback}"
            )
        except PhaseFailed as failure:
            await self._records.finish(SprintStatus.FAILED, failure.summary)
        except SprintStopped:
            logger.info("sprint %s is no longer active; its runner stops", self._sprint_id)
        except LeaseLost:
            raise
        except CrucibleError as exc:
            if database_unavailable(exc):
                raise  # not the sprint's failure: it goes on from what it stored (leases.Workers)
            # What the domain names (a provider with no key, ...) is the sprint's reason as it is.
            logger.warning("sprint %s failed: %s: %s", self._sprint_id, exc.reason, exc.message)
            await self._records.finish(SprintStatus.FAILED, f"{exc.reason}: {exc.message}")
        except Exception as exc:
            if database_unavailable(exc):
                raise  # not the sprint's failure: it goes on from what it stored (leases.Workers)
            logger.exception("sprint %s failed unexpectedly", self._sprint_id)
            await self._records.finish(SprintStatus.FAILED, f"internal error: {type(exc).__name__}: {exc}")

    async def _attempt(self, phase: Phase, number: int) -> PhaseAttempt | None:
        """The stored attempt, if any; ``PhaseFailed`` when it already failed, ``SprintStopped`` once inactive."""
        existing = (await self._records.active()).attempt(phase, number)
        if existing is not None and existing.status is PhaseAttemptStatus.FAILED:
            raise PhaseFailed(existing.summary)
        return existing

    # ------------------------------------------------------------ Discovery

    async def _discovery(self, sprint: Sprint, workspace: SprintWorkspace) -> tuple[str, SubagentConfig]:
        try:
            existing = await self._attempt(Phase.DISCOVERY, 1)
        except PhaseFailed as failure:
            raise PhaseFailed(f"discovery failed: {failure.summary}") from None
        if existing is not None and existing.status is PhaseAttemptStatus.COMPLETED:
            out = existing.output
            assert out.plan is not None, "a completed discovery stores its plan"
            assert out.coder is not None, "a completed discovery stores its coder"
            return out.plan.plan_markdown, out.coder
        if existing is None:
            runner = self._deps.runner
            new = runner.new_run(self._planning_command(sprint, str(uuid.uuid4())))
            attempt, lease = await self._records.begin(
                Phase.DISCOVERY, 1, new.run.id, lambda uow: runner.open(uow, new)
            )
            result = await runner.drive(new.run, lease, fail_if_cancelled=False)
        else:
            attempt = existing
            result = await self._planning_run(sprint, existing.agent_run_id)
        if result.run.status is AgentRunStatus.CANCELLED:
            # The sprint was cancelled while it planned (by this process or another).
            raise SprintStopped
        for candidate in result.candidates:
            event = CandidateCompleted(Phase.DISCOVERY, 1, candidate.name, candidate.provider, candidate.metrics)
            await self._records.emit(NewSprintEvent(SprintEventType.CANDIDATE_COMPLETED, event))
        for error in result.errors:
            failed = CandidateFailed(Phase.DISCOVERY, 1, error.name, error.provider, error.reason)
            await self._records.emit(NewSprintEvent(SprintEventType.CANDIDATE_FAILED, failed))
        decision = result.decision
        chosen = next((x for x in result.candidates if decision and x.id == decision.candidate_id), None)
        if decision is None or chosen is None or chosen.structured is None:
            reason = result.run.failure_reason or "no plan was chosen"
            await self._records.end(attempt, False, reason, PhaseOutput())
            raise PhaseFailed(f"discovery failed: {reason}")
        await self._records.emit(
            NewSprintEvent(SprintEventType.JUDGE_DECIDED, JudgeDecided.of(Phase.DISCOVERY, decision))
        )
        plan = _plan(chosen.structured)
        await workspace.write_file(prompts.PLAN_FILE, plan.plan_markdown)
        coder = next(s for s in result.run.subagents if s.name == chosen.name)
        await self._records.end(attempt, True, plan.summary[:500], PhaseOutput(plan=plan, coder=coder))
        return plan.plan_markdown, coder

    def _planning_command(self, sprint: Sprint, run_id: str) -> c.ExecuteAgentRun:
        return c.ExecuteAgentRun(
            prompts.task_prompt(sprint, prompts.PLAN_INSTRUCTION),
            subagents=self._deps.planners,
            judge=self._deps.judge,
            correlation=Correlation(sprint_id=sprint.id, purpose="sprint.discovery"),
            json_schema=prompts.SPRINT_PLAN_SCHEMA,
            schema_name=prompts.PLAN_SCHEMA_NAME,
            run_id=run_id,
            metadata={"sprint_id": sprint.id, "phase": "discovery"},
        )

    async def _planning_run(self, sprint: Sprint, run_id: str) -> AgentRunResult:
        """The planning run of a Discovery attempt already begun (a sprint taken over)."""
        runner = self._deps.runner
        try:
            result = await runner.result(run_id)
        except AgentRunNotFound:
            # Begun by a version that stored the run after the attempt, by a process that died between.
            new = runner.new_run(self._planning_command(sprint, run_id))
            async with self._deps.uow(lease=self._records.lease) as uow:
                lease = await runner.open(uow, new)
                await uow.commit()
            return await runner.drive(new.run, lease, fail_if_cancelled=False)
        # A run that was under way when the process died is continued by the AgentRunner's
        # resume loop; wait for it rather than run it twice.
        while result.run.status is AgentRunStatus.RUNNING:
            await asyncio.sleep(RUN_POLL_SECONDS)
            result = await runner.result(run_id)
        return result

    # ------------------------------------------------------------ Coding and Verification

    async def _coding(
        self, sprint: Sprint, workspace: SprintWorkspace, number: int, plan: str, coder: SubagentConfig, feedback: str
    ) -> None:
        existing = await self._attempt(Phase.CODING, number)
        if existing is not None and existing.status is PhaseAttemptStatus.COMPLETED:
            return
        task = LoopTask(Phase.CODING, number, coder, prompts.coder_system(plan, number, feedback), prompts.CODER_TOOLS)
        final = await ToolLoop(self._deps, self._records, workspace, sprint, task).run(existing)
        output = PhaseOutput(messages=final.messages)
        verdict = Verdict.of(final.text)
        if not verdict.succeeded:
            summary = f"the agent did not report success ({verdict.describe()})"
            await self._records.end(final.attempt, False, summary, output)
            raise PhaseFailed(f"coding attempt {number}: {summary}")
        await self._records.end(final.attempt, True, verdict.said or "the agent reported success", output)

    async def _verification(
        self, sprint: Sprint, workspace: SprintWorkspace, number: int, coder: SubagentConfig
    ) -> None:
        existing = await self._attempt(Phase.VERIFICATION, number)
        if existing is not None and existing.status is PhaseAttemptStatus.COMPLETED:
            return
        report = await workspace.run_tests()
        verifier = replace(coder, name="verifier")
        task = LoopTask(Phase.VERIFICATION, number, verifier, prompts.VERIFIER_SYSTEM, prompts.VERIFIER_TOOLS)
        final = await ToolLoop(self._deps, self._records, workspace, sprint, task).run(existing)
        output = PhaseOutput(messages=final.messages, test_report=report)
        verdict = Verdict.of(final.text)
        ok = report.passed and verdict.succeeded
        summary = f"tests: {report.summary}; agent: {verdict.describe()}"
        await self._records.end(final.attempt, ok, summary, output)
        if not ok:
            raise PhaseFailed(f"verification attempt {number}: {summary}\n{report.output[-2000:]}")


def _plan(structured: dict[str, object]) -> SprintPlan:
    """The chosen planner's answer, valid against ``SPRINT_PLAN_SCHEMA`` (the LLM service checked it)."""

    def strings(key: str) -> tuple[str, ...]:
        value = structured.get(key, [])
        return tuple(str(x) for x in value) if isinstance(value, list) else ()

    return SprintPlan(
        summary=str(structured.get("summary", "")),
        steps=strings("steps"),
        files=strings("files"),
        tests=strings("tests"),
        plan_markdown=str(structured["plan_markdown"]),
    )
