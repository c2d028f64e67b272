"""The run service's use cases and pipeline on real Postgres, with the spec and agent services faked.

Explicit creation (a trigger, once), blockers, recommendations; each mode end to end; failed
evaluations; budgets; a crash mid-run resumed from what was stored without paying twice; a lost
lease that stops the writer; cancel; the summary posted once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from crucible_common.errors import InvalidArgument, ValidationFailed
from crucible_run.adapters import tables as t
from crucible_run.adapters.repository import SqlRunRepository
from crucible_run.domain import estimates as est
from crucible_run.domain.errors import (
    ProjectNotFound,
    RecommendationInvalid,
    RunBlocked,
    RunNotCreated,
    TriggerReused,
)
from crucible_run.domain.events import EvaluationDone, NewRunEvent, PhaseChanged, PhaseStarted, RunEventType
from crucible_run.domain.model import (
    CandidateDraft,
    CandidateLabel,
    CandidateOrigin,
    EvaluationStatus,
    Run,
    RunMode,
    RunPhase,
    RunState,
    RunStatus,
    TriggerSource,
)
from crucible_run.service_layer import commands as c
from crucible_run.service_layer import handlers as h
from crucible_run.service_layer.pipeline import RAW_ANSWER_KEPT, RunExecutor
from crucible_run.service_layer.ports import ModelAnswer, ModelCall
from tests.integration.run_fakes import PRICE, RECKLESS, Crash, FakeModels, FakeSpec
from tests.integration.run_harness import Harness, run_engine, steal


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with run_engine(database_url) as engine:
        yield engine


@pytest.fixture
async def harness(engine: AsyncEngine) -> AsyncIterator[Harness]:
    made = Harness.make(engine)
    yield made
    await made.close()


# ---------------------------------------------------------------- the contract


async def test_a_full_search_ranks_rejects_the_breaker_and_posts_its_summary_once(harness: Harness) -> None:
    project = harness.spec.project()

    run = await harness.run(project, num_candidates=4, num_scenarios=3)

    assert run.status is RunStatus.COMPLETED, run.failure_reason
    assert (run.counts.candidates, run.counts.scenarios, run.counts.evaluations) == (4, 3, 12)
    assert run.usage.calls == 14
    assert run.phases == run.phases_done == (RunPhase.DESIGN, RunPhase.SCENARIOS, RunPhase.EVALUATE, RunPhase.RANK)
    _, ranking = await h.run_results(run.id, harness.deps.uow)
    assert [r.rank for r in ranking] == [1, 2, 3, 4]
    rejected = ranking[-1]
    assert rejected.title == f"{RECKLESS} design"
    assert rejected.label is CandidateLabel.REJECTED
    assert [(v.constraint, v.weight, v.scenarios) for v in rejected.violated_constraints] == [("budget", 100, 3)]
    assert all(r.i is not None and r.i > 0 for r in ranking)
    # One summary, labelled, whose id the run stores.
    (posted,) = harness.spec.posted
    assert run.run_summary_message_id == posted.message_id
    summary = posted.summary
    assert summary["run_id"] == run.id
    assert summary["status"] == "COMPLETED"
    assert summary["counts"] == {"candidates": 4, "scenarios": 3, "evaluations": 12}
    assert [x["candidate_id"] for x in summary["top_candidates"]] == [r.candidate_id for r in ranking[:3]]
    assert summary["links"] == {"results_view": f"/runs/{run.id}"}
    assert summary["summary_label"] in posted.content
    assert posted.target.project_id == project
    # Beside the seed's summary: what was rejected and why, in the metadata and in the text.
    assert posted.metadata["run_rejections"] == [
        {
            "candidate_id": rejected.candidate_id,
            "title": f"{RECKLESS} design",
            "evaluations": 3,
            "violated_constraints": [{"constraint": "budget", "weight": 100, "scenarios": 3}],
        }
    ]
    assert f"Rejected: {RECKLESS} design, broke budget in 3 of 3 scenarios" in posted.content
    statistics = await h.run_statistics(run.id, harness.deps.uow, harness.models)
    assert statistics.coverage == 1.0
    assert statistics.missing_pairs == ()
    assert statistics.hard_constraint_violations == 1
    assert statistics.top_candidate is not None
    assert statistics.top_candidate.candidate_id == ranking[0].candidate_id


async def test_a_run_holds_a_task_for_each_call_in_flight_not_for_each_pair(engine: AsyncEngine) -> None:
    evaluations: list[int] = []

    class Counting(FakeModels):
        async def complete(self, call: ModelCall) -> ModelAnswer:
            if call.purpose == "evaluation":
                evaluations.append(sum(1 for task in asyncio.all_tasks() if _evaluates_a_pair(task)))
            return await super().complete(call)

    models = Counting(latency=0.005)
    harness, run = await _run_alone(engine, models, num_candidates=10, num_scenarios=20)

    assert run.status is RunStatus.COMPLETED, run.failure_reason
    assert len(evaluations) == 200
    assert models.most_in_flight == harness.pipeline.concurrency == 8
    # A run holds an evaluator a call in flight (8, not 200), and a waiter an answer not yet stored.
    assert 1 <= evaluations[0] <= 8
    assert max(evaluations) < 200


async def _run_alone(engine: AsyncEngine, models: FakeModels, **options: Any) -> tuple[Harness, Run]:
    """One full-search run (``options`` as ``Harness.create`` takes them) on a harness of its own,
    closed once the run is over."""
    harness = Harness.make(engine, models)
    try:
        return harness, await harness.run(harness.spec.project(), **options)
    finally:
        await harness.close()


def _evaluates_a_pair(task: asyncio.Task[object]) -> bool:
    """An evaluator, or a waiter for an evaluation's write: the tasks an evaluate phase holds."""
    return getattr(task.get_coro(), "__qualname__", "") in ("RunExecutor._evaluate.<locals>.evaluator", "_written")


