"""Sprints: a spec's task planned, coded and verified by an agent in a sandboxed workspace."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from crucible_agent.domain.model import JsonObject

MAX_RETRIES = 3
SUCCESS_TOKEN = "VERIFICATION_SUCCESS"


class SprintStatus(enum.StrEnum):
    PLANNED = "planned"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"


class Phase(enum.StrEnum):
    DISCOVERY = "discovery"
    CODING = "coding"
    VERIFICATION = "verification"


class AttemptStatus(enum.StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True)
class SpecSnapshot:
    spec_id: str
    title: str
    task: str
    planning_status: str
    answers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Trigger:
    id: str
    source: str
    at: datetime


@dataclass(frozen=True)
class PhaseAttempt:
    sprint_id: str
    phase: Phase
    attempt: int
    status: AttemptStatus
    agent_run_id: str
    summary: str
    # What the phase produced or was doing: the plan, the transcript, the test report, ...
    output: JsonObject
    started_at: datetime
    finished_at: datetime | None = None


@dataclass(frozen=True)
class Sprint:
    id: str
    spec: SpecSnapshot
    name: str
    goal: str
    status: SprintStatus
    current_phase: Phase | None
    trigger: Trigger | None
    workspace_ref: str
    failure_reason: str
    created_at: datetime
    updated_at: datetime
    phases: list[PhaseAttempt] = field(default_factory=list)


@dataclass(frozen=True)
class SprintEvent:
    sequence: int
    sprint_id: str
    type: str
    data: JsonObject
    at: datetime
