"""Sprints: the use cases, and the PhaseRunner that plans, codes and verifies in the background.

Discovery is a multi-provider agent run (each subagent proposes a plan, a judge picks one) that
writes ``implementation_plan.md``. Coding is an agent with workspace tools (up to ``MAX_RETRIES``
attempts, each told what failed before). Verification runs the tests in the sandbox and asks an
agent, who may only read and run tests, to confirm with ``VERIFICATION_SUCCESS``.

Every step is stored before the next: each phase attempt with its status, each tool-loop turn
with its transcript, each event. A sprint whose process died (its lease lapsed) is claimed by a
live process and continued from what is stored, so no finished phase is redone and no stored
model call is paid for again.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

from crucible_agent.adapters.repository import message_from_json, message_json
from crucible_agent.adapters.sandbox import SandboxLimits, TestRun, run_tests
from crucible_agent.adapters.workspace import Artifact, ToolBox, ToolResult, Workspace, WorkspaceError
from crucible_agent.domain.errors import AgentRunNotFound
from crucible_agent.domain.model import (
    AgentRun,
    AgentRunStatus,
    Candidate,
    ChatMessage,
    Checkpoint,
    Correlation,
    Decision,
    JsonObject,
    JudgeConfig,
    LlmRequest,
    Recording,
    Role,
    SubagentConfig,
    ToolCall,
    ToolSpec,
)
from crucible_agent.domain.sprint_errors import (
    ArtifactNotFound,
    SpecNotAnswered,
    SprintFinished,
    SprintNotFound,
    SprintNotPlanned,
    TriggerRequired,
)
from crucible_agent.domain.sprints import (
    MAX_RETRIES,
    SUCCESS_TOKEN,
    AttemptStatus,
    Phase,
    PhaseAttempt,
    SpecSnapshot,
    Sprint,
    SprintEvent,
    SprintStatus,
    Trigger,
)
from crucible_agent.service_layer import commands as c
from crucible_agent.service_layer.agent_runs import AgentRunner
from crucible_agent.service_layer.leases import HEARTBEAT_SECONDS
from crucible_agent.service_layer.leases import lease_until as _lease_until
from crucible_agent.service_layer.leases import now as _now
from crucible_agent.service_layer.llm import LlmService, UowFactory
from crucible_common.errors import CrucibleError, FieldViolation, InvalidArgument, Unavailable, ValidationFailed
from crucible_common.ids import parse_id
from crucible_common.pagination import page_request, split_page, time_cursor

logger = logging.getLogger(__name__)

MAX_TOOL_STEPS = 16
WATCH_POLL_SECONDS = 0.2
PLAN_FILE = "implementation_plan.md"
FAILURE_TOKEN = "VERIFICATION_FAILED"
SPRINT_PLAN_SCHEMA: JsonObject = {
    "type": "object",
    "properties": {
        "summary": {"type": "string", "minLength": 1},
        "steps": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "files": {"type": "array", "items": {"type": "string"}},
        "tests": {"type": "array", "items": {"type": "string"}},
        "plan_markdown": {"type": "string", "minLength": 1},
    },
    "required": ["summary", "steps", "files", "tests", "plan_markdown"],
}
CODER_SYSTEM = (
    "You are the coding agent of a sprint. Work only through your tools, in the sprint's workspace: "
    "write the program and pytest tests for it (test files named test_*.py), run the tests with "
    "run_tests, and fix the code until they pass. When they pass, answer with VERIFICATION_SUCCESS "
    "and a short summary of the files."
)
VERIFIER_SYSTEM = (
    "You are verifying a sprint. You may read files and run the tests, but not change anything. "
    "Run the tests with run_tests. Answer VERIFICATION_SUCCESS only if they pass; otherwise answer "
    "VERIFICATION_FAILED and say what fails."
)


@dataclass(frozen=True)
class SprintDefaults:
    """Which models plan (subagents + judge) and which one codes when the plan names none."""

    planners: tuple[SubagentConfig, ...]
    judge: JudgeConfig | None
    sandbox: SandboxLimits


class SprintStopped(Exception):
    """The sprint is no longer active (cancelled, or finished by another process): stop quietly."""


class PhaseFailed(Exception):
    """A phase attempt ended without success; ``summary`` is what the next attempt is told."""

    def __init__(self, summary: str) -> None:
        super().__init__(summary)
        self.summary = summary


class SprintService:
    def __init__(
        self,
        llm: LlmService,
        runner: AgentRunner,
        uow: UowFactory,
        *,
        artifacts_root: Path,
        defaults: SprintDefaults,
        owner: str,
    ) -> None:
        self.llm = llm
        self.runner = runner
        self.uow = uow
        self.root = artifacts_root
        self.defaults = defaults
        self.owner = owner
        self._tasks: dict[str, asyncio.Task[None]] = {}

    # ------------------------------------------------------------ use cases

    async def create(self, name: str, goal: str, spec: SpecSnapshot) -> Sprint:
        problems = []
        spec_id = parse_id(spec.spec_id, "spec.spec_id")
        if not name.strip() or len(name) > 200:
            problems.append(FieldViolation("name", "1 to 200 characters"))
        if len(goal) > 10_000:
            problems.append(FieldViolation("goal", "at most 10000 characters"))
        if not spec.task.strip():
            problems.append(FieldViolation("spec.task", "must not be empty"))
        if problems:
            raise ValidationFailed(problems, "sprint")
        if spec.planning_status != "answered":
            raise SpecNotAnswered(spec_id, spec.planning_status or "unknown")
        now = _now()
        sprint_id = str(uuid.uuid4())
        sprint = Sprint(
            id=sprint_id,
            spec=replace(spec, spec_id=spec_id),
            name=name.strip(),
            goal=goal,
            status=SprintStatus.PLANNED,
            current_phase=None,
            trigger=None,
            workspace_ref=sprint_id,
            failure_reason="",
            created_at=now,
            updated_at=now,
        )
        async with self.uow() as uow:
            await uow.sprints.add(sprint)
            await uow.sprints.add_event(sprint_id, "sprint.created", {"name": sprint.name, "spec_id": spec_id}, now)
            await uow.commit()
        return sprint

    async def start(self, sprint_id: str, trigger_id: str, trigger_source: str) -> Sprint:
        sprint_id = parse_id(sprint_id, "sprint_id")
        missing = [n for n, v in (("id", trigger_id), ("source", trigger_source)) if not v.strip()]
        if missing:
            raise TriggerRequired(missing)
        trigger = Trigger(trigger_id.strip(), trigger_source.strip(), _now())
        async with self.uow() as uow:
            sprint = await uow.sprints.get(sprint_id, for_update=True)
            if sprint is None:
                raise SprintNotFound(sprint_id)
            if sprint.status is not SprintStatus.PLANNED:
                raise SprintNotPlanned(sprint_id, sprint.status.value)
            await uow.sprints.start(sprint_id, trigger, self.owner, _lease_until())
            await uow.sprints.add_event(
                sprint_id, "sprint.started", {"trigger_id": trigger.id, "trigger_source": trigger.source}, trigger.at
            )
            await uow.commit()
        self._launch(sprint_id)
        return await self.get(sprint_id)

    async def get(self, sprint_id: str) -> Sprint:
        sprint_id = parse_id(sprint_id, "sprint_id")
        async with self.uow(read_only=True) as uow:
            sprint = await uow.sprints.get(sprint_id)
        if sprint is None:
            raise SprintNotFound(sprint_id)
        return sprint

    async def list_sprints(self, spec_id: str, page_size: int, page_token: str) -> tuple[list[Sprint], str]:
        scope = f"sprints:{spec_id}"
        page = page_request(page_size, page_token, scope=scope)
        async with self.uow(read_only=True) as uow:
            rows = await uow.sprints.list_sprints(
                spec_id, page.size + 1, (page.after.time, page.after.id) if page.after else None
            )
        return split_page(rows, page, time_cursor, scope=scope)

    async def cancel(self, sprint_id: str, reason: str) -> Sprint:
        sprint = await self.get(sprint_id)
        if sprint.status in (SprintStatus.COMPLETED, SprintStatus.FAILED):
            raise SprintFinished(sprint.id, sprint.status.value)
        task = self._tasks.get(sprint.id)
        if task is not None:
            task.cancel()
        await self.finish(sprint.id, SprintStatus.FAILED, f"cancelled: {reason or 'no reason given'}")
        return await self.get(sprint.id)

    async def artifacts(self, sprint_id: str) -> list[Artifact]:
        sprint = await self.get(sprint_id)
        try:
            return await asyncio.to_thread(self.workspace(sprint).artifacts)
        except WorkspaceError as exc:
            raise _workspace_failure(exc) from exc

    async def artifact(self, sprint_id: str, path: str) -> tuple[str, bytes]:
        sprint = await self.get(sprint_id)
        try:
            content = await asyncio.to_thread(self.workspace(sprint).open_artifact, path)
        except WorkspaceError as exc:
            if exc.reason == "NOT_FOUND":
                raise ArtifactNotFound(sprint.id, path) from exc
            raise _workspace_failure(exc) from exc
        return path, content

    async def watch(self, sprint_id: str, after_sequence: int = 0) -> AsyncIterator[SprintEvent]:
        """Every event after ``after_sequence``, then new ones, until the sprint has ended."""
        sprint = await self.get(sprint_id)
        cursor = after_sequence
        while True:
            async with self.uow(read_only=True) as uow:
                # Status first: an end that commits between the two reads still has its event read.
                current = await uow.sprints.get(sprint.id)
                events = await uow.sprints.events(sprint.id, cursor, 500)
            for event in events:
                cursor = event.sequence
                yield event
            finished = current is None or current.status in (SprintStatus.COMPLETED, SprintStatus.FAILED)
            if finished and not events:
                return
            if not events:
                await asyncio.sleep(WATCH_POLL_SECONDS)

    # ------------------------------------------------------------ background

    async def resume_forever(self, interval: float = HEARTBEAT_SECONDS) -> None:
        """Take over active sprints whose process died, now and then, for the service's lifetime."""
        while True:
            try:
                async with self.uow() as uow:
                    sprints = await uow.sprints.claim_stale(self.owner, _lease_until(), 5)
                    await uow.commit()
                for sprint in sprints:
                    logger.info("sprint %s: lease lapsed; continuing it from its stored phases", sprint.id)
                    self._launch(sprint.id)
            # The loop must outlive one failed round (a lost database, ...); the traceback is logged.
            except Exception:
                logger.exception("resuming abandoned sprints failed; will retry")
            await asyncio.sleep(interval)

    def _launch(self, sprint_id: str) -> None:
        if sprint_id in self._tasks:
            return
        runner = PhaseRunner(self, sprint_id)
        task = asyncio.create_task(runner.run(), name=f"sprint {sprint_id}")
        self._tasks[sprint_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(sprint_id, None))

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    # ------------------------------------------------------------ what the PhaseRunner works with

    def workspace(self, sprint: Sprint) -> Workspace:
        return Workspace(self.root, sprint.workspace_ref)

    async def emit(self, sprint_id: str, type_: str, data: JsonObject) -> None:
        async with self.uow() as uow:
            await uow.sprints.add_event(sprint_id, type_, data, _now())
            await uow.commit()

    async def save(self, attempt: PhaseAttempt, event: str | None = None, data: JsonObject | None = None) -> None:
        async with self.uow() as uow:
            await uow.sprints.save_attempt(attempt)
            if event is not None:
                await uow.sprints.add_event(attempt.sprint_id, event, data or {}, _now())
            await uow.commit()

    async def finish(self, sprint_id: str, status: SprintStatus, failure_reason: str) -> None:
        async with self.uow() as uow:
            sprint = await uow.sprints.get(sprint_id, for_update=True)
            if sprint is None or sprint.status in (SprintStatus.COMPLETED, SprintStatus.FAILED):
                return
            now = _now()
            await uow.sprints.finish(sprint_id, status, failure_reason, now)
            event = "sprint.completed" if status is SprintStatus.COMPLETED else "sprint.failed"
            await uow.sprints.add_event(sprint_id, event, {"failure_reason": failure_reason}, now)
            await uow.commit()