async def test_an_answer_in_as_the_runner_stops_is_stored(engine: AsyncEngine) -> None:
    """The fifth evaluation's answer arrives, and in that same turn the runner is stopped (its
    process shutting down): the answer, paid for, is stored all the same."""
    stopped: list[str] = []
    runner: asyncio.Task[None] | None = None

    class StoppedAtAnAnswer(FakeModels):
        async def complete(self, call: ModelCall) -> ModelAnswer:
            answer = await super().complete(call)
            if call.schema_name == "evaluation" and self.paid_for("evaluation") == 5 and not stopped:
                stopped.append(call.idempotency_key)
                assert runner is not None
                # The runner hears of it before this answer's evaluator goes on with the answer.
                runner.cancel()
            return answer

    spec = FakeSpec()
    harness = Harness.make(engine, StoppedAtAnAnswer(latency=0.01), spec=spec, launch=False)
    try:
        run = await harness.create(spec.project(), num_candidates=4, num_scenarios=4)
        await h.execute_run(c.ExecuteRun(run.id), harness.deps)
        runner = asyncio.create_task(RunExecutor(harness.pipeline, await steal(engine, run.id, "p1")).run())
        with pytest.raises(asyncio.CancelledError):
            await runner
        async with harness.deps.uow(read_only=True) as uow:
            stored = await uow.repo.evaluations(run.id)
    finally:
        await harness.close()

    (key,) = stopped
    assert key in {f"run:{run.id}:evaluation:{e.candidate_id}:{e.scenario_id}" for e in stored}, key


async def test_a_run_is_created_only_with_a_trigger_and_once_per_trigger(harness: Harness) -> None:
    project = harness.spec.project()
    other = harness.spec.project()
    trigger = str(uuid.uuid4())
    request = c.CreateRun(project, RunMode.FULL_SEARCH, ui_trigger_source=TriggerSource.RUN_CONFIG_PANEL)

    with pytest.raises(InvalidArgument) as missing:
        await h.create_run(replace(request, ui_trigger_id="  "), harness.deps)
    first = await h.create_run(replace(request, ui_trigger_id=trigger), harness.deps)
    again = await h.create_run(replace(request, ui_trigger_id=trigger), harness.deps)
    with pytest.raises(TriggerReused):
        await h.create_run(replace(request, project_id=other, ui_trigger_id=trigger), harness.deps)

    assert missing.value.reason == "TRIGGER_REQUIRED"
    assert again.id == first.id
    assert first.status is RunStatus.CREATED
    assert (first.trigger.id, first.trigger.source) == (trigger, TriggerSource.RUN_CONFIG_PANEL)
    runs, _ = await h.list_runs(c.ListRuns(project), harness.deps.uow)
    assert [r.id for r in runs] == [first.id]
    # Nothing ran: no model was asked.
    assert harness.models.calls == []


async def test_a_trigger_s_metadata_is_bounded_in_keys_and_in_size(harness: Harness) -> None:
    """Every read of a run carries its metadata: unbounded, a project's list of runs outgrew a message."""
    project = harness.spec.project()

    def request(metadata: dict[str, object]) -> c.CreateRun:
        return c.CreateRun(project, RunMode.FULL_SEARCH, ui_trigger_id=str(uuid.uuid4()), ui_trigger_metadata=metadata)

    too_many: dict[str, object] = {f"k{i}": i for i in range(51)}
    too_big: dict[str, object] = {"note": "x" * (16 * 1024)}
    for metadata in (too_many, too_big):
        with pytest.raises(ValidationFailed) as refused:
            await h.create_run(request(metadata), harness.deps)
        assert [v.field for v in refused.value.violations] == ["ui_trigger_metadata"]
    run = await h.create_run(request({"note": "x" * 8000, "button": "Start run"}), harness.deps)
    assert run.trigger.metadata["button"] == "Start run"


async def test_two_projects_racing_for_one_trigger_get_one_run_and_one_refusal(harness: Harness) -> None:
    # Both requests find no run of the trigger, then insert: the loser must not take the winner's run.
    projects = [harness.spec.project(), harness.spec.project()]
    trigger = str(uuid.uuid4())

    outcomes = await asyncio.gather(
        *(h.create_run(c.CreateRun(p, RunMode.FULL_SEARCH, ui_trigger_id=trigger), harness.deps) for p in projects),
        return_exceptions=True,
    )

    runs = [o for o in outcomes if isinstance(o, Run)]
    assert len(runs) == 1
    assert [type(o) for o in outcomes if not isinstance(o, Run)] == [TriggerReused]
    assert runs[0].project_id == projects[outcomes.index(runs[0])]


async def test_a_blocked_configuration_is_refused_naming_each_blocker(harness: Harness) -> None:
    empty = harness.spec.project(problem=None)

    with pytest.raises(RunBlocked) as blocked:
        await harness.create(empty, num_candidates=100)

    assert blocked.value.code.name == "FAILED_PRECONDITION"
    assert [v.type for v in blocked.value.violations] == [
        "missing_problem_spec",
        "missing_world_model",
        "validation_error",
    ]
    assert blocked.value.violations[2].subject == "parameters.num_candidates"


async def test_a_run_of_a_project_that_does_not_exist_is_refused_as_not_found(harness: Harness) -> None:
    with pytest.raises(ProjectNotFound):
        await harness.create(str(uuid.uuid4()))


async def test_a_run_whose_project_was_deleted_since_is_not_executed(harness: Harness) -> None:
    """Not blocked for a missing ProblemSpec and WorldModel, which the project had: its project is gone."""
    project = harness.spec.project()
    run = await harness.create(project)
    del harness.spec.problems[project]

    with pytest.raises(ProjectNotFound):
        await h.execute_run(c.ExecuteRun(run.id), harness.deps)
    assert (await h.get_run(run.id, harness.deps.uow)).status is RunStatus.CREATED


