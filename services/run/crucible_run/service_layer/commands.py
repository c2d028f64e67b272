"""The run context's use cases, one evolvable input dataclass each."""

from __future__ import annotations

from dataclasses import dataclass, field

from crucible_run.domain.model import JsonObject, RunMode, RunParameters, RunPhase, RunStatus, TriggerSource


@dataclass(frozen=True)
class PreflightRun:
    project_id: str
    mode: RunMode | None
    parameters: RunParameters = field(default_factory=RunParameters)
    chat_session_id: str = ""
    recommended_message_id: str = ""


@dataclass(frozen=True)
class CreateRun:
    project_id: str
    mode: RunMode | None
    parameters: RunParameters = field(default_factory=RunParameters)
    chat_session_id: str = ""
    recommended_message_id: str = ""
    ui_trigger_id: str = ""
    ui_trigger_source: TriggerSource | None = None
    ui_trigger_metadata: JsonObject = field(default_factory=dict)
    # Recorded replay: every model call is answered from this ended run's calls (see Run).
    replay_of_run_id: str = ""
    snapshot_test_id: str = ""


@dataclass(frozen=True)
class ExecuteRun:
    run_id: str
    # Empty: every phase.
    phases: tuple[RunPhase, ...] = ()


@dataclass(frozen=True)
class ListRuns:
    project_id: str
    status: RunStatus | None = None
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class CancelRun:
    run_id: str
    reason: str = ""


@dataclass(frozen=True)
class WatchRun:
    run_id: str
    after_sequence: int = 0


@dataclass(frozen=True)
class ListRunItems:
    """Candidates, scenarios or evaluations of a run (evaluations: of one candidate, when set)."""

    run_id: str
    page_size: int = 0
    page_token: str = ""
    candidate_id: str = ""
