"""Recorded replay and snapshot tests on real Postgres, with the agent service faked (``run_fakes``).

A run replayed from another asks the same calls and is answered from that run's: nothing is paid,
and it ranks exactly as its source did, failed evaluations included. A replay that asks a call
its source never made fails, saying it diverged. CreateRun checks the source; every model call of
a snapshot test's run carries the suite's id.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from crucible_common.errors import FailedPrecondition, InvalidArgument, ValidationFailed
from crucible_run.domain.model import RankedCandidate, Run, RunMode, RunStatus
from crucible_run.service_layer import commands as c
from crucible_run.service_layer import handlers as h
from tests.integration.run_fakes import RECKLESS, FakeModels
from tests.integration.run_harness import Harness, run_engine

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with run_engine(database_url) as engine:
        yield engine


@pytest.fixture
async def harness(engine: AsyncEngine) -> AsyncIterator[Harness]:
    made = Harness.make(engine)
    yield made
    await made.close()


async def _ranking(harness: Harness, run: Run) -> list[RankedCandidate]:
    _, ranking = await h.run_results(run.id, harness.deps.uow)
    return ranking


def _as_ranked(ranking: list[RankedCandidate]) -> list[tuple[object, ...]]:
    """What a ranking says, without the ids a replay gives its own candidates."""
    return [(r.rank, r.title, r.label, r.i, r.p, r.r, r.violated_constraints, r.evaluations) for r in ranking]


async def test_a_replayed_run_pays_for_nothing_and_ranks_exactly_as_its_source(harness: Harness) -> None:
    project = harness.spec.project()
    source = await harness.run(project, num_candidates=4, num_scenarios=3)
    paid = sum(harness.models.paid.values())

    replay = await harness.run(project, replay_of=source.id, num_candidates=4, num_scenarios=3)

    assert replay.status is RunStatus.COMPLETED, replay.failure_reason
    assert replay.replay_of_run_id == source.id
    assert sum(harness.models.paid.values()) == paid
    assert harness.models.paid_for("", replay.id) == 0
    assert replay.usage.usd == 0.0
    assert replay.usage.calls == source.usage.calls == 14
    source_ranking, replay_ranking = await _ranking(harness, source), await _ranking(harness, replay)
    assert _as_ranked(replay_ranking) == _as_ranked(source_ranking)
    assert replay_ranking[-1].title == f"{RECKLESS} design"
    assert {r.candidate_id for r in replay_ranking}.isdisjoint(r.candidate_id for r in source_ranking)
    # Every call of the replay asked its source's run for the answer.
    assert {x.replay_of_run_id for x in harness.models.calls if x.run_id == replay.id} == {source.id}


async def test_a_replay_reproduces_the_failed_evaluations_of_its_source(engine: AsyncEngine) -> None:
    harness = Harness.make(engine, FakeModels(failing_titles=("Design 1",)))
    project = harness.spec.project()
    try:
        source = await harness.run(project, num_candidates=3, num_scenarios=2)
        replay = await harness.run(project, replay_of=source.id, num_candidates=3, num_scenarios=2)
        source_ranking, replay_ranking = await _ranking(harness, source), await _ranking(harness, replay)
    finally:
        await harness.close()

    assert source.counts.failed_evaluations == replay.counts.failed_evaluations == 2
    assert replay.status is RunStatus.COMPLETED
    assert replay.error_summary == source.error_summary
    assert _as_ranked(replay_ranking) == _as_ranked(source_ranking)


async def test_a_replay_that_asks_what_its_source_never_did_fails_saying_it_diverged(harness: Harness) -> None:
    project = harness.spec.project()
    source = await harness.run(project, num_candidates=3, num_scenarios=2)
    paid = sum(harness.models.paid.values())

    replay = await harness.run(project, replay_of=source.id, num_candidates=4, num_scenarios=2)

    assert replay.status is RunStatus.FAILED
    assert replay.failure_reason.startswith(
        f"the replay diverged from run {source.id}: that run never made this design call"
    )
    assert replay.counts.evaluations == 0
    assert sum(harness.models.paid.values()) == paid


async def test_an_evaluation_its_source_never_made_stops_the_replay(harness: Harness) -> None:
    """Not one failed evaluation among others: past it, the replay is not its source any more."""
    project = harness.spec.project()
    source = await harness.run(project, num_candidates=2, num_scenarios=2)
    # As if the source had stopped (its budget) before evaluating its last pair.
    recorded = harness.models.by_request
    del recorded[next(k for k, v in recorded.items() if k[0] == source.id and isinstance(v, dict) and "P" in v)]

    replay = await harness.run(project, replay_of=source.id, num_candidates=2, num_scenarios=2)

    assert replay.status is RunStatus.FAILED
    assert replay.failure_reason.startswith(
        f"the replay diverged from run {source.id}: that run never made this evaluation call"
    )
    assert replay.counts.failed_evaluations == 0


async def test_a_snapshot_tests_calls_carry_its_suite(harness: Harness) -> None:
    project = harness.spec.project()
    suite = f"suite-{uuid.uuid4()}"

    run = await harness.run(project, suite=suite, num_candidates=2, num_scenarios=2)

    assert run.snapshot_test_id == suite
    mine = [x for x in harness.models.calls if x.run_id == run.id]
    assert len(mine) == 6
    assert {x.snapshot_test_id for x in mine} == {suite}
    assert (await h.get_run(run.id, harness.deps.uow)).snapshot_test_id == suite


async def test_create_run_checks_the_run_to_replay(harness: Harness) -> None:
    project = harness.spec.project()
    created = await harness.create(project, num_candidates=2, num_scenarios=2)
    request = c.CreateRun(project, RunMode.FULL_SEARCH, ui_trigger_id=str(uuid.uuid4()))

    with pytest.raises(InvalidArgument) as malformed:
        await h.create_run(replace(request, replay_of_run_id="run-7"), harness.deps)
    with pytest.raises(InvalidArgument) as unknown:
        await h.create_run(replace(request, replay_of_run_id=str(uuid.uuid4())), harness.deps)
    with pytest.raises(FailedPrecondition) as not_ended:
        await h.create_run(replace(request, replay_of_run_id=created.id), harness.deps)
    with pytest.raises(ValidationFailed) as long_suite:
        await h.create_run(replace(request, snapshot_test_id="s" * 101), harness.deps)

    assert [v.field for v in malformed.value.violations] == ["replay_of_run_id"]
    assert unknown.value.reason == "REPLAY_SOURCE_NOT_FOUND"
    assert [v.field for v in unknown.value.violations] == ["replay_of_run_id"]
    assert not_ended.value.reason == "REPLAY_SOURCE_NOT_ENDED"
    assert not_ended.value.metadata["status"] == "CREATED"
    assert [v.field for v in long_suite.value.violations] == ["snapshot_test_id"]
    assert harness.models.calls == []
