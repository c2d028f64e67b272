"""Creating (capturing), listing, reading and deleting snapshots, and single replays, on fakes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from crucible_common.errors import FailedPrecondition, InvalidArgument, ValidationFailed
from crucible_snapshot.domain.errors import (
    ConfirmationRequired,
    ProjectNotFound,
    RecordedReplayUnavailable,
    RunNotEnded,
    SnapshotNameTaken,
    SnapshotNotFound,
    TriggerRequired,
)
from crucible_snapshot.domain.model import (
    Invariant,
    ReplayMode,
    ReplayOptions,
    ReplayPhases,
    ResultStatus,
    RunPhase,
)
from crucible_snapshot.domain.naming import MAX_NAME, run_snapshot_name
from crucible_snapshot.domain.snapshot_data import RunConfig, RunParameters, SeedCandidate
from crucible_snapshot.service_layer import commands as c
from crucible_snapshot.service_layer import handlers as h
from crucible_snapshot.service_layer import replays
from crucible_snapshot.service_layer.ports import ProjectState
from tests.unit.snapshot.fakes import DATA, PROBLEM, WORLD, FakeRepository, World, good_metrics, snapshot


@pytest.fixture
def world() -> World:
    return World.make()


async def test_a_snapshot_of_a_run_copies_the_project_and_takes_the_runs_metrics(world: World) -> None:
    project = world.spec.project()
    run = world.runs.reference(project, good_metrics(candidates=4))
    cmd = c.CreateSnapshot(
        "  Bridge ",
        project,
        run,
        tags=("smoke", "smoke", " ui "),
        invariants=(Invariant("run_status", "completed"),),
        chat_context_messages=5,
    )

    made = await h.create_snapshot(cmd, world.deps)

    assert (made.name, made.tags, made.run_id, made.parent_id) == ("Bridge", ("smoke", "ui"), run, "")
    assert made.reference_metrics is not None
    assert made.reference_metrics.candidates == 4
    assert made.invariants == (Invariant("run_status", "COMPLETED"),)
    assert made.data is not None
    assert made.data.problem_spec is not None
    assert made.data.problem_spec.constraints[0].name == "budget"
    assert made.data.run_config.parameters.num_candidates == 3
    assert [m.content for m in made.data.chat_context] == ["hi"]
    assert await h.get_snapshot(made.id, world.deps.uow) == made


async def test_a_snapshot_of_a_run_given_no_name_is_named_after_its_project_and_run(world: World) -> None:
    project = world.spec.project(ProjectState(PROBLEM, WORLD, (), "River crossing"))
    run = world.runs.reference(project, good_metrics())

    first = await h.create_snapshot(c.CreateSnapshot("", project, run), world.deps)
    # The same run again takes the next free number; a name someone chose is never taken over.
    world.add(snapshot(f"River crossing · run {run[:8]} · completed (3)".upper()))
    second = await h.create_snapshot(c.CreateSnapshot("  ", project, run), world.deps)
    third = await h.create_snapshot(c.CreateSnapshot("", project, run), world.deps)

    assert first.name == f"River crossing · run {run[:8]} · completed"
    assert second.name == f"River crossing · run {run[:8]} · completed (2)"
    assert third.name == f"River crossing · run {run[:8]} · completed (4)"
    # A name is still required of anything else.
    with pytest.raises(ValidationFailed) as refused:
        await h.create_snapshot(c.CreateSnapshot("", project), world.deps)
    assert [v.field for v in refused.value.violations] == ["name"]


async def test_a_default_name_taken_meanwhile_is_chosen_again_a_few_times(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = world.spec.project(ProjectState(PROBLEM, WORLD, (), "Dam"))
    run = world.runs.reference(project, good_metrics())
    named = f"Dam · run {run[:8]} · completed"
    # Another snapshot of the run takes the name between this one's read of the names and its write.
    world.add(snapshot(named))
    reads = 0
    real = FakeRepository.names_containing

    async def stale_once(self: FakeRepository, part: str) -> set[str]:
        nonlocal reads
        reads += 1
        return set() if reads == 1 else await real(self, part)

    monkeypatch.setattr(FakeRepository, "names_containing", stale_once)
    made = await h.create_snapshot(c.CreateSnapshot("", project, run), world.deps)
    assert (made.name, reads) == (f"{named} (2)", 2)

    # Never a free name in sight: it gives up with the name it could not take, after a few tries.
    async def always_stale(self: FakeRepository, part: str) -> set[str]:
        nonlocal reads
        reads += 1
        return set()

    reads = 0
    monkeypatch.setattr(FakeRepository, "names_containing", always_stale)
    with pytest.raises(SnapshotNameTaken):
        await h.create_snapshot(c.CreateSnapshot("", project, run), world.deps)
    assert reads == h.DEFAULT_NAME_TRIES


def test_a_default_name_shortens_the_title_never_the_run_nor_the_number() -> None:
    name = run_snapshot_name("T" * 300, "0123456789abcdef", "FAILED", {f"{'T' * 150}… · run 01234567 · failed"})
    assert len(name) <= MAX_NAME
    assert name.endswith("… · run 01234567 · failed")
    taken = {run_snapshot_name("T" * 300, "0123456789abcdef", "FAILED", ())}
    second = run_snapshot_name("T" * 300, "0123456789abcdef", "FAILED", taken)
    assert len(second) <= MAX_NAME
    assert second.endswith("… · run 01234567 · failed (2)")


async def test_a_snapshot_without_a_run_has_no_reference_and_the_problem_specs_mode(world: World) -> None:
    made = await h.create_snapshot(c.CreateSnapshot("setup only", world.spec.project()), world.deps)

    assert made.run_id == ""
    assert made.reference_metrics is None
    assert made.data is not None
    assert (made.data.run_config.mode, made.data.run_config.parameters.num_candidates) == ("full_search", 0)


async def test_a_new_snapshot_from_a_parent_keeps_its_data_with_new_invariants_and_tags(world: World) -> None:
    parent = await h.create_snapshot(
        c.CreateSnapshot("parent", world.spec.project(), invariants=(Invariant("min_candidates", 1),)), world.deps
    )

    child = await h.create_snapshot(c.CreateSnapshot("child", parent_snapshot_id=parent.id, tags=("v2",)), world.deps)
    same_invariants = await h.create_snapshot(c.CreateSnapshot("child 2", parent_snapshot_id=parent.id), world.deps)
    new_invariants = await h.create_snapshot(
        c.CreateSnapshot("child 3", parent_snapshot_id=parent.id, invariants=(Invariant("max_candidates", 9),)),
        world.deps,
    )

    assert (child.parent_id, child.project_id, child.data, child.tags) == (
        parent.id,
        parent.project_id,
        parent.data,
        ("v2",),
    )
    assert same_invariants.invariants == parent.invariants
    assert new_invariants.invariants == (Invariant("max_candidates", 9),)
    assert child.id != parent.id


async def test_bad_requests_name_every_field(world: World) -> None:
    cmd = c.CreateSnapshot(
        "",
        tags=("",),
        invariants=(Invariant("min_candidates", "x"), Invariant("custom", "nope >")),
        chat_context_messages=101,
    )

    with pytest.raises(ValidationFailed) as refused:
        await h.create_snapshot(cmd, world.deps)

    assert [v.field for v in refused.value.violations] == [
        "name",
        "tags[0]",
        "chat_context_messages",
        "project_id",
        "invariants[0].value",
        "invariants[1].value",
    ]


async def test_unknown_projects_runs_and_runs_that_have_not_ended_are_refused(world: World) -> None:
    project = world.spec.project()
    running = world.runs.reference(project, good_metrics(status="RUNNING"))
    other = world.runs.reference(world.spec.project(), good_metrics())

    with pytest.raises(ProjectNotFound):
        await h.create_snapshot(c.CreateSnapshot("a", "6d4b0d4e-5b1a-4a8e-9d7f-000000000000"), world.deps)
    with pytest.raises(RunNotEnded):
        await h.create_snapshot(c.CreateSnapshot("b", project, running), world.deps)
    with pytest.raises(ValidationFailed, match="run_id: a run of another project"):
        await h.create_snapshot(c.CreateSnapshot("c", project, other), world.deps)
    with pytest.raises(InvalidArgument, match="must be a UUID"):
        await h.create_snapshot(c.CreateSnapshot("d", "not-an-id"), world.deps)


async def test_names_are_unique_and_snapshots_are_deleted_only_when_confirmed(world: World) -> None:
    project = world.spec.project()
    made = await h.create_snapshot(c.CreateSnapshot("once", project), world.deps)
    with pytest.raises(SnapshotNameTaken):
        await h.create_snapshot(c.CreateSnapshot("once", project), world.deps)

    with pytest.raises(ConfirmationRequired) as unconfirmed:
        await h.delete_snapshot(c.DeleteSnapshot(made.id), world.deps.uow)
    await h.delete_snapshot(c.DeleteSnapshot(made.id, confirm=True), world.deps.uow)

    assert unconfirmed.value.reason == "CONFIRMATION_REQUIRED"
    with pytest.raises(SnapshotNotFound):
        await h.get_snapshot(made.id, world.deps.uow)


async def test_listing_matches_every_tag_a_name_substring_and_pages(world: World) -> None:
    a, b, cc = world.add(
        snapshot("Alpha smoke", tags=("smoke", "ui")),
        snapshot("beta SMOKE", tags=("smoke",)),
        snapshot("gamma", tags=("ui",)),
    )

    both, _ = await h.list_snapshots(c.ListSnapshots(tags=("ui", "smoke")), world.deps.uow)
    named, _ = await h.list_snapshots(c.ListSnapshots(name="smoke"), world.deps.uow)
    first, token = await h.list_snapshots(c.ListSnapshots(page_size=2), world.deps.uow)
    rest, end = await h.list_snapshots(c.ListSnapshots(page_size=2, page_token=token), world.deps.uow)

    assert [s.id for s in both] == [a.id]
    assert [s.id for s in named] == [b.id, a.id]
    assert [s.id for s in first + rest] == [cc.id, b.id, a.id]
    assert end == ""
    assert all(s.data is None for s in both)


async def test_a_replay_restores_into_a_new_project_and_runs_with_its_trigger(world: World) -> None:
    made = world.add(snapshot("bridge", invariants=(Invariant("min_candidates", 3),)))[0]
    options = ReplayOptions(ReplayPhases.DESIGN, num_candidates=2, num_scenarios=4)

    started = await replays.replay_snapshot(c.ReplaySnapshot(made.id, "click-1", options), world.deps)
    again = await replays.replay_snapshot(c.ReplaySnapshot(made.id, "click-1", options), world.deps)

    (run,) = world.runs.runs
    assert (started.project_id, started.run_id, started.status) == (run.new.project_id, run.info.id, "RUNNING")
    assert again.run_id == started.run_id
    assert again.project_id == started.project_id
    assert started.project_id != made.project_id
    # Marked as a replay's, so that the projects list leaves it out.
    assert world.spec.replay_of[started.project_id] == made.id
    assert run.new.trigger_id == "click-1"
    assert run.phases == (RunPhase.DESIGN, RunPhase.SCENARIOS)
    params = run.new.config.parameters
    assert (params.num_candidates, params.num_scenarios, params.budget_usd) == (2, 4, None)
    assert run.new.replay_of_run_id == ""
    (restored,) = world.spec.restored
    assert restored == (started.project_id, made.data, f"restored from snapshot bridge ({made.id})")
    assert world.runs.paid[run.new.trigger_id] == 1


async def test_a_waited_replay_answers_with_its_invariants_checked(world: World) -> None:
    made = world.add(snapshot("w", invariants=(Invariant("min_candidates", 3), Invariant("custom", "usd < 0.01"))))[0]
    options = ReplayOptions(reuse_project=True, mode=ReplayMode.RECORDED)

    answer = await replays.replay_snapshot(c.ReplaySnapshot(made.id, "cli-7", options, wait=True), world.deps)

    (run,) = world.runs.runs
    assert answer.project_id == made.project_id
    assert run.new.replay_of_run_id == made.run_id
    assert answer.status == "COMPLETED"
    assert answer.metrics is not None
    assert answer.metrics.candidates == 3
    assert [r.status for r in answer.invariants] == [ResultStatus.PASSED, ResultStatus.FAILED]


async def test_a_replay_needs_a_trigger_and_a_recorded_one_a_run(world: World) -> None:
    without_run = world.add(snapshot("no run", run_id="", reference_metrics=None))[0]

    with pytest.raises(TriggerRequired):
        await replays.replay_snapshot(c.ReplaySnapshot(without_run.id, " "), world.deps)
    with pytest.raises(RecordedReplayUnavailable):
        await replays.replay_snapshot(
            c.ReplaySnapshot(without_run.id, "t", ReplayOptions(mode=ReplayMode.RECORDED)), world.deps
        )
    assert world.runs.runs == []


async def test_a_run_the_run_service_refuses_reaches_the_caller(world: World) -> None:
    made = world.add(snapshot("blocked"))[0]
    world.runs.refuse = "the run cannot start: missing_world_model"

    with pytest.raises(FailedPrecondition, match="missing_world_model"):
        await replays.replay_snapshot(c.ReplaySnapshot(made.id, "t1"), world.deps)


async def test_an_eval_only_runs_seeds_are_kept_whole_and_replayed_whole_into_a_new_project(world: World) -> None:
    project = world.spec.project()
    named, given = SeedCandidate("Arch", "stone", "corbel", ("dry",), "c-1"), SeedCandidate("Beam", "steel")
    config = RunConfig(
        "eval_only", RunParameters(num_scenarios=2, seed_candidate_ids=("c-1",), seed_candidates=(given,))
    )
    run = world.runs.reference(project, good_metrics(), config, seeds=(named, given))
    made = await h.create_snapshot(c.CreateSnapshot("seeded", project, run), world.deps)

    await replays.replay_snapshot(c.ReplaySnapshot(made.id, "new", ReplayOptions()), world.deps)
    await replays.replay_snapshot(c.ReplaySnapshot(made.id, "same", ReplayOptions(reuse_project=True)), world.deps)

    assert made.data is not None
    assert made.data.run_config.parameters.seed_candidates == (named, given)
    into_new, into_source = (r.new.config.parameters for r in world.runs.runs)
    # A new project has no runs to name them from: both whole.
    assert (into_new.seed_candidate_ids, into_new.seed_candidates) == ((), (named, given))
    # The source project still has the named one: it stays named, lineage and all.
    assert (into_source.seed_candidate_ids, into_source.seed_candidates) == (("c-1",), (given,))


async def test_a_snapshot_that_kept_seeds_by_id_only_replays_them_whole_from_its_run(world: World) -> None:
    # As a 2.0 document reads once migrated: the named seed's id, nothing whole.
    named = SeedCandidate("Arch", "stone", "corbel", ("dry",), "c-1")
    config = RunConfig("eval_only", RunParameters(num_scenarios=2, seed_candidate_ids=("c-1",)))
    old = world.add(snapshot("2.0", data=replace(DATA, run_config=config)))[0]
    world.runs.reference(old.project_id, good_metrics(old.run_id), config, seeds=(named,))
    gone = world.add(snapshot("2.0, run gone", data=replace(DATA, run_config=config)))[0]

    await replays.replay_snapshot(c.ReplaySnapshot(old.id, "new", ReplayOptions()), world.deps)
    await replays.replay_snapshot(c.ReplaySnapshot(old.id, "same", ReplayOptions(reuse_project=True)), world.deps)
    await replays.replay_snapshot(c.ReplaySnapshot(gone.id, "gone", ReplayOptions()), world.deps)

    into_new, into_source, without_run = (r.new.config.parameters for r in world.runs.runs)
    assert (into_new.seed_candidate_ids, into_new.seed_candidates) == ((), (named,))
    assert (into_source.seed_candidate_ids, into_source.seed_candidates) == (("c-1",), ())
    # Nothing to take them from: as before, the run's preflight says what is missing.
    assert (without_run.seed_candidate_ids, without_run.seed_candidates) == ((), ())


async def test_a_run_that_ended_before_storing_its_seeds_keeps_those_it_was_given_whole(world: World) -> None:
    project = world.spec.project()
    given = SeedCandidate("Beam", "steel")
    config = RunConfig("seeded", RunParameters(2, 2, seed_candidate_ids=("c-1",), seed_candidates=(given,)))
    run = world.runs.reference(project, good_metrics(status="FAILED"), config)

    made = await h.create_snapshot(c.CreateSnapshot("early", project, run), world.deps)

    assert made.data is not None
    assert made.data.run_config.parameters.seed_candidates == (given,)
    assert made.data.run_config.parameters.seed_candidate_ids == ("c-1",)
