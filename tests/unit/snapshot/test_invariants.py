"""Invariants: every built-in type and custom CEL, validated on create (naming the field) and checked on replays."""

from __future__ import annotations

from dataclasses import replace

import pytest

from crucible_snapshot.domain import invariants as inv
from crucible_snapshot.domain.model import Invariant, ResultStatus
from tests.unit.snapshot.fakes import good_metrics, snapshot

GOOD = [
    Invariant("min_candidates", 3, "at least 3"),
    Invariant("max_candidates", 10),
    Invariant("min_scenarios", 0),
    Invariant("max_scenarios", 5.0),
    Invariant("run_status", "completed"),
    Invariant("min_top_i_score", 0.3),
    Invariant("max_top_i_score", 5),
    Invariant("no_hard_constraint_violations", True),
    Invariant("max_duration_seconds", 300),
    Invariant("min_evaluation_coverage", 0.9),
    Invariant("custom", "evaluations == candidates * scenarios"),
    Invariant("custom", "has(metrics.top_i) && top_i > 1.0 && status == 'COMPLETED'"),
    Invariant("custom", "top_i != null && candidates > 2.5"),
]


def test_every_built_in_type_and_custom_cel_validate() -> None:
    assert inv.validate(GOOD) == []


@pytest.mark.parametrize(
    ("invariant", "field", "says"),
    [
        (Invariant("min_candidatez", 3), "invariants[0].type", "unknown invariant type 'min_candidatez'"),
        (Invariant("min_candidates", -1), "invariants[0].value", "non-negative integer"),
        (Invariant("min_candidates", 2.5), "invariants[0].value", "non-negative integer"),
        (Invariant("min_candidates", True), "invariants[0].value", "non-negative integer"),
        (Invariant("max_scenarios", "5"), "invariants[0].value", "non-negative integer"),
        (Invariant("run_status", "DONE"), "invariants[0].value", "COMPLETED, FAILED, CANCELLED"),
        (Invariant("run_status", 1), "invariants[0].value", "a run status"),
        (Invariant("min_top_i_score", "high"), "invariants[0].value", "a number"),
        (Invariant("max_top_i_score", None), "invariants[0].value", "a number"),
        (Invariant("no_hard_constraint_violations", 1), "invariants[0].value", "a boolean"),
        (Invariant("max_duration_seconds", 0), "invariants[0].value", "positive number"),
        (Invariant("min_evaluation_coverage", 1.5), "invariants[0].value", "[0, 1]"),
        (Invariant("custom", 3), "invariants[0].value", "a CEL expression"),
        (Invariant("custom", "candidates >"), "invariants[0].value", "not a boolean CEL expression"),
        (Invariant("custom", "candidatez > 1"), "invariants[0].value", "candidatez"),
        (Invariant("custom", "candidates + 1"), "invariants[0].value", "not a boolean"),
        (Invariant("custom", "status > 1"), "invariants[0].value", "not a boolean CEL expression"),
        (Invariant("custom", "x" * 2_001), "invariants[0].value", "at most 2000"),
        (Invariant("min_candidates", 1, "d" * 1_001), "invariants[0].description", "at most 1000"),
    ],
)
def test_a_bad_invariant_names_its_field(invariant: Invariant, field: str, says: str) -> None:
    (problem,) = inv.validate([invariant])

    assert problem.field == field
    assert says in problem.description


def test_every_bad_invariant_is_listed_not_just_the_first() -> None:
    problems = inv.validate([Invariant("min_candidates", 1), Invariant("nope", 1), Invariant("run_status", "x")])

    assert [p.field for p in problems] == ["invariants[1].type", "invariants[2].value"]


def test_python_is_never_evaluated() -> None:
    (problem,) = inv.validate([Invariant("custom", "__import__('os').system('true') == 0")])

    assert problem.field == "invariants[0].value"


def test_normalized_spells_statuses_in_capitals_and_counts_as_integers() -> None:
    assert inv.normalized(Invariant("run_status", "completed", " d ")) == Invariant("run_status", "COMPLETED", "d")
    assert inv.normalized(Invariant("min_candidates", 3.0)) == Invariant("min_candidates", 3)