class PhaseRunner:
    """Runs one sprint to its end from what is stored: Discovery, then Coding and Verification, retried."""

    def __init__(self, service: SprintService, sprint_id: str) -> None:
        self._s = service
        self._sprint_id = sprint_id

    async def run(self) -> None:
        me = asyncio.current_task()
        assert me is not None
        heartbeat = asyncio.create_task(self._heartbeat(me))
        try:
            sprint = await self._s.get(self._sprint_id)
            if sprint.status is not SprintStatus.ACTIVE:
                return
            plan, coder = await self._discovery(sprint)
            feedback = ""
            for attempt in range(1, MAX_RETRIES + 1):
                try:
                    await self._coding(sprint, attempt, plan, coder, feedback)
                    await self._verification(sprint, attempt, coder)
                except PhaseFailed as failure:
                    feedback = failure.summary
                    continue
                await self._s.finish(sprint.id, SprintStatus.COMPLETED, "")
                return
            await self._s.finish(
                sprint.id, SprintStatus.FAILED, f"coding failed {MAX_RETRIES} times; last failure: {feedback}"
            )
        except PhaseFailed as failure:
            await self._s.finish(self._sprint_id, SprintStatus.FAILED, failure.summary)
        except SprintStopped:
            logger.info("sprint %s is no longer active; its runner stops", self._sprint_id)
        except Exception as exc:
            logger.exception("sprint %s failed unexpectedly", self._sprint_id)
            await self._s.finish(self._sprint_id, SprintStatus.FAILED, f"internal error: {type(exc).__name__}: {exc}")
        finally:
            heartbeat.cancel()

    async def _heartbeat(self, runner: asyncio.Task[None]) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                async with self._s.uow() as uow:
                    held = await uow.sprints.renew_lease(self._sprint_id, self._s.owner, _lease_until())
                    await uow.commit()
            except Exception:
                # A lost database for a moment: the lease still has time; try again next beat.
                logger.warning("sprint %s: could not renew its lease", self._sprint_id, exc_info=True)
                continue
            if not held:
                # Another process owns the sprint now (or it ended): stop before paying for anything.
                logger.warning("sprint %s: lease lost; this runner stops", self._sprint_id)
                runner.cancel()
                return

    async def _attempt(self, phase: Phase, number: int) -> PhaseAttempt | None:
        sprint = await self._s.get(self._sprint_id)
        if sprint.status is not SprintStatus.ACTIVE:
            raise SprintStopped
        return next((a for a in sprint.phases if a.phase is phase and a.attempt == number), None)

    async def begin(self, phase: Phase, number: int, agent_run_id: str, output: JsonObject) -> PhaseAttempt:
        attempt = PhaseAttempt(self._sprint_id, phase, number, AttemptStatus.RUNNING, agent_run_id, "", output, _now())
        async with self._s.uow() as uow:
            await uow.sprints.set_phase(self._sprint_id, phase, attempt.started_at)
            await uow.sprints.save_attempt(attempt)
            await uow.sprints.add_event(
                self._sprint_id, "phase.started", {"phase": phase.value, "attempt": number}, attempt.started_at
            )
            await uow.commit()
        return attempt

    async def end(self, attempt: PhaseAttempt, ok: bool, summary: str, output: JsonObject) -> PhaseAttempt:
        done = replace(
            attempt,
            status=AttemptStatus.COMPLETED if ok else AttemptStatus.FAILED,
            summary=summary,
            output=output,
            finished_at=_now(),
        )
        event = "phase.completed" if ok else "phase.failed"
        await self._s.save(done, event, {"phase": attempt.phase.value, "attempt": attempt.attempt, "summary": summary})
        return done

    # ------------------------------------------------------------ Discovery

    async def _discovery(self, sprint: Sprint) -> tuple[str, SubagentConfig]:
        existing = await self._attempt(Phase.DISCOVERY, 1)
        if existing is not None and existing.status is AttemptStatus.COMPLETED:
            return existing.output["plan_markdown"], SubagentConfig(**existing.output["coder"])
        if existing is not None and existing.status is AttemptStatus.FAILED:
            raise PhaseFailed(f"discovery failed: {existing.summary}")
        run_id = existing.agent_run_id if existing else str(uuid.uuid4())
        attempt = existing or await self.begin(Phase.DISCOVERY, 1, run_id, {})
        result = await self._discovery_run(sprint, run_id)
        for candidate in result.candidates:
            await self._s.emit(
                sprint.id,
                "candidate.completed",
                {
                    "phase": "discovery",
                    "name": candidate.name,
                    "provider": candidate.provider,
                    "metrics": candidate.metrics,
                },
            )
        for error in result.errors:
            await self._s.emit(
                sprint.id,
                "candidate.failed",
                {"phase": "discovery", "name": error.name, "provider": error.provider, "reason": error.reason},
            )
        decision = result.decision
        chosen = next((x for x in result.candidates if decision and x.id == decision.candidate_id), None)
        if decision is None or chosen is None or chosen.structured is None:
            await self.end(attempt, False, result.run.failure_reason or "no plan was chosen", {})
            raise PhaseFailed(f"discovery failed: {result.run.failure_reason or 'no plan was chosen'}")
        await self._s.emit(sprint.id, "judge.decided", {"phase": "discovery", **asdict(decision)})
        plan = str(chosen.structured["plan_markdown"])
        await self._write(sprint, PLAN_FILE, plan)
        coder = next(s for s in result.run.subagents if s.name == chosen.name)
        await self.end(
            attempt,
            True,
            str(chosen.structured.get("summary", ""))[:500],
            {"plan_markdown": plan, "plan": chosen.structured, "coder": asdict(coder)},
        )
        return plan, coder

    async def _discovery_run(self, sprint: Sprint, run_id: str) -> Any:
        runner = self._s.runner
        try:
            result = await runner.result(run_id)
        except AgentRunNotFound:
            result = None
        if result is None:
            planners = self._s.defaults.planners
            return await runner.execute(
                c.ExecuteAgentRun(
                    _task_prompt(
                        sprint,
                        "Plan this sprint: give the steps, the files and the tests, "
                        f"and the plan as Markdown for {PLAN_FILE}.",
                    ),
                    subagents=planners,
                    judge=self._s.defaults.judge,
                    correlation=Correlation(sprint_id=sprint.id, purpose="sprint.discovery"),
                    json_schema=SPRINT_PLAN_SCHEMA,
                    schema_name="sprint_plan",
                    run_id=run_id,
                    metadata={"sprint_id": sprint.id, "phase": "discovery"},
                ),
                fail_if_cancelled=False,
            )
        # A run that was under way when the process died is continued by the AgentRunner's
        # resume loop; wait for it rather than run it twice.
        while result.run.status is AgentRunStatus.RUNNING:
            await asyncio.sleep(0.5)
            result = await runner.result(run_id)
        return result

    async def _write(self, sprint: Sprint, path: str, content: str) -> None:
        await asyncio.to_thread(self._s.workspace(sprint).write_file, path, content)

    # ------------------------------------------------------------ Coding and Verification

    async def _coding(self, sprint: Sprint, number: int, plan: str, coder: SubagentConfig, feedback: str) -> None:
        existing = await self._attempt(Phase.CODING, number)
        if existing is not None and existing.status is AttemptStatus.COMPLETED:
            return
        if existing is not None and existing.status is AttemptStatus.FAILED:
            raise PhaseFailed(existing.summary)
        system = f"{CODER_SYSTEM}\n\nImplementation plan:\n{plan}"
        if feedback:
            system += f"\n\nAttempt {number} of {MAX_RETRIES}. The previous attempt failed:\n{feedback}\nFix it."
        loop = ToolLoop(
            self,
            sprint,
            Phase.CODING,
            number,
            coder,
            system,
            ("fs_read_file", "fs_write_file", "fs_list_dir", "run_tests"),
        )
        final = await loop.run(existing)
        ok = SUCCESS_TOKEN in final.text and FAILURE_TOKEN not in final.text
        if not ok:
            await self.end(
                final.attempt, False, _first_lines(final.text) or "the agent did not report success", final.output
            )
            raise PhaseFailed(f"coding attempt {number}: {_first_lines(final.text) or 'no success reported'}")
        await self.end(final.attempt, True, _first_lines(final.text), final.output)

    async def _verification(self, sprint: Sprint, number: int, coder: SubagentConfig) -> None:
        existing = await self._attempt(Phase.VERIFICATION, number)
        if existing is not None and existing.status is AttemptStatus.COMPLETED:
            return
        if existing is not None and existing.status is AttemptStatus.FAILED:
            raise PhaseFailed(existing.summary)
        report = await run_tests(Path(self._s.workspace(sprint).path), None, limits=self._s.defaults.sandbox)
        loop = ToolLoop(
            self,
            sprint,
            Phase.VERIFICATION,
            number,
            replace(coder, name="verifier"),
            VERIFIER_SYSTEM,
            ("fs_read_file", "fs_list_dir", "run_tests"),
        )
        final = await loop.run(existing)
        output = {**final.output, "test_report": _report_json(report)}
        ok = report.passed and SUCCESS_TOKEN in final.text and FAILURE_TOKEN not in final.text
        summary = f"tests: {report.summary}; agent: {_first_lines(final.text)}"
        await self.end(final.attempt, ok, summary, output)
        if not ok:
            raise PhaseFailed(f"verification attempt {number}: {summary}\n{report.output[-2000:]}")