async def test_a_recommendation_must_be_an_architect_message_of_the_same_project(harness: Harness) -> None:
    project, other = harness.spec.project(), harness.spec.project()
    session, other_session = harness.spec.session(project), harness.spec.session(other)
    good = harness.spec.recommend(project, session, {"mode": "full_search", "parameters": {"num_candidates": 2}})
    foreign = harness.spec.recommend(other, other_session)
    from_user = harness.spec.recommend(project, session, agent=False)

    def request(message_id: str, session_id: str = session) -> c.CreateRun:
        return c.CreateRun(
            project,
            RunMode.FULL_SEARCH,
            chat_session_id=session_id,
            recommended_message_id=message_id,
            ui_trigger_id=str(uuid.uuid4()),
        )

    reads = harness.spec.message_reads
    run = await h.create_run(request(good), harness.deps)
    assert harness.spec.message_reads == reads + 1  # checked and copied from one read
    assert run.recommended_message_id == good
    assert run.recommended_config_snapshot == {"mode": "full_search", "parameters": {"num_candidates": 2}}
    assert run.trigger.source is TriggerSource.API_CLIENT
    for message in (foreign, from_user, str(uuid.uuid4())):
        with pytest.raises(RunBlocked) as refused:
            await h.create_run(request(message), harness.deps)
        assert [v.subject for v in refused.value.violations] == ["recommended_message_id"]
    with pytest.raises(RunBlocked):
        await h.create_run(request(good, other_session), harness.deps)
    with pytest.raises(RecommendationInvalid):
        await h._recommended_config(project, "", foreign, harness.spec)


async def test_only_a_created_run_executes(harness: Harness) -> None:
    project = harness.spec.project()
    run = await harness.run(project, num_candidates=2, num_scenarios=1)

    with pytest.raises(RunNotCreated):
        await h.execute_run(c.ExecuteRun(run.id), harness.deps)


async def test_eval_only_evaluates_the_latest_runs_candidates_and_seeded_adds_new_ones(harness: Harness) -> None:
    project = harness.spec.project()
    first = await harness.run(project, num_candidates=3, num_scenarios=2)
    seeds = [x.id for x in (await h.list_candidates(c.ListRunItems(first.id), harness.deps.uow))[0]]

    evaluated = await harness.run(project, RunMode.EVAL_ONLY, num_scenarios=2)
    seeded = await harness.run(
        project, RunMode.SEEDED, num_candidates=2, num_scenarios=2, seed_candidate_ids=(seeds[0],)
    )

    assert evaluated.status is RunStatus.COMPLETED
    assert evaluated.parameters.seed_candidate_ids == tuple(seeds)
    items, _ = await h.list_candidates(c.ListRunItems(evaluated.id), harness.deps.uow)
    assert [x.source_candidate_id for x in items] == seeds
    assert {x.origin for x in items} == {CandidateOrigin.SEED}
    assert harness.models.paid_for("design", evaluated.id) == 0
    assert seeded.counts.candidates == 3
    items, _ = await h.list_candidates(c.ListRunItems(seeded.id), harness.deps.uow)
    assert [x.origin for x in items] == [CandidateOrigin.SEED, CandidateOrigin.DESIGNED, CandidateOrigin.DESIGNED]
    assert items[0].source_candidate_id == seeds[0]


async def test_the_latest_completed_run_is_the_last_to_complete_and_not_a_replay(harness: Harness) -> None:
    project = harness.spec.project()
    slow = await harness.run(project, num_candidates=2, num_scenarios=1)
    quick = await harness.run(project, num_candidates=1, num_scenarios=1)
    replay = await harness.run(project, num_candidates=1, num_scenarios=1)
    later = datetime.now(UTC) + timedelta(hours=1)
    async with harness.engine.begin() as conn:
        # ``slow`` was created first but completed last; ``replay`` re-ran ``quick`` after both.
        await conn.execute(update(t.runs).where(t.runs.c.id == slow.id).values(ended_at=later))
        await conn.execute(
            update(t.runs)
            .where(t.runs.c.id == replay.id)
            .values(replay_of_run_id=quick.id, ended_at=later + timedelta(hours=1))
        )

    async with harness.deps.uow(read_only=True) as uow:
        latest = await uow.repo.latest_completed_candidates(project)

    assert {x.run_id for x in latest} == {slow.id}
    assert len(latest) == 2


async def test_a_project_without_runs_evaluates_seeds_given_whole(harness: Harness) -> None:
    project = harness.spec.project()
    arch, beam = CandidateDraft("Arch", "stone", "corbel", ("dry",)), CandidateDraft("Beam", "steel")

    run = await harness.run(project, RunMode.EVAL_ONLY, num_scenarios=2, seed_candidates=(arch, beam))

    assert run.status is RunStatus.COMPLETED
    assert (run.counts.candidates, run.counts.evaluations) == (2, 4)
    items, _ = await h.list_candidates(c.ListRunItems(run.id), harness.deps.uow)
    assert [(x.title, x.description, x.approach, x.assumptions) for x in items] == [
        ("Arch", "stone", "corbel", ("dry",)),
        ("Beam", "steel", "", ()),
    ]
    assert {(x.origin, x.source_candidate_id) for x in items} == {(CandidateOrigin.SEED, "")}
    assert harness.models.paid_for("design", run.id) == 0
    # Read back from the database as the run was created: the seeds whole.
    again = await h.get_run(run.id, harness.deps.uow)
    assert again.parameters.seed_candidates == (arch, beam)


