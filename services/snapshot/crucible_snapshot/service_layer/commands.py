"""The snapshot context's use cases, one evolvable input dataclass each."""

from __future__ import annotations

from dataclasses import dataclass, field

from crucible_snapshot.domain.model import Invariant, ReplayOptions, RunMetrics, TestOptions
from crucible_snapshot.domain.snapshot_data import SnapshotData


@dataclass(frozen=True)
class CreateSnapshot:
    name: str
    project_id: str = ""
    run_id: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    invariants: tuple[Invariant, ...] = ()
    parent_snapshot_id: str = ""
    # 0: the default.
    chat_context_messages: int = 0
    # An import: the data (and the source run's metrics) as another installation exported them.
    data: SnapshotData | None = None
    reference_metrics: RunMetrics | None = None


@dataclass(frozen=True)
class ListSnapshots:
    tags: tuple[str, ...] = ()
    project_id: str = ""
    name: str = ""
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class DeleteSnapshot:
    snapshot_id: str
    confirm: bool = False


@dataclass(frozen=True)
class ReplaySnapshot:
    snapshot_id: str
    ui_trigger_id: str
    options: ReplayOptions = field(default_factory=ReplayOptions)
    wait: bool = False


@dataclass(frozen=True)
class RunSnapshotTests:
    ui_trigger_id: str
    snapshot_ids: tuple[str, ...] = ()
    all: bool = False
    options: TestOptions = field(default_factory=TestOptions)


@dataclass(frozen=True)
class ListTestReports:
    page_size: int = 0
    page_token: str = ""