@dataclass(frozen=True)
class LoopEnd:
    text: str
    attempt: PhaseAttempt
    output: JsonObject


class ToolLoop:
    """An agent turn by turn with workspace tools; the transcript is stored after every turn."""

    def __init__(
        self,
        runner: PhaseRunner,
        sprint: Sprint,
        phase: Phase,
        number: int,
        agent: SubagentConfig,
        system: str,
        tools: tuple[str, ...],
    ) -> None:
        self._r = runner
        self._s = runner._s
        self._sprint = sprint
        self._phase = phase
        self._number = number
        self._agent = agent
        self._system = system
        self._tool_names = tools

    async def run(self, existing: PhaseAttempt | None) -> LoopEnd:
        workspace = self._s.workspace(self._sprint)
        toolbox = ToolBox(workspace, limits=self._s.defaults.sandbox)
        specs = tuple(ToolSpec(n, d, p) for n, d, p in toolbox.tool_specs() if n in self._tool_names)
        started = time.monotonic()
        if existing is not None:
            attempt = existing
            messages = [message_from_json(m) for m in existing.output.get("messages", [])]
        else:
            attempt = await self._r.begin(self._phase, self._number, str(uuid.uuid4()), {})
            messages = []
        if not messages:
            # A new attempt, or one whose process died before its first turn was stored.
            messages = [ChatMessage(Role.SYSTEM, self._system), ChatMessage(Role.USER, _task_prompt(self._sprint, ""))]
            await self._start_run(attempt.agent_run_id, messages)
        correlation = Correlation(
            sprint_id=self._sprint.id, purpose=f"sprint.{self._phase.value}", agent_run_id=attempt.agent_run_id
        )
        # Tool calls of a turn whose results were not stored (the process died in between) run again:
        # they are idempotent file writes and test runs, and the model call itself is not repeated.
        if messages and messages[-1].role is Role.ASSISTANT and messages[-1].tool_calls:
            messages += await self._call_tools(toolbox, messages[-1].tool_calls)
        for _ in range(MAX_TOOL_STEPS):
            if messages and messages[-1].role is Role.ASSISTANT and not messages[-1].tool_calls:
                break
            request = LlmRequest(self._agent.provider, self._agent.model, tuple(messages), tools=specs)
            outcome = await self._s.llm.complete(request, correlation, Recording())
            async with self._s.uow() as uow:
                await outcome.store(uow)
                if outcome.result is not None:
                    messages.append(ChatMessage(Role.ASSISTANT, outcome.result.text, outcome.result.tool_calls))
                attempt = replace(attempt, output={"messages": [message_json(m) for m in messages]})
                await uow.sprints.save_attempt(attempt)
                await uow.commit()
            if outcome.error is not None:
                summary = f"{self._phase.value} attempt {self._number}: {outcome.error.reason}: {outcome.error.message}"
                await self._fail(attempt, started, summary, messages)
            assert outcome.result is not None
            if not outcome.result.tool_calls:
                break
            messages += await self._call_tools(toolbox, outcome.result.tool_calls)
            attempt = replace(attempt, output={"messages": [message_json(m) for m in messages]})
            await self._s.save(attempt)
        else:
            summary = f"{self._phase.value} attempt {self._number}: no answer after {MAX_TOOL_STEPS} steps"
            await self._fail(attempt, started, summary, messages)
        final = messages[-1].content if messages else ""
        await self._finish_run(attempt, final, started)
        return LoopEnd(final, attempt, {"messages": [message_json(m) for m in messages]})

    async def _fail(self, attempt: PhaseAttempt, started: float, summary: str, messages: list[ChatMessage]) -> NoReturn:
        """Close the run and the attempt as failed (so a resume does not redo it), then say so."""
        await self._finish_run(attempt, "", started, failed=summary)
        await self._r.end(attempt, False, summary, {"messages": [message_json(m) for m in messages]})
        raise PhaseFailed(summary)

    async def _call_tools(self, toolbox: ToolBox, calls: tuple[ToolCall, ...]) -> list[ChatMessage]:
        results = []
        for call in calls:
            if call.name not in self._tool_names:
                # Offered tools are a promise to the model, not a filter: refuse the others here.
                result = ToolResult(f"error: TOOL_NOT_ALLOWED: {call.name} is not available in this phase", True)
            else:
                result = await toolbox.call(call.name, call.arguments)
            await self._s.emit(
                self._sprint.id,
                "tool.called",
                {
                    "phase": self._phase.value,
                    "attempt": self._number,
                    "tool": call.name,
                    "path": str(call.arguments.get("path", "")),
                    "is_error": result.is_error,
                    "result": result.content[:300],
                },
            )
            results.append(ChatMessage(Role.TOOL, result.content, tool_call_id=call.id))
        return results

    async def _start_run(self, run_id: str, messages: list[ChatMessage]) -> None:
        now = _now()
        run = AgentRun(
            id=run_id,
            status=AgentRunStatus.RUNNING,
            message=messages[-1].content,
            history=(messages[0],),
            subagents=(self._agent,),
            judge=None,
            workspace_ref=self._sprint.workspace_ref,
            metadata={"sprint_id": self._sprint.id, "phase": self._phase.value, "attempt": self._number},
            correlation=Correlation(sprint_id=self._sprint.id, purpose=f"sprint.{self._phase.value}"),
            recording=Recording(),
            fork_of=None,
            failure_reason="",
            created_at=now,
            updated_at=now,
        )
        state = {"phase": self._phase.value, "attempt": self._number, "agent": asdict(self._agent)}
        async with self._s.uow() as uow:
            if await uow.repo.get_run(run_id) is not None:
                return
            await uow.repo.add_run(run, self._s.owner, None, driver="sprint")
            await uow.repo.add_checkpoint(Checkpoint(str(uuid.uuid4()), run_id, 1, "start", state, now))
            await uow.commit()

    async def _finish_run(self, attempt: PhaseAttempt, final: str, started: float, failed: str = "") -> None:
        """Close the phase's agent run: its one candidate, the (single-candidate) decision, checkpoints."""
        now = _now()
        run_id = attempt.agent_run_id
        async with self._s.uow() as uow:
            run = await uow.repo.get_run(run_id, for_update=True)
            if run is None or run.status is not AgentRunStatus.RUNNING:
                # Already closed (a resumed attempt whose run was closed before the process died).
                return
            usage = await uow.repo.usage(Correlation(agent_run_id=run_id))
            metrics = {
                "duration_ms": int((time.monotonic() - started) * 1000),
                "input_tokens": usage.total.input_tokens,
                "output_tokens": usage.total.output_tokens,
                "usd": usage.total.usd if usage.total.unpriced_calls == 0 else None,
                "calls": usage.total.calls,
            }
            if failed:
                await uow.repo.finish_run(run_id, AgentRunStatus.FAILED, failed, now)
            else:
                candidate = Candidate(
                    str(uuid.uuid4()),
                    run_id,
                    self._agent.name,
                    self._agent.provider,
                    self._agent.model,
                    final,
                    metrics,
                    "",
                    now,
                )
                await uow.repo.add_candidate(candidate)
                seq = await uow.repo.next_checkpoint_sequence(run_id)
                await uow.repo.add_checkpoint(
                    Checkpoint(
                        str(uuid.uuid4()),
                        run_id,
                        seq,
                        f"candidate:{self._agent.name}",
                        {"output": final, "metrics": metrics},
                        now,
                    )
                )
                decision = Decision(
                    run_id, candidate.id, candidate.name, "", "", "the phase's only agent", True, "single_candidate"
                )
                await uow.repo.set_decision(decision, now)
                await uow.repo.add_checkpoint(
                    Checkpoint(str(uuid.uuid4()), run_id, seq + 1, "decision", asdict(decision), now)
                )
                await uow.repo.finish_run(run_id, AgentRunStatus.COMPLETED, "", now)
                await uow.sprints.add_event(
                    self._sprint.id,
                    "candidate.completed",
                    {
                        "phase": self._phase.value,
                        "attempt": self._number,
                        "name": self._agent.name,
                        "provider": self._agent.provider,
                        "metrics": metrics,
                    },
                    now,
                )
            await uow.commit()