async def test_an_evaluation_that_never_validates_fails_alone_with_its_raw_answer(engine: AsyncEngine) -> None:
    models = FakeModels(failing_titles=("Design 0",))
    harness = Harness.make(engine, models)
    project = harness.spec.project()
    try:
        run = await harness.run(project, num_candidates=3, num_scenarios=2)
        # The agent service away when the answer is asked for whole: what the error carried is kept.
        models.failing_titles, models.away_for_answers = ("Design 1",), True
        cut = await harness.run(project, num_candidates=3, num_scenarios=2)
    finally:
        await harness.close()

    assert run.status is RunStatus.COMPLETED
    assert run.counts.failed_evaluations == 2
    assert run.error_summary == "2 of 6 evaluations failed (STRUCTURED_OUTPUT_INVALID: 2)"
    failed, _ = await h.list_evaluations(c.ListRunItems(run.id), harness.deps.uow)
    broken = [e for e in failed if e.status is EvaluationStatus.FAILED]
    # Whole (up to 4,000 characters), though the agent service's error carried only its first 500.
    whole = '{"oops": "' + "x" * 5_000
    assert [(e.p, e.r, e.raw_answer) for e in broken] == [(None, None, whole[:RAW_ANSWER_KEPT])] * 2
    assert all(models.whole_answers[e.llm_call_id] == whole for e in broken)
    kept, _ = await h.list_evaluations(c.ListRunItems(cut.id), harness.deps.uow)
    assert [e.raw_answer for e in kept if e.status is EvaluationStatus.FAILED] == [whole[:500]] * 2
    _, ranking = await h.run_results(run.id, harness.deps.uow)
    unranked = next(r for r in ranking if r.title == "Design 0")
    assert (unranked.i, unranked.label, unranked.failed_evaluations) == (None, CandidateLabel.UNDER_TEST, 2)
    statistics = await h.run_statistics(run.id, harness.deps.uow, harness.models)
    assert statistics.coverage == pytest.approx(4 / 6)
    assert len(statistics.missing_pairs) == 2


async def test_a_run_whose_every_evaluation_fails_fails_with_the_reason(engine: AsyncEngine) -> None:
    models = FakeModels(failing_titles=("Design 0", f"{RECKLESS} design"))
    harness, run = await _run_alone(engine, models, num_candidates=2, num_scenarios=2)

    assert run.status is RunStatus.FAILED
    assert run.failure_reason.startswith("no evaluation succeeded (4 of 4 evaluations failed")
    assert harness.spec.posted[0].summary["status"] == "FAILED"


async def test_a_budget_stops_the_run_before_a_call_would_cross_it(engine: AsyncEngine) -> None:
    harness = Harness.make(engine, FakeModels(latency=0.01))
    try:
        run = await harness.run(harness.spec.project(), num_candidates=5, num_scenarios=5, budget_usd=0.002)
        async with harness.deps.uow(read_only=True) as uow:
            ranking = await uow.repo.ranking(run.id)
    finally:
        await harness.close()

    assert run.status is RunStatus.FAILED
    assert run.failure_reason.startswith("stopped before crossing the budget: budget_usd 0.002 would be crossed")
    assert 0 < run.counts.evaluations < 25
    # Spent what was reserved for the calls let through, within their estimates.
    assert run.usage.usd <= 0.002 * 1.25
    # What it found is ranked (and summarised), not lost with the stop.
    assert len(ranking) == 5
    assert sum(r.evaluations for r in ranking) == run.counts.evaluations
    assert harness.spec.posted[0].summary["top_candidates"]
    # Evaluated scenario by scenario: every candidate in about as many scenarios as the others. Of
    # the 8 calls in flight at a time, the ones refused at the stop may be anywhere among them, so
    # the candidates' counts may differ by up to ⌈8 / 5⌉.
    per_candidate = [r.evaluations for r in ranking]
    assert max(per_candidate) - min(per_candidate) <= 2, per_candidate


async def test_a_budgeted_call_holds_a_share_of_the_room_left_for_its_re_asks(
    engine: AsyncEngine,
) -> None:
    # Twice what the run costs: room for 8 calls in flight at their estimates, and a little for
    # their re-asks, not all they could cost.
    models, _, run = await _unbudgeted_then_budgeted(engine, 2.0)

    assert run.status is RunStatus.COMPLETED, run.failure_reason
    assert run.counts.evaluations == 24
    # Every call was held to its share of the budget: its estimate, and for its re-asks up to what
    # they could cost (``most``) as far as its share of the room left allows.
    evaluations = [call for call in models.calls if call.purpose == "evaluation"]
    short = roomy = 0
    for call in evaluations:
        assert call.allowance is not None
        assert call.allowance.tokens is None
        held = call.allowance.usd
        estimate = est.of_call(call.system, call.prompt, call.schema, est.EVALUATION_OUTPUT, PRICE)
        first, most = estimate.usd, est.most(estimate, PRICE, models.structured_attempts).usd
        assert held is not None
        assert first is not None
        assert most is not None
        assert first <= held <= most + 1e-12
        short += held < most
        roomy += held > first
    # Some held room for re-asks, and some less than all the re-asks could cost.
    assert roomy
    assert short


async def test_a_call_holds_no_room_for_re_asks_an_agent_service_asking_once_would_not_make(
    engine: AsyncEngine,
) -> None:
    models = FakeModels(latency=0.01, structured_attempts=1)
    _, run = await _run_alone(engine, models, num_candidates=2, num_scenarios=3, budget_usd=1.0)

    assert run.status is RunStatus.COMPLETED, run.failure_reason
    evaluations = [call for call in models.calls if call.purpose == "evaluation"]
    assert len(evaluations) == 6
    for call in evaluations:
        estimate = est.of_call(call.system, call.prompt, call.schema, est.EVALUATION_OUTPUT, PRICE)
        assert call.allowance is not None
        assert call.allowance.usd == pytest.approx(estimate.usd)