@pytest.mark.parametrize(
    ("invariant", "held", "actual"),
    [
        (Invariant("min_candidates", 3), True, 3),
        (Invariant("min_candidates", 4), False, 3),
        (Invariant("max_candidates", 2), False, 3),
        (Invariant("min_scenarios", 5), True, 5),
        (Invariant("max_scenarios", 5), True, 5),
        (Invariant("run_status", "COMPLETED"), True, "COMPLETED"),
        (Invariant("run_status", "FAILED"), False, "COMPLETED"),
        (Invariant("min_top_i_score", 1.2), True, 1.2),
        (Invariant("max_top_i_score", 1.0), False, 1.2),
        (Invariant("no_hard_constraint_violations", True), True, True),
        (Invariant("max_duration_seconds", 5), False, 10.0),
        (Invariant("min_evaluation_coverage", 1.0), True, 1.0),
        (Invariant("custom", "evaluations == candidates * scenarios"), True, True),
        (Invariant("custom", "usd > 1.0"), False, False),
    ],
)
def test_each_type_is_checked_with_expected_and_actual(invariant: Invariant, held: bool, actual: object) -> None:
    result = inv.check(invariant, [good_metrics()])

    assert result.status is (ResultStatus.PASSED if held else ResultStatus.FAILED)
    assert result.actual == actual
    assert result.pass_rate == (1.0 if held else 0.0)


def test_hard_constraint_violations_say_how_many() -> None:
    result = inv.check(Invariant("no_hard_constraint_violations", True), [good_metrics(hard_constraint_violations=2)])

    assert (result.status, result.expected, result.actual) == (ResultStatus.FAILED, True, False)
    assert "2 candidates rejected" in result.message


def test_a_snapshot_says_which_of_its_invariants_its_own_run_broke() -> None:
    invariants = (Invariant("run_status", "COMPLETED"), Invariant("no_hard_constraint_violations", True))
    made = snapshot(invariants=invariants, reference_metrics=good_metrics(hard_constraint_violations=1))

    kept, broken = inv.on_reference(made)

    assert (kept.type, kept.status) == ("run_status", ResultStatus.PASSED)
    assert (broken.type, broken.status) == ("no_hard_constraint_violations", ResultStatus.FAILED)
    assert "1 candidate rejected" in broken.message
    # Without a source run there is nothing to check them against.
    assert inv.on_reference(replace(made, reference_metrics=None)) == ()
    # One stored under rules since retired is an error of its own; the snapshot still reads.
    (retired,) = inv.on_reference(replace(made, invariants=(Invariant("min_budget", 3),)))
    assert (retired.status, retired.expected) == (ResultStatus.ERROR, 3)
    assert retired.message.startswith("cannot be checked")


def test_a_missing_top_candidate_fails_a_bound_and_a_custom_expression_that_cannot_evaluate_is_an_error() -> None:
    no_top = good_metrics(top_i=None, top_p=None, top_r=None, duration_seconds=None)

    bound = inv.check(Invariant("min_top_i_score", 0.3), [no_top])
    custom = inv.check(Invariant("custom", "top_i > 0.3"), [no_top])
    guarded = inv.check(Invariant("custom", "top_i != null && top_i > 0.3"), [no_top])
    duration = inv.check(Invariant("max_duration_seconds", 10), [no_top])

    assert (bound.status, bound.actual) == (ResultStatus.FAILED, None)
    assert custom.status is ResultStatus.ERROR
    assert "does not evaluate" in custom.message
    assert (guarded.status, guarded.actual) == (ResultStatus.FAILED, False)
    assert duration.status is ResultStatus.FAILED


def test_a_failed_run_status_says_why_the_run_failed() -> None:
    failed = good_metrics(status="FAILED", failure_reason="design failed: PROVIDER_UNAVAILABLE")

    result = inv.check(Invariant("run_status", "COMPLETED"), [failed])

    assert result.message == "design failed: PROVIDER_UNAVAILABLE"


def test_with_repetitions_the_pass_rate_decides_and_every_actual_is_listed() -> None:
    replays = [good_metrics(candidates=n) for n in (3, 3, 2, 3)]
    invariant = Invariant("min_candidates", 3)

    strict = inv.check(invariant, replays)
    lenient = inv.check(invariant, replays, min_pass_rate=0.75)

    assert strict.status is ResultStatus.FAILED
    assert lenient.status is ResultStatus.PASSED
    assert strict.pass_rate == lenient.pass_rate == 0.75
    assert strict.actual == [3, 3, 2, 3]
    assert strict.message.startswith("held in 3 of 4 repetitions")
