"""What the PhaseRunner and its tool loops share: their dependencies, how they stop, and their writes.

Every write of a running sprint goes through ``SprintRecords``, fenced by the sprint's lease: a
process that lost the sprint to another cannot store one more step.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from crucible_agent.domain.model import JudgeConfig, SubagentConfig
from crucible_agent.domain.sprint_errors import SprintNotFound
from crucible_agent.domain.sprints import (
    NewSprintEvent,
    Phase,
    PhaseAttempt,
    PhaseAttemptStatus,
    PhaseEnded,
    PhaseOutput,
    PhaseStarted,
    Sprint,
    SprintEnded,
    SprintEventType,
    SprintStatus,
)
from crucible_agent.service_layer.agent_runs import AgentRunner
from crucible_agent.service_layer.journal import now
from crucible_agent.service_layer.llm import LlmService
from crucible_agent.service_layer.ports import LeaseStore, Workspaces
from crucible_agent.service_layer.unit_of_work import AbstractUnitOfWork, UowFactory
from crucible_common.leases import HEARTBEAT_SECONDS, Lease
from crucible_common.updates import Updates

T = TypeVar("T")


@dataclass(frozen=True)
class SprintDeps:
    """Everything sprints need, wired once by the bootstrap."""

    llm: LlmService
    runner: AgentRunner
    uow: UowFactory
    workspaces: Workspaces
    leases: LeaseStore
    # Who plans (subagents + judge); the planner whose plan wins codes it.
    planners: tuple[SubagentConfig, ...]
    judge: JudgeConfig | None
    # This process's name in leases.
    owner: str
    # Wakes a sprint's watchers when its events are stored, on any replica.
    updates: Updates
    heartbeat_seconds: float = HEARTBEAT_SECONDS


class SprintStopped(Exception):
    """The sprint is no longer active (cancelled, or finished by another process): stop quietly."""


class PhaseFailed(Exception):
    """A phase attempt ended without success; ``summary`` is what the next attempt is told."""

    def __init__(self, summary: str) -> None:
        super().__init__(summary)
        self.summary = summary


class SprintRecords:
    """One running sprint's state and writes, each write fenced by ``lease``."""

    def __init__(self, uow: UowFactory, lease: Lease) -> None:
        self.uow = uow
        self.lease = lease
        self.sprint_id = lease.id

    async def active(self) -> Sprint:
        """The sprint as stored; ``SprintStopped`` unless it is still active."""
        async with self.uow(read_only=True) as uow:
            sprint = await uow.sprints.get(self.sprint_id)
        if sprint is None:
            raise SprintNotFound(self.sprint_id)
        if sprint.status is not SprintStatus.ACTIVE:
            raise SprintStopped
        return sprint

    async def emit(self, event: NewSprintEvent) -> None:
        async with self.uow(lease=self.lease) as uow:
            await uow.sprints.add_event(self.sprint_id, event, now())
            await uow.commit()

    async def begin(
        self, phase: Phase, number: int, agent_run_id: str, open_run: Callable[[AbstractUnitOfWork], Awaitable[T]]
    ) -> tuple[PhaseAttempt, T]:
        """Store a new attempt with its agent run (``open_run`` writes it), so it never names a missing run."""
        attempt = PhaseAttempt(
            self.sprint_id, phase, number, PhaseAttemptStatus.RUNNING, agent_run_id, "", PhaseOutput(), now()
        )
        async with self.uow(lease=self.lease) as uow:
            await uow.sprints.set_phase(self.sprint_id, phase, attempt.started_at)
            await uow.sprints.save_attempt(attempt)
            opened = await open_run(uow)
            event = NewSprintEvent(SprintEventType.PHASE_STARTED, PhaseStarted(phase, number))
            await uow.sprints.add_event(self.sprint_id, event, attempt.started_at)
            await uow.commit()
        return attempt, opened

    async def save(self, attempt: PhaseAttempt) -> None:
        async with self.uow(lease=self.lease) as uow:
            await uow.sprints.save_attempt(attempt)
            await uow.commit()

    async def end(self, attempt: PhaseAttempt, ok: bool, summary: str, output: PhaseOutput) -> PhaseAttempt:
        done = replace(
            attempt,
            status=PhaseAttemptStatus.COMPLETED if ok else PhaseAttemptStatus.FAILED,
            summary=summary,
            output=output,
            finished_at=now(),
        )
        kind = SprintEventType.PHASE_COMPLETED if ok else SprintEventType.PHASE_FAILED
        async with self.uow(lease=self.lease) as uow:
            await uow.sprints.save_attempt(done)
            event = NewSprintEvent(kind, PhaseEnded(attempt.phase, attempt.attempt, summary))
            await uow.sprints.add_event(self.sprint_id, event, done.finished_at or now())
            await uow.commit()
        return done

    async def finish(self, status: SprintStatus, failure_reason: str) -> None:
        async with self.uow(lease=self.lease) as uow:
            sprint = await uow.sprints.get(self.sprint_id, for_update=True)
            if sprint is None or sprint.status.finished:
                return
            at = now()
            await uow.sprints.finish(self.sprint_id, status, failure_reason, at)
            kind = (
                SprintEventType.SPRINT_COMPLETED if status is SprintStatus.COMPLETED else SprintEventType.SPRINT_FAILED
            )
            await uow.sprints.add_event(self.sprint_id, NewSprintEvent(kind, SprintEnded(failure_reason)), at)
            await uow.commit()