async def test_an_eval_only_run_s_lone_scenarios_call_holds_all_its_re_asks_could_cost(engine: AsyncEngine) -> None:
    # No design call beside it: the room is the scenarios call's alone, not shared with a call
    # that never starts.
    models = FakeModels(latency=0.01)
    harness = Harness.make(engine, models)
    seeds = (CandidateDraft("Arch", "stone"), CandidateDraft("Beam", "steel"))
    try:
        project = harness.spec.project()
        await harness.run(project, RunMode.EVAL_ONLY, num_scenarios=3, seed_candidates=seeds)
        (first,) = [call for call in models.calls if call.purpose == "scenarios"]
        estimate = est.of_call(first.system, first.prompt, first.schema, est.scenarios_output(3), PRICE)
        most = est.most(estimate, PRICE, models.structured_attempts)
        assert most.usd is not None
        assert estimate.usd is not None
        # What makes a share of the budget below (two calls' worth) less than ``most``.
        assert estimate.usd <= 0.2 * most.usd
        models.calls.clear()
        # Room for the call's re-asks, and less than twice that: a share of it would be less.
        await harness.run(project, RunMode.EVAL_ONLY, num_scenarios=3, seed_candidates=seeds, budget_usd=most.usd * 1.2)
    finally:
        await harness.close()

    (call,) = [call for call in models.calls if call.purpose == "scenarios"]
    assert call.allowance is not None
    assert call.allowance.usd == pytest.approx(most.usd)


async def test_a_call_the_budget_has_no_room_for_waits_for_the_calls_in_flight_to_give_theirs_back(
    engine: AsyncEngine,
) -> None:
    # Enough for what the run pays, not for 8 calls in flight at their estimates near its end: a
    # call refused then waits for those to end (each costs less than its estimate).
    _, unbudgeted, run = await _unbudgeted_then_budgeted(engine, 1.15)

    assert run.status is RunStatus.COMPLETED, run.failure_reason
    assert run.counts.evaluations == 24
    assert run.usage.usd == pytest.approx(unbudgeted.usage.usd)


async def _unbudgeted_then_budgeted(engine: AsyncEngine, times: float) -> tuple[FakeModels, Run, Run]:
    """A 4 x 6 run without a budget, then the same with ``times`` what it cost as its budget_usd;
    the models keep the second run's calls only."""
    models = FakeModels(latency=0.01)
    harness = Harness.make(engine, models)
    try:
        unbudgeted = await harness.run(harness.spec.project(), num_candidates=4, num_scenarios=6)
        models.calls.clear()
        budget = times * unbudgeted.usage.usd
        run = await harness.run(harness.spec.project(), num_candidates=4, num_scenarios=6, budget_usd=budget)
    finally:
        await harness.close()
    return models, unbudgeted, run


async def test_execute_some_phases_runs_what_they_need(harness: Harness) -> None:
    run = await harness.create(harness.spec.project(), num_candidates=2, num_scenarios=2)
    await h.execute_run(c.ExecuteRun(run.id, (RunPhase.EVALUATE,)), harness.deps)
    run = await harness.until_over(run.id)

    assert run.phases_done == (RunPhase.DESIGN, RunPhase.SCENARIOS, RunPhase.EVALUATE)
    assert run.counts.evaluations == 4
    _, ranking = await h.run_results(run.id, harness.deps.uow)
    assert ranking == []


# ---------------------------------------------------------------- durability


async def test_a_run_counts_against_its_budget_what_the_calls_a_runner_before_left_in_flight_cost(
    engine: AsyncEngine,
) -> None:
    models = FakeModels()
    harness = Harness.make(engine, models)
    try:
        run = await harness.create(harness.spec.project(), num_candidates=2, num_scenarios=2, budget_usd=0.002)
        # A runner before died with calls in flight that went on to spend the whole budget; the
        # agent service records them only once they end, after this runner started.
        models.left_in_flight[run.id] = 0.002
        await h.execute_run(c.ExecuteRun(run.id), harness.deps)
        done = await harness.until_over(run.id)
    finally:
        await harness.close()

    assert done.status is RunStatus.FAILED
    assert done.failure_reason.startswith(
        "stopped before crossing the budget: budget_usd 0.002 would be crossed: $0.0020 spent"
    ), done.failure_reason
    assert not models.paid


async def test_a_run_cut_short_is_continued_by_another_process_paying_for_nothing_twice(engine: AsyncEngine) -> None:
    spec = FakeSpec()
    models = FakeModels(crash_at_evaluation=7)
    first = Harness.make(engine, models, owner="p1", spec=spec, launch=False)
    run = await first.create(spec.project(), num_candidates=4, num_scenarios=4)
    await h.execute_run(c.ExecuteRun(run.id), first.deps)
    # The first process dies in the middle of the evaluations.
    with pytest.raises(Crash):
        await RunExecutor(first.pipeline, await steal(engine, run.id, "p1")).run()
    async with engine.begin() as conn:
        await conn.execute(
            update(t.runs).where(t.runs.c.id == run.id).values(lease_expires_at=datetime(2000, 1, 1, tzinfo=UTC))
        )

    second = Harness.make(engine, models, owner="p2", spec=spec)
    try:
        claimed = await second.pipeline.leases.claim_stale(10)
        assert run.id in {x.id for x in claimed}
        for lease in claimed:
            second.scheduler.launch(lease)
        done = await second.until_over(run.id)
    finally:
        await second.close()

    assert done.status is RunStatus.COMPLETED, done.failure_reason
    assert done.counts.evaluations == 16
    # Each call was paid for once: 1 design, 1 scenarios, 16 evaluations.
    assert max(models.paid.values()) == 1
    assert models.paid_for("evaluation", run.id) == 16
    assert models.paid_for("design", run.id) == models.paid_for("scenarios", run.id) == 1
    assert len(spec.posted) == 1
    # The evaluate phase began once and was continued once, and its events say so; the phases the
    # first process ended began once.
    async with second.deps.uow(read_only=True) as uow:
        events = await uow.repo.events(run.id, 0, 1000)
    starts = [e.data for e in events if e.type is RunEventType.PHASE_STARTED]
    assert starts == [
        PhaseStarted(RunPhase.DESIGN),
        PhaseStarted(RunPhase.SCENARIOS),
        PhaseStarted(RunPhase.EVALUATE),
        PhaseStarted(RunPhase.EVALUATE, continued=True),
        PhaseStarted(RunPhase.RANK),
    ]