def _workspace_failure(exc: WorkspaceError) -> CrucibleError:
    """A refused path is the caller's mistake; anything else is the server's."""
    if exc.reason in ("IO_ERROR", "TOO_MANY_FILES"):
        return Unavailable(f"the sprint's workspace cannot be read: {exc.message}", reason=f"WORKSPACE_{exc.reason}")
    return InvalidArgument(
        f"{exc.reason}: {exc.message}", violations=[FieldViolation("path", exc.message)], reason=exc.reason
    )


def _task_prompt(sprint: Sprint, instruction: str) -> str:
    answers = "\n".join(f"- {q}\n  {a}" for q, a in sprint.spec.answers)
    parts = [f"Task: {sprint.spec.task}", f"Sprint goal: {sprint.goal}" if sprint.goal else ""]
    if answers:
        parts.append(f"Answers to the planning questions:\n{answers}")
    if instruction:
        parts.append(instruction)
    return "\n\n".join(p for p in parts if p)


def _first_lines(text: str, limit: int = 300) -> str:
    return " ".join(text.strip().splitlines()[:3])[:limit]


def _report_json(report: TestRun) -> JsonObject:
    return {
        "passed": report.passed,
        "exit_code": report.exit_code,
        "timed_out": report.timed_out,
        "summary": report.summary,
        "duration_ms": report.duration_ms,
        "network_isolated": report.network_isolated,
        "notes": list(report.notes),
        "output": report.output[-4000:],
    }
