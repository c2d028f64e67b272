"""What a replay of a snapshot asks the run service for: the snapshot's run config with the overrides."""

from __future__ import annotations

from dataclasses import dataclass, replace

from crucible_snapshot.domain.errors import RecordedReplayUnavailable
from crucible_snapshot.domain.model import PHASES, ReplayMode, ReplayOptions, RunPhase, Snapshot
from crucible_snapshot.domain.snapshot_data import RunConfig

RESTORE_ACTOR = "snapshot-restore"


@dataclass(frozen=True)
class ReplayPlan:
    config: RunConfig
    # Empty: every phase.
    phases: tuple[RunPhase, ...]
    # Recorded mode: the run whose recorded answers the replay's model calls get.
    replay_of_run_id: str


def replay_plan(snapshot: Snapshot, options: ReplayOptions, *, into_source_project: bool) -> ReplayPlan:
    if options.mode is ReplayMode.RECORDED and not snapshot.run_id:
        raise RecordedReplayUnavailable(snapshot.id)
    assert snapshot.data is not None, "a replay reads the snapshot with its data"
    run_config = snapshot.data.run_config
    parameters = run_config.parameters
    if options.num_candidates is not None:
        parameters = replace(parameters, num_candidates=options.num_candidates)
    if options.num_scenarios is not None:
        parameters = replace(parameters, num_scenarios=options.num_scenarios)
    if into_source_project:
        # The named seeds are still there to name; only those given whole are passed whole.
        given = tuple(s for s in parameters.seed_candidates if not s.source_candidate_id)
        parameters = replace(parameters, seed_candidates=given)
    else:
        # A new project has no runs to name seeds from: every seed is passed whole. A 2.0 snapshot
        # kept its seeds by id only: the service layer takes them whole from the source run while
        # it exists (handlers.with_seeds_for_a_new_project). Without them a seeded replay runs on
        # its new candidates alone, and an eval_only one is refused by the run's preflight
        # (insufficient_candidates).
        parameters = replace(parameters, seed_candidate_ids=())
    return ReplayPlan(
        RunConfig(run_config.mode, parameters),
        PHASES[options.phases],
        snapshot.run_id if options.mode is ReplayMode.RECORDED else "",
    )


def restore_reason(snapshot: Snapshot) -> str:
    """The provenance reason of every change a restore makes."""
    return f"restored from snapshot {snapshot.name} ({snapshot.id})"


def project_title(snapshot: Snapshot, suite: bool) -> str:
    return f"{'Snapshot test' if suite else 'Replay'}: {snapshot.name}"[:200]