async def test_a_runner_that_lost_its_lease_stores_nothing_more(engine: AsyncEngine) -> None:
    harness = Harness.make(engine, FakeModels(latency=0.05))
    run = await harness.create(harness.spec.project(), num_candidates=4, num_scenarios=4)
    try:
        await h.execute_run(c.ExecuteRun(run.id), harness.deps)
        await asyncio.sleep(0.12)
        # Another process takes the run over (its lease lapsed while this one was paused).
        thief = await steal(engine, run.id, "p2")
        await harness.scheduler.wait(run.id)
        before = await h.list_evaluations(c.ListRunItems(run.id, page_size=100), harness.deps.uow)
        await asyncio.sleep(0.2)
        after = await h.list_evaluations(c.ListRunItems(run.id, page_size=100), harness.deps.uow)
        status = (await h.get_run(run.id, harness.deps.uow)).status
    finally:
        await harness.close()

    assert thief.owner == "p2"
    assert status is RunStatus.RUNNING
    assert [e.id for e in after[0]] == [e.id for e in before[0]]
    assert len(after[0]) < 16


async def test_a_running_run_is_shown_with_its_counts_so_far(engine: AsyncEngine) -> None:
    """GetRun of a run in progress: what it has stored so far, not zeros until it ends."""
    harness = Harness.make(engine, FakeModels(latency=0.05))
    run = await harness.create(harness.spec.project(), num_candidates=4, num_scenarios=4)
    try:
        await h.execute_run(c.ExecuteRun(run.id), harness.deps)
        async with asyncio.timeout(10):
            while True:  # until its first evaluation is stored
                if (await h.list_evaluations(c.ListRunItems(run.id, page_size=1), harness.deps.uow))[0]:
                    break
                await asyncio.sleep(0.01)
        shown = await h.show_run(run.id, harness.deps.uow)
        listed = (await h.list_runs(c.ListRuns(run.project_id), harness.deps.uow))[0][0]
        stored = await h.get_run(run.id, harness.deps.uow)
        ended = await harness.until_over(run.id)
    finally:
        await harness.close()

    assert shown.status is RunStatus.RUNNING
    assert (shown.counts.candidates, shown.counts.scenarios) == (4, 4)
    assert (listed.counts.candidates, listed.counts.scenarios) == (4, 4)  # listed as shown
    assert 1 <= shown.counts.evaluations + shown.counts.failed_evaluations <= 16
    assert stored.counts.evaluations == 0  # the run's own record, kept whole at its end
    assert (await h.show_run(run.id, harness.deps.uow)).counts == ended.counts


async def test_cancel_stops_a_running_run_and_still_posts_its_summary(engine: AsyncEngine) -> None:
    harness = Harness.make(engine, FakeModels(latency=0.05))
    run = await harness.create(harness.spec.project(), num_candidates=5, num_scenarios=5)
    try:
        await h.execute_run(c.ExecuteRun(run.id), harness.deps)
        await asyncio.sleep(0.1)
        # Calls in flight at the cancel go on in the agent service, and are paid for.
        harness.models.left_in_flight[run.id] = 1.0
        cancelled = await h.cancel_run(c.CancelRun(run.id, "too slow"), harness.deps)
        run = await harness.until_over(run.id)
        paid = sum(harness.models.paid.values())
        await asyncio.sleep(0.2)
    finally:
        await harness.close()

    assert cancelled.status is RunStatus.CANCELLED
    assert run.failure_reason == "cancelled: too slow"
    assert run.run_summary_message_id
    assert harness.spec.posted[0].summary["status"] == "CANCELLED"
    # Nothing was paid for after the cancel settled.
    assert sum(harness.models.paid.values()) == paid
    # What was paid before it is on the run, as the agent service recorded it (the cancel itself
    # stored only the run's own record, which a running run does not have yet).
    assert run.usage.calls == paid > 0
    # Its account waited for those calls' cost.
    assert run.usage.usd > 1.0


async def test_a_cancelled_runs_failed_evaluations_keep_their_raw_answers_whole(engine: AsyncEngine) -> None:
    models = FakeModels(latency=0.05, failing_titles=("Design 0",))
    harness = Harness.make(engine, models)
    run = await harness.create(harness.spec.project(), num_candidates=5, num_scenarios=5)
    try:
        await h.execute_run(c.ExecuteRun(run.id), harness.deps)
        async with asyncio.timeout(10):
            while True:  # until a failed evaluation is stored, with its raw answer cut short
                async with harness.deps.uow(read_only=True) as uow:
                    if (await uow.repo.counts(run.id)).failed_evaluations:
                        break
                await asyncio.sleep(0.01)
        await h.cancel_run(c.CancelRun(run.id, "enough"), harness.deps)
        run = await harness.until_over(run.id)
        evaluations, _ = await h.list_evaluations(c.ListRunItems(run.id), harness.deps.uow)
    finally:
        await harness.close()

    assert run.status is RunStatus.CANCELLED
    failed = [e for e in evaluations if e.status is EvaluationStatus.FAILED]
    assert failed
    assert all(e.raw_answer == models.whole_answers[e.llm_call_id][:RAW_ANSWER_KEPT] for e in failed)
    assert all(len(e.raw_answer) == RAW_ANSWER_KEPT for e in failed)


