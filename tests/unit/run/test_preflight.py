"""Preflight rules: the seed's blockers and warnings, the normalized config, the estimate from prices."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from crucible_run.domain import estimates as est
from crucible_run.domain.estimates import UNPRICED, ModelPrice, PromptSizes
from crucible_run.domain.model import BlockerCode, CandidateDraft, RunMode, RunParameters, WarningCode
from crucible_run.domain.preflight import Facts, preflight

PRICED = ModelPrice(0.15, 0.60)
READY = Facts(
    problem_spec=True,
    world_model=True,
    resolution="medium",
    prompts=PromptSizes(design=3_000, scenarios=3_000, evaluation=2_000),
    known_seeds=frozenset(),
    latest_run_candidates=(),
    designer=PRICED,
    evaluator=PRICED,
)


def codes(result: object) -> list[str]:
    return [b.code.value for b in result.blockers]  # type: ignore[attr-defined]


def test_an_empty_project_is_blocked_by_both_missing_parts_in_words() -> None:
    result = preflight(RunMode.FULL_SEARCH, RunParameters(), replace(READY, problem_spec=False, world_model=False))

    assert not result.ready
    assert codes(result) == ["missing_problem_spec", "missing_world_model"]
    assert "describe the problem" in result.blockers[0].message
    assert (result.prerequisites.problem_spec, result.prerequisites.world_model) == (False, False)


def test_a_ready_project_gets_defaults_from_its_resolution_and_an_estimate() -> None:
    result = preflight(RunMode.FULL_SEARCH, RunParameters(), replace(READY, resolution="fine"))

    assert result.ready
    assert (result.config.parameters.num_candidates, result.config.parameters.num_scenarios) == (8, 8)
    # One design call, one scenarios call, 64 evaluations.
    assert result.estimate.calls == 66
    assert result.estimate.usd is not None
    assert 0 < result.estimate.usd < 0.1
    assert result.notes[0] == "8 candidates × 8 scenarios = 64 evaluations"


def test_the_estimate_counts_what_each_call_reads_and_a_pair_for_each_evaluation() -> None:
    facts = replace(READY, prompts=PromptSizes(design=4_000, scenarios=2_000, evaluation=1_000))

    result = preflight(RunMode.FULL_SEARCH, RunParameters(num_candidates=2, num_scenarios=3), facts)

    design = 4_000 // est.CHARS_PER_TOKEN + est.design_output(2)
    scenarios = 2_000 // est.CHARS_PER_TOKEN + est.scenarios_output(3)
    evaluation = (1_000 + est.CANDIDATE_CHARS + est.SCENARIO_CHARS) // est.CHARS_PER_TOKEN + est.EVALUATION_OUTPUT
    assert result.estimate.tokens == design + scenarios + 6 * evaluation


def test_seeds_are_estimated_as_they_are_written() -> None:
    named, latest = str(uuid.uuid4()), str(uuid.uuid4())
    facts = replace(
        READY,
        prompts=PromptSizes(design=4_000, scenarios=2_000, evaluation=1_000),
        known_seeds=frozenset({named}),
        latest_run_candidates=(latest,),
        seed_chars={named: 20_000, latest: 400},
        draft_chars=(8_000,),
    )
    params = RunParameters(num_scenarios=3, seed_candidate_ids=(named,), seed_candidates=(CandidateDraft("long"),))

    result = preflight(RunMode.EVAL_ONLY, params, facts)

    scenarios = 2_000 // est.CHARS_PER_TOKEN + est.scenarios_output(3)
    evaluations = [(1_000 + size + est.SCENARIO_CHARS) // est.CHARS_PER_TOKEN for size in (20_000, 8_000)]
    assert result.estimate.calls == 1 + 6
    assert result.estimate.tokens == scenarios + 3 * sum(evaluations) + 6 * est.EVALUATION_OUTPUT
    # The latest run's candidates, when they are the seeds, are sized as they were written too.
    latest_only = preflight(RunMode.EVAL_ONLY, RunParameters(num_scenarios=3), facts)
    evaluation = (1_000 + 400 + est.SCENARIO_CHARS) // est.CHARS_PER_TOKEN + est.EVALUATION_OUTPUT
    assert latest_only.estimate.tokens == scenarios + 3 * evaluation


def test_an_unpriced_model_is_an_unknown_cost_not_zero() -> None:
    result = preflight(RunMode.FULL_SEARCH, RunParameters(), replace(READY, evaluator=UNPRICED))

    assert result.estimate.usd is None
    assert any("cost is unknown" in n for n in result.notes)


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        (RunParameters(num_candidates=51), "parameters.num_candidates"),
        (RunParameters(num_scenarios=51), "parameters.num_scenarios"),
        (RunParameters(num_candidates=40, num_scenarios=40), "parameters.num_scenarios"),
        (RunParameters(budget_usd=0), "parameters.budget_usd"),
        (RunParameters(budget_usd=5_000), "parameters.budget_usd"),
        (RunParameters(budget_tokens=10), "parameters.budget_tokens"),
        (RunParameters(max_runtime_s=1), "parameters.max_runtime_s"),
        (RunParameters(max_runtime_s=100_000), "parameters.max_runtime_s"),
    ],
)
def test_out_of_bounds_parameters_are_validation_errors_naming_the_field(parameters: RunParameters, field: str) -> None:
    result = preflight(RunMode.FULL_SEARCH, parameters, READY)

    assert codes(result) == ["validation_error"]
    assert result.blockers[0].field == field


@pytest.mark.parametrize("mode", [RunMode.FULL_SEARCH, RunMode.SEEDED])
def test_counts_far_past_the_limits_are_refused_and_still_estimated_at_once(mode: RunMode) -> None:
    """The largest counts the API lets through (32-bit) are blockers with a cost, not a list as long."""
    parameters = RunParameters(num_candidates=2**31 - 1, num_scenarios=2**31 - 1)

    result = preflight(mode, parameters, READY)

    assert not result.ready
    assert "validation_error" in codes(result)
    assert result.estimate.calls == 2 + (2**31 - 1) ** 2
    assert result.estimate.usd is not None
    assert result.estimate.usd > 1_000_000


def test_negative_counts_are_refused_and_cost_nothing() -> None:
    result = preflight(RunMode.SEEDED, RunParameters(num_candidates=-(2**31), num_scenarios=-5), READY)

    assert "validation_error" in codes(result)
    assert result.estimate.tokens >= 0
    assert result.estimate.usd is not None
    assert result.estimate.usd >= 0


def test_a_negative_count_is_counted_as_none_in_the_note_and_the_estimate_alike() -> None:
    seeds = tuple(str(uuid.uuid4()) for _ in range(3))
    facts = replace(READY, known_seeds=frozenset(seeds))

    result = preflight(
        RunMode.SEEDED, RunParameters(num_candidates=-1, num_scenarios=4, seed_candidate_ids=seeds), facts
    )

    assert "validation_error" in codes(result)
    assert result.notes[0] == "3 candidates × 4 scenarios = 12 evaluations"
    assert result.estimate.calls == 1 + 12  # the scenarios call, no design call


def test_a_usd_budget_needs_priced_models() -> None:
    result = preflight(RunMode.FULL_SEARCH, RunParameters(budget_usd=1), replace(READY, designer=UNPRICED))
    assert [b.field for b in result.blockers] == ["parameters.budget_usd"]


def test_eval_only_without_candidates_is_insufficient_and_says_how_to_fix_it() -> None:
    result = preflight(RunMode.EVAL_ONLY, RunParameters(), READY)

    assert codes(result) == ["insufficient_candidates"]
    assert "complete a full_search run first" in result.blockers[0].message
    assert not result.prerequisites.seed_candidates


def test_eval_only_takes_the_latest_completed_runs_candidates_and_names_them() -> None:
    latest = (str(uuid.uuid4()), str(uuid.uuid4()))
    result = preflight(RunMode.EVAL_ONLY, RunParameters(num_candidates=3), replace(READY, latest_run_candidates=latest))

    assert result.ready
    assert result.config.parameters.seed_candidate_ids == latest
    assert result.config.parameters.num_candidates == 0
    assert result.prerequisites.seed_candidates
    assert "num_candidates is ignored" in " ".join(result.notes)
    assert result.notes[0] == "2 candidates × 5 scenarios = 10 evaluations"


def test_named_seeds_must_be_this_projects_candidates() -> None:
    known, stranger = str(uuid.uuid4()), str(uuid.uuid4())
    facts = replace(READY, known_seeds=frozenset({known}))

    ok = preflight(RunMode.SEEDED, RunParameters(num_candidates=2, seed_candidate_ids=(known,)), facts)
    bad = preflight(RunMode.SEEDED, RunParameters(seed_candidate_ids=(known, stranger)), facts)
    malformed = preflight(RunMode.SEEDED, RunParameters(seed_candidate_ids=("nope",)), facts)

    assert ok.ready
    assert ok.config.parameters.seed_candidate_ids == (known,)
    assert ok.notes[0] == "3 candidates × 5 scenarios = 15 evaluations"
    assert codes(bad) == ["validation_error"]
    assert stranger in bad.blockers[0].message
    assert codes(malformed) == ["validation_error"]


def test_a_seed_named_in_capitals_or_twice_is_the_one_candidate() -> None:
    known = str(uuid.uuid4())
    facts = replace(READY, known_seeds=frozenset({known}))

    result = preflight(RunMode.EVAL_ONLY, RunParameters(seed_candidate_ids=(known.upper(), known)), facts)

    assert result.ready
    assert result.config.parameters.seed_candidate_ids == (known,)


def test_seeds_given_whole_count_with_the_named_ones_and_replace_the_latest_runs() -> None:
    known, latest = str(uuid.uuid4()), (str(uuid.uuid4()),)
    facts = replace(READY, known_seeds=frozenset({known}), latest_run_candidates=latest)
    arch = CandidateDraft("  Arch ", "stone", "corbel", ("dry weather",))

    whole = preflight(RunMode.EVAL_ONLY, RunParameters(num_scenarios=2, seed_candidates=(arch,)), READY)
    both = preflight(RunMode.SEEDED, RunParameters(1, 2, (known,), seed_candidates=(arch,)), facts)
    alone = preflight(RunMode.EVAL_ONLY, RunParameters(seed_candidates=(arch,)), facts)
    ignored = preflight(RunMode.FULL_SEARCH, RunParameters(seed_candidates=(arch,)), READY)

    # A project without runs can evaluate candidates given whole (a snapshot replayed into it).
    assert whole.ready
    assert whole.prerequisites.seed_candidates
    assert whole.config.parameters.seed_candidates == (replace(arch, title="Arch"),)
    assert whole.notes[0] == "1 candidate × 2 scenarios = 2 evaluations"
    assert both.ready
    assert both.notes[0] == "3 candidates × 2 scenarios = 6 evaluations"
    # Seeds given whole are the seeds: the latest run's candidates are not added.
    assert alone.config.parameters.seed_candidate_ids == ()
    assert ignored.config.parameters.seed_candidates == ()
    assert "seed_candidates are ignored" in " ".join(ignored.notes)


def test_a_seed_given_whole_is_bounded_like_a_stored_candidate() -> None:
    bad = (
        CandidateDraft(" "),
        CandidateDraft("t" * 201),
        CandidateDraft("ok", description="d" * 4_001),
        CandidateDraft("ok", assumptions=("a",) * 21),
    )
    many = (CandidateDraft("x"),) * 51

    result = preflight(RunMode.EVAL_ONLY, RunParameters(seed_candidates=bad), READY)
    too_many = preflight(RunMode.EVAL_ONLY, RunParameters(seed_candidates=many), READY)

    assert [b.field for b in result.blockers] == [
        "parameters.seed_candidates[0].title",
        "parameters.seed_candidates[1].title",
        "parameters.seed_candidates[2].description",
        "parameters.seed_candidates[3].assumptions",
    ]
    assert codes(too_many) == ["validation_error"]
    assert "at most 50 seeds" in too_many.blockers[0].message


def test_warnings_for_a_wide_run_and_an_estimate_over_budget() -> None:
    wide = preflight(RunMode.FULL_SEARCH, RunParameters(num_candidates=25, num_scenarios=2), READY)
    over = preflight(RunMode.FULL_SEARCH, RunParameters(budget_usd=0.0001), READY)
    pricey = preflight(RunMode.FULL_SEARCH, RunParameters(), replace(READY, evaluator=ModelPrice(200, 800)))

    assert [w.code for w in wide.warnings] == [WarningCode.LARGE_CANDIDATE_COUNT]
    assert wide.ready
    assert [w.code for w in over.warnings] == [WarningCode.HIGH_BUDGET]
    # Amounts of a few calls in the figures that tell them apart, not "$0.00 is over $0.00".
    assert f"The estimate (${over.estimate.usd:.4f}) is over budget_usd ($0.0001)" in over.warnings[0].message
    assert [w.code for w in pricey.warnings] == [WarningCode.HIGH_BUDGET]


@pytest.mark.parametrize("budget", [-3.0, 0.0])
def test_a_budget_out_of_its_bounds_is_refused_without_a_warning_that_it_is_low(budget: float) -> None:
    result = preflight(RunMode.FULL_SEARCH, RunParameters(budget_usd=budget), READY)

    assert [b.field for b in result.blockers] == ["parameters.budget_usd"]
    assert result.warnings == ()


def test_a_count_out_of_its_bounds_is_refused_as_such_not_also_as_too_many_pairs() -> None:
    result = preflight(RunMode.FULL_SEARCH, RunParameters(num_candidates=999, num_scenarios=3), READY)

    assert [(b.field, b.message) for b in result.blockers] == [
        ("parameters.num_candidates", "parameters.num_candidates: 1 to 50")
    ]
    assert result.warnings == ()  # neither a wide run nor a cost: a run that cannot start


def test_a_missing_mode_is_a_validation_error() -> None:
    result = preflight(None, RunParameters(), READY)
    assert [(b.code, b.field) for b in result.blockers] == [(BlockerCode.VALIDATION_ERROR, "mode")]
