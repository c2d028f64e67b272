"""An agent turn by turn with workspace tools; its transcript is stored after every turn.

Each loop is one agent run (driver ``sprint``) recorded through the journal like any other: a
``start`` checkpoint, then one candidate (its final answer) and a single-candidate decision. A
loop whose process died is continued from the stored transcript: no model call is repeated.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from typing import NoReturn

from crucible_agent.domain.model import (
    AgentRun,
    AgentRunStatus,
    Candidate,
    CandidateMetrics,
    ChatMessage,
    Correlation,
    Decision,
    LlmRequest,
    Recording,
    Role,
    SubagentConfig,
    ToolCall,
)
from crucible_agent.domain.sprints import (
    CandidateCompleted,
    NewSprintEvent,
    Phase,
    PhaseAttempt,
    PhaseOutput,
    Sprint,
    SprintEventType,
    ToolCalled,
    ToolResult,
)
from crucible_agent.service_layer import journal
from crucible_agent.service_layer.llm import lease_fence, stop_if_fenced, store_leased
from crucible_agent.service_layer.ports import SprintWorkspace
from crucible_agent.service_layer.sprints.prompts import task_prompt
from crucible_agent.service_layer.sprints.workflow import PhaseFailed, SprintDeps, SprintRecords
from crucible_agent.service_layer.unit_of_work import AbstractUnitOfWork

MAX_TOOL_STEPS = 16


@dataclass(frozen=True)
class LoopEnd:
    text: str
    attempt: PhaseAttempt
    messages: tuple[ChatMessage, ...]


@dataclass(frozen=True)
class LoopTask:
    """Who works, told what, with which tools, as which attempt of which phase."""

    phase: Phase
    number: int
    agent: SubagentConfig
    system: str
    tools: tuple[str, ...]


class ToolLoop:
    def __init__(
        self, deps: SprintDeps, records: SprintRecords, workspace: SprintWorkspace, sprint: Sprint, task: LoopTask
    ) -> None:
        self._deps = deps
        self._records = records
        self._workspace = workspace
        self._sprint = sprint
        self._task = task

    async def run(self, existing: PhaseAttempt | None) -> LoopEnd:
        task = self._task
        specs = self._workspace.tools(task.tools)
        started = time.monotonic()
        first = [ChatMessage(Role.SYSTEM, task.system), ChatMessage(Role.USER, task_prompt(self._sprint))]
        if existing is None:
            run_id = str(uuid.uuid4())
            attempt, _ = await self._records.begin(
                task.phase, task.number, run_id, lambda uow: self._write_run(uow, run_id, first)
            )
            messages = list(first)
        else:
            attempt = existing
            messages = list(existing.output.messages)
            if not messages:
                # Its process died before the first turn was stored; a version that stored the
                # run after the attempt may have left no run either.
                messages = list(first)
                await self._open_run(attempt.agent_run_id, messages)
        correlation = Correlation(
            sprint_id=self._sprint.id, purpose=f"sprint.{task.phase.value}", agent_run_id=attempt.agent_run_id
        )
        # Every model call of the loop is fenced by the sprint's lease: once the sprint is
        # cancelled (or taken over), not one more is made here, whichever process this is.
        fence = lease_fence(self._deps.uow, self._records.lease)
        # Tool calls of a turn whose results were not stored (the process died in between) run again:
        # they are idempotent file writes and test runs, and the model call itself is not repeated.
        if messages[-1].role is Role.ASSISTANT and messages[-1].tool_calls:
            messages += await self._call_tools(messages[-1].tool_calls)
        for _ in range(MAX_TOOL_STEPS):
            if messages[-1].role is Role.ASSISTANT and not messages[-1].tool_calls:
                break
            request = LlmRequest(task.agent.provider, task.agent.model, tuple(messages), tools=specs)
            outcome = await self._deps.llm.complete(request, correlation, Recording(), fence=fence)
            await stop_if_fenced(self._deps.uow, outcome)
            if outcome.result is not None:
                messages.append(ChatMessage(Role.ASSISTANT, outcome.result.text, outcome.result.tool_calls))
            attempt = _with_messages(attempt, messages)
            await store_leased(self._deps.uow, self._records.lease, outcome, _saver(attempt))
            if outcome.error is not None:
                summary = f"{task.phase.value} attempt {task.number}: {outcome.error.reason}: {outcome.error.message}"
                await self._fail(attempt, started, summary, messages)
            assert outcome.result is not None
            if not outcome.result.tool_calls:
                break
            messages += await self._call_tools(outcome.result.tool_calls)
            attempt = _with_messages(attempt, messages)
            await self._records.save(attempt)
        else:
            summary = f"{task.phase.value} attempt {task.number}: no answer after {MAX_TOOL_STEPS} steps"
            await self._fail(attempt, started, summary, messages)
        final = messages[-1].content
        await self._close_run(attempt, final, started)
        return LoopEnd(final, attempt, tuple(messages))

    async def _fail(self, attempt: PhaseAttempt, started: float, summary: str, messages: list[ChatMessage]) -> NoReturn:
        """Close the run and the attempt as failed (so a resume does not redo it), then say so."""
        await self._close_run(attempt, "", started, failed=summary)
        await self._records.end(attempt, False, summary, PhaseOutput(messages=tuple(messages)))
        raise PhaseFailed(summary)

    async def _call_tools(self, calls: tuple[ToolCall, ...]) -> list[ChatMessage]:
        results = []
        for call in calls:
            if call.name not in self._task.tools:
                # Offered tools are a promise to the model, not a filter: refuse the others here.
                result = ToolResult(f"error: TOOL_NOT_ALLOWED: {call.name} is not available in this phase", True)
            else:
                result = await self._workspace.call_tool(call.name, call.arguments)
            called = ToolCalled(
                self._task.phase,
                self._task.number,
                call.name,
                str(call.arguments.get("path", "")),
                result.is_error,
                result.content[:300],
            )
            await self._records.emit(NewSprintEvent(SprintEventType.TOOL_CALLED, called))
            results.append(ChatMessage(Role.TOOL, result.content, tool_call_id=call.id))
        return results

    async def _open_run(self, run_id: str, messages: list[ChatMessage]) -> None:
        async with self._deps.uow(lease=self._records.lease) as uow:
            if await uow.repo.get_run(run_id) is not None:
                return
            await self._write_run(uow, run_id, messages)
            await uow.commit()

    async def _write_run(self, uow: AbstractUnitOfWork, run_id: str, messages: list[ChatMessage]) -> None:
        at = journal.now()
        task = self._task
        run = AgentRun(
            id=run_id,
            status=AgentRunStatus.RUNNING,
            message=messages[-1].content,
            history=(messages[0],),
            subagents=(task.agent,),
            judge=None,
            workspace_ref=self._sprint.workspace_ref,
            metadata={"sprint_id": self._sprint.id, "phase": task.phase.value, "attempt": task.number},
            correlation=Correlation(sprint_id=self._sprint.id, purpose=f"sprint.{task.phase.value}"),
            recording=Recording(),
            fork_of=None,
            failure_reason="",
            created_at=at,
            updated_at=at,
        )
        state = {"phase": task.phase.value, "attempt": task.number, "agent": asdict(task.agent)}
        await journal.open_run(uow, run, driver=journal.SPRINT, start_state=state)

    async def _close_run(self, attempt: PhaseAttempt, final: str, started: float, failed: str = "") -> None:
        """Close the phase's agent run: its one candidate and the single-candidate decision, or its failure."""
        at = journal.now()
        run_id = attempt.agent_run_id
        agent = self._task.agent
        async with self._deps.uow(lease=self._records.lease) as uow:
            run = await uow.repo.get_run(run_id, for_update=True)
            if run is None or run.status is not AgentRunStatus.RUNNING:
                # Already closed (a resumed attempt whose run was closed before the process died).
                return
            if failed:
                await journal.fail(uow, run_id, failed, at)
            else:
                usage = (await uow.repo.usage(Correlation(agent_run_id=run_id))).total
                metrics = CandidateMetrics(
                    duration_ms=int((time.monotonic() - started) * 1000),
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    usd=usage.usd if usage.unpriced_calls == 0 else None,
                    attempts=usage.calls,
                    response_model=agent.model,
                )
                candidate = Candidate(
                    journal.new_id(), run_id, agent.name, agent.provider, agent.model, final, metrics, "", at
                )
                await journal.add_candidate(uow, candidate)
                decision = Decision(
                    run_id, candidate.id, candidate.name, "", "", "the phase's only agent", True, "single_candidate"
                )
                await journal.decide(uow, decision, at)
                completed = CandidateCompleted(self._task.phase, self._task.number, agent.name, agent.provider, metrics)
                event = NewSprintEvent(SprintEventType.CANDIDATE_COMPLETED, completed)
                await uow.sprints.add_event(self._sprint.id, event, at)
            await uow.commit()


def _saver(attempt: PhaseAttempt) -> Callable[[AbstractUnitOfWork], Awaitable[None]]:
    async def save(uow: AbstractUnitOfWork) -> None:
        await uow.sprints.save_attempt(attempt)

    return save


def _with_messages(attempt: PhaseAttempt, messages: list[ChatMessage]) -> PhaseAttempt:
    return replace(attempt, output=replace(attempt.output, messages=tuple(messages)))