async def test_a_run_cancelled_while_it_ran_shows_what_it_spent_before_its_account_is_stored(
    engine: AsyncEngine,
) -> None:
    models = FakeModels(crash_at_evaluation=4)
    harness = Harness.make(engine, models, launch=False)
    run = await harness.create(harness.spec.project(), num_candidates=2, num_scenarios=3)
    await h.execute_run(c.ExecuteRun(run.id), harness.deps)
    with pytest.raises(Crash):  # its executor is gone mid-run, paid calls behind it
        await RunExecutor(harness.pipeline, await steal(engine, run.id, "p1")).run()
    try:
        # Cancelled, and not yet accounted: no executor has run since.
        await h.cancel_run(c.CancelRun(run.id, "enough"), harness.deps)
        statistics = await h.run_statistics(run.id, harness.deps.uow, models)
    finally:
        await harness.close()

    assert statistics.status is RunStatus.CANCELLED
    assert statistics.usage == await models.usage(run.id)
    assert statistics.usage.calls == models.paid_for("", run.id) > 0


async def test_watch_relays_every_event_until_the_summary_is_posted(harness: Harness) -> None:
    run = await harness.create(harness.spec.project(), num_candidates=2, num_scenarios=2)
    await h.execute_run(c.ExecuteRun(run.id), harness.deps)

    types = [e.type async for e in h.watch_run(c.WatchRun(run.id), harness.deps.uow, harness.deps.updates)]

    assert types[0] is RunEventType.RUN_CREATED
    assert types[-2:] == [RunEventType.RUN_COMPLETED, RunEventType.SUMMARY_POSTED]
    assert types.count(RunEventType.EVALUATION_COMPLETED) == 4
    assert types.count(RunEventType.CANDIDATE_ADDED) == 2


async def test_a_runs_state_is_read_alone_and_says_when_nothing_more_will_happen(harness: Harness) -> None:
    created = await harness.create(harness.spec.project(), num_candidates=1, num_scenarios=1)
    ended = await harness.run(harness.spec.project(), num_candidates=1, num_scenarios=1)

    async with harness.deps.uow(read_only=True) as uow:
        states = [await uow.repo.run_state(r) for r in (created.id, ended.id, str(uuid.uuid4()))]

    assert states == [
        RunState(RunStatus.CREATED, summary_pending=False),
        RunState(RunStatus.COMPLETED, summary_pending=False),
        None,
    ]
    assert [s.over for s in states if s is not None] == [False, True]
    # Ended, its summary still to post: watchers wait for it.
    assert not RunState(RunStatus.FAILED, summary_pending=True).over


async def test_each_phase_starts_in_the_events_before_its_work_and_ends_after_it(harness: Harness) -> None:
    """A phase's start is written while its work begins, not before: the events keep their order."""
    run = await harness.run(harness.spec.project(), num_candidates=3, num_scenarios=2)
    assert run.status is RunStatus.COMPLETED, run.failure_reason

    async with harness.deps.uow(read_only=True) as uow:
        events = await uow.repo.events(run.id, 0, 1000)

    def at(kind: RunEventType, phase: RunPhase) -> int:
        (position,) = [i for i, e in enumerate(events) if e.type is kind and getattr(e.data, "phase", None) == phase]
        return position

    work = {
        RunPhase.DESIGN: {RunEventType.CANDIDATE_ADDED},
        RunPhase.SCENARIOS: {RunEventType.SCENARIO_ADDED},
        RunPhase.EVALUATE: {RunEventType.EVALUATION_COMPLETED, RunEventType.EVALUATION_FAILED},
        RunPhase.RANK: {RunEventType.RUN_RANKED},
    }
    for phase, kinds in work.items():
        started, completed = at(RunEventType.PHASE_STARTED, phase), at(RunEventType.PHASE_COMPLETED, phase)
        done = [i for i, e in enumerate(events) if e.type in kinds]
        assert done, phase
        assert started < min(done), phase
        assert max(done) < completed, phase
    # Evaluating starts once designing and making scenarios have both ended; ranking once evaluating has.
    assert at(RunEventType.PHASE_STARTED, RunPhase.EVALUATE) > max(
        at(RunEventType.PHASE_COMPLETED, RunPhase.DESIGN), at(RunEventType.PHASE_COMPLETED, RunPhase.SCENARIOS)
    )
    assert at(RunEventType.PHASE_STARTED, RunPhase.RANK) > at(RunEventType.PHASE_COMPLETED, RunPhase.EVALUATE)
    # Each phase's end says what the run has spent so far: the design and scenario calls before any
    # evaluation does, and the whole run's spend at the end of ranking.
    phase_ends = [e.data for e in events if isinstance(e.data, PhaseChanged) and e.type is RunEventType.PHASE_COMPLETED]
    assert [d.usd_spent is not None for d in phase_ends] == [True] * 4
    spent = {d.phase: d.usd_spent or 0.0 for d in phase_ends}
    assert spent[RunPhase.DESIGN] > 0
    assert spent[RunPhase.EVALUATE] == spent[RunPhase.RANK] > max(spent[RunPhase.DESIGN], spent[RunPhase.SCENARIOS])
    assert spent[RunPhase.RANK] == pytest.approx(sum(usd for _, _, usd in harness.models.spent.values()), abs=1e-5)


