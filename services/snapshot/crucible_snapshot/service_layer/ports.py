"""What the snapshot context's use cases need from outside; ``adapters`` implement it, ``bootstrap`` wires it.

The repository (SQL), the spec service (capture and restore a project's state), the run service
(reference metrics, estimates, the replay runs themselves), the agent service (what was spent), and
the notifications that wake a suite's watchers.
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from crucible_common.updates import Updates
from crucible_snapshot.domain.model import (
    Replay,
    ReplayChange,
    ReplayMove,
    ReportStatus,
    RunMetrics,
    RunPhase,
    Snapshot,
    SnapshotTestResult,
    TestReport,
)
from crucible_snapshot.domain.snapshot_data import (
    ChatContextMessage,
    ProblemSpecCopy,
    RunConfig,
    SeedCandidate,
    SnapshotData,
    WorldModelCopy,
)


class AbstractSnapshotRepository(abc.ABC):
    # ------------------------------------------------------------ snapshots

    @abc.abstractmethod
    async def add_snapshot(self, snapshot: Snapshot) -> bool:
        """False when the name is taken (nothing is added)."""

    @abc.abstractmethod
    async def get_snapshot(self, snapshot_id: str) -> Snapshot | None: ...

    @abc.abstractmethod
    async def list_snapshots(
        self,
        *,
        tags: Sequence[str],
        project_id: str,
        name: str,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> list[Snapshot]:
        """Newest first, every tag matching, ``name`` a case-insensitive substring; without their data."""

    @abc.abstractmethod
    async def names_containing(self, part: str) -> set[str]:
        """The names of the snapshots whose name holds ``part`` (case-insensitively)."""

    @abc.abstractmethod
    async def snapshot_ids(self) -> list[str]:
        """Every snapshot, oldest first."""

    @abc.abstractmethod
    async def delete_snapshot(self, snapshot_id: str) -> bool: ...

    # ------------------------------------------------------------ test reports

    @abc.abstractmethod
    async def add_report(self, report: TestReport) -> bool:
        """False when a report with the same trigger id exists already (nothing is added)."""

    @abc.abstractmethod
    async def get_report(self, report_id: str) -> TestReport | None:
        """With its results so far, in the order of its snapshots."""

    @abc.abstractmethod
    async def report_status(self, report_id: str) -> ReportStatus | None:
        """Only its status (None: no such report), without reading its results."""

    @abc.abstractmethod
    async def report_by_trigger(self, trigger_id: str) -> TestReport | None: ...

    @abc.abstractmethod
    async def list_reports(self, limit: int, after: tuple[datetime, str] | None) -> list[TestReport]: ...

    @abc.abstractmethod
    async def add_result(self, report_id: str, position: int, result: SnapshotTestResult, at: datetime) -> None:
        """A snapshot's final result; its watchers are woken when the transaction commits."""

    @abc.abstractmethod
    async def results_by_position(self, report_id: str) -> dict[int, SnapshotTestResult]: ...

    @abc.abstractmethod
    async def results_except(self, report_id: str, positions: Collection[int]) -> list[tuple[int, SnapshotTestResult]]:
        """The results of the snapshots not at ``positions``, by position, in the order they were
        stored. By position, not after a sequence number: two results stored at once may commit in
        either order, and a reader past the later one's number would never see the other."""

    @abc.abstractmethod
    async def finish_report(
        self, report_id: str, status: ReportStatus, *, error: str, total_cost_usd: float, at: datetime
    ) -> None: ...

    # ------------------------------------------------------------ replays

    @abc.abstractmethod
    async def add_replays(self, replays: Sequence[Replay]) -> bool:
        """False when one of their trigger ids is taken (nothing is added)."""

    @abc.abstractmethod
    async def get_replay(self, trigger_id: str) -> Replay | None: ...

    @abc.abstractmethod
    async def replays_of(self, report_id: str) -> list[Replay]: ...

    @abc.abstractmethod
    async def replay_moves(self, report_id: str) -> list[ReplayMove]:
        """Where each replay of the suite's snapshots still without a result stands (not their
        metrics), in the order they run: a watch reads no more than the snapshots in progress."""

    @abc.abstractmethod
    async def update_replay(self, trigger_id: str, change: ReplayChange) -> None:
        """And wakes the watchers of the replay's suite, if it has one, once committed."""


@dataclass(frozen=True)
class ProjectState:
    """A project's ProblemSpec, WorldModel (None: it has none) and last setup messages, copied whole."""

    problem_spec: ProblemSpecCopy | None
    world_model: WorldModelCopy | None
    chat_context: tuple[ChatContextMessage, ...]
    title: str = ""


class SpecService(Protocol):
    """The spec context: projects, their ProblemSpec and WorldModel."""

    async def capture(self, project_id: str, chat_messages: int) -> ProjectState:
        """Raises ``ProjectNotFound``."""
        ...

    async def create_project(self, title: str, description: str, replay_of_snapshot_id: str) -> str:
        """A project to replay the snapshot in, marked as such (project lists leave it out)."""
        ...

    async def delete_project(self, project_id: str) -> None: ...

    async def restore(self, project_id: str, data: SnapshotData, reason: str) -> None:
        """Replace the project's ProblemSpec and WorldModel by the snapshot's, as actor SYSTEM snapshot-restore."""
        ...


@dataclass(frozen=True)
class RunInfo:
    id: str
    project_id: str
    # As the run service spells it: "CREATED", "RUNNING", "COMPLETED", ...
    status: str
    config: RunConfig
    failure_reason: str = ""


@dataclass(frozen=True)
class NewRun:
    project_id: str
    config: RunConfig
    # Deterministic in a suite: the same replay asked again is the same run.
    trigger_id: str
    replay_of_run_id: str = ""
    snapshot_test_id: str = ""
    trigger_metadata: dict[str, str] = field(default_factory=dict)


class RunService(Protocol):
    """The run context: the runs a snapshot refers to, and the replays, which are runs too."""

    async def get_run(self, run_id: str) -> RunInfo | None: ...

    async def metrics(self, run_id: str) -> RunMetrics:
        """The run's statistics as metrics: the same for a reference and for a replay."""
        ...

    async def seed_candidates(self, run_id: str) -> tuple[SeedCandidate, ...]:
        """The run's seed candidates, whole, as it stored them (none before its design phase, nor
        once the run service no longer has the run)."""
        ...

    async def estimate_usd(self, project_id: str, config: RunConfig) -> float | None:
        """What preflight says the configuration would cost in the project; None when unpriced."""
        ...

    async def create_run(self, new: NewRun) -> RunInfo: ...

    async def execute_run(self, run_id: str, phases: tuple[RunPhase, ...]) -> RunInfo:
        """Start a created run; a run already started is returned as it is."""
        ...

    async def wait_ended(self, run_id: str) -> RunInfo:
        """Until the run has ended (and posted its summary)."""
        ...

    async def cancel_run(self, run_id: str, reason: str) -> None:
        """Stop a run that is still going; one that has ended already is left as it ended."""
        ...


class Usage(Protocol):
    """The agent service's record of what model calls cost."""

    async def spent_usd(self, *, run_id: str = "", snapshot_test_id: str = "") -> float: ...


# A report's watchers are woken when a result or its end is stored, on any replica.
ReportUpdates = Updates