async def test_a_phase_start_that_could_not_be_recorded_fails_the_run_which_still_ends(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write waiting for it fails, as the phase would have; the run's end is written after it."""
    add_events = SqlRunRepository.add_events

    async def refusing(self: SqlRunRepository, run_id: str, events: Sequence[tuple[NewRunEvent, datetime]]) -> None:
        if any(e.type is RunEventType.PHASE_STARTED and e.data == PhaseStarted(RunPhase.EVALUATE) for e, _ in events):
            raise ValueError("not this one")
        await add_events(self, run_id, events)

    monkeypatch.setattr(SqlRunRepository, "add_events", refusing)

    run = await asyncio.wait_for(harness.run(harness.spec.project(), num_candidates=2, num_scenarios=2), 30)

    assert run.status is RunStatus.FAILED
    assert run.failure_reason == "internal error: ValueError"
    assert len(harness.spec.posted) == 1


async def test_max_runtime_stops_the_run_with_its_reason_and_what_it_stored_counted(engine: AsyncEngine) -> None:
    # 10 x 25 evaluations of 0.4 s, 8 at a time: about 13 s of work, stopped at 10 s while answers
    # are being stored every few tens of milliseconds.
    harness = Harness.make(engine, FakeModels(latency=0.4))
    try:
        run = await harness.run(harness.spec.project(), num_candidates=10, num_scenarios=25, max_runtime_s=10)
        async with harness.deps.uow(read_only=True) as uow:
            stored = await uow.repo.evaluations(run.id)
            events = await uow.repo.events(run.id, 0, 10_000)
            ranking = await uow.repo.ranking(run.id)
    finally:
        await harness.close()

    assert run.status is RunStatus.FAILED
    assert run.failure_reason == "stopped at max_runtime_s (10 s)"
    assert 0 < len(stored) < 250
    # The run's end counted every evaluation stored, and none was stored after it.
    assert run.counts.evaluations + run.counts.failed_evaluations == len(stored)
    types = [e.type for e in events]
    after_end = types[types.index(RunEventType.RUN_FAILED) :]
    assert RunEventType.EVALUATION_COMPLETED not in after_end
    # Ranked before its end, from what it stored.
    assert RunEventType.RUN_RANKED in types[: types.index(RunEventType.RUN_FAILED)]
    assert sum(r.evaluations for r in ranking) == run.counts.evaluations


async def test_no_answer_from_the_agent_service_fails_no_evaluation_and_pays_for_nothing_twice(
    engine: AsyncEngine,
) -> None:
    # The 5th evaluation is paid and kept by the agent service, but its answer never reaches the
    # run (its deadline passed): the run waits, goes on from what it stored, and has that answer
    # again under the same key.
    models = FakeModels(unanswered_evaluation=5)
    _, run = await _run_alone(engine, models, num_candidates=3, num_scenarios=3)

    assert run.status is RunStatus.COMPLETED, run.failure_reason
    assert (run.counts.evaluations, run.counts.failed_evaluations) == (9, 0)
    evaluation_keys = [k for k in models.paid if ":evaluation:" in k]
    assert len(evaluation_keys) == 9
    assert all(models.paid[k] == 1 for k in evaluation_keys)
    # The unanswered one was asked twice, and answered the second time from what was kept.
    asked = Counter(call.idempotency_key for call in models.calls if call.schema_name == "evaluation")
    assert sorted(asked.values()) == [1] * 8 + [2]


async def test_a_refused_summary_is_not_asked_again_and_the_run_is_over(engine: AsyncEngine) -> None:
    spec = FakeSpec(refusing_summaries=True)
    harness = Harness.make(engine, FakeModels(), spec=spec)
    try:
        run = await harness.run(spec.project(), num_candidates=2, num_scenarios=2)
        await asyncio.sleep(0.5)  # several heartbeats: a summary still pending would be asked again
        async with harness.deps.uow(read_only=True) as uow:
            events = await uow.repo.events(run.id, 0, 1_000)
    finally:
        await harness.close()

    assert run.status is RunStatus.COMPLETED
    assert (run.summary_pending, run.run_summary_message_id) == (False, "")
    assert spec.summaries_refused == 1
    # Its watchers see the end of the summary step, which names no message.
    assert events[-1].type is RunEventType.SUMMARY_POSTED


async def test_a_running_run_on_unpriced_models_counts_its_calls_of_unknown_cost(engine: AsyncEngine) -> None:
    # Its events say how many calls so far had no price, so that a watcher shows "unpriced", not
    # "$0.00 so far"; a failed evaluation's paid attempts count as one such call too.
    models = FakeModels(unpriced=True, failing_titles=("Design 0",))
    harness = Harness.make(engine, models)
    try:
        run = await harness.run(harness.spec.project(), num_candidates=2, num_scenarios=3)
        async with harness.deps.uow(read_only=True) as uow:
            events = await uow.repo.events(run.id, 0, 1_000)
    finally:
        await harness.close()

    done = [e.data for e in events if isinstance(e.data, EvaluationDone)]
    assert [d.usd_spent for d in done] == [0.0] * 6
    # The design and scenario calls, then each evaluation's, as they are stored.
    assert max(d.unpriced_calls for d in done) == 2 + 6
    assert sorted(d.unpriced_calls for d in done) == [d.unpriced_calls for d in sorted(done, key=lambda d: d.done)]
    ends = {e.data.phase: e.data.unpriced_calls for e in events if isinstance(e.data, PhaseChanged)}
    assert ends[RunPhase.EVALUATE] == ends[RunPhase.RANK] == 8
    assert 1 <= ends[RunPhase.DESIGN] <= 2


async def test_a_failed_evaluation_counts_against_the_budget(engine: AsyncEngine) -> None:
    # Its attempts were paid though no answer validated: the spend the run keeps (and stops on)
    # includes them, to the cent of what the model calls cost.
    models = FakeModels(failing_titles=("Design 0",))
    harness = Harness.make(engine, models)
    try:
        run = await harness.run(harness.spec.project(), num_candidates=3, num_scenarios=2)
        async with harness.deps.uow(read_only=True) as uow:
            events = await uow.repo.events(run.id, 0, 1_000)
    finally:
        await harness.close()

    done = [e.data for e in events if isinstance(e.data, EvaluationDone)]
    assert len(done) == 6
    failed = [usd for key, (_, _, usd) in models.spent.items() if key not in models.paid]
    assert len(failed) == 2
    assert all(usd > 0 for usd in failed)
    everything = sum(usd for _, _, usd in models.spent.values())
    assert max(d.usd_spent for d in done) == pytest.approx(everything, abs=1e-6)
