"""The I-ranker: I = P / R, hard-constraint breakers rejected and named, labels by documented thresholds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crucible_run.domain.model import (
    Candidate,
    CandidateLabel,
    CandidateOrigin,
    Constraint,
    ConstraintResult,
    Evaluation,
    EvaluationStatus,
    ProblemCopy,
    Score,
)
from crucible_run.domain.ranking import rank
from crucible_run.service_layer.pipeline import _evaluation

AT = datetime(2026, 1, 1, tzinfo=UTC)


def candidate(id_: str, title: str = "") -> Candidate:
    return Candidate(id_, "run", title or id_, "", "", (), CandidateOrigin.DESIGNED, AT)


def ev(candidate_id: str, scenario: str, p: float, r: float, broken: tuple[tuple[str, int], ...] = ()) -> Evaluation:
    results = tuple(ConstraintResult(name, weight, False, 0.1, "") for name, weight in broken)
    return Evaluation(
        f"{candidate_id}-{scenario}",
        "run",
        candidate_id,
        scenario,
        EvaluationStatus.SUCCEEDED,
        AT,
        p=Score(p, {}),
        r=Score(r, {}),
        constraint_satisfaction=results,
    )


def failed(candidate_id: str, scenario: str) -> Evaluation:
    return Evaluation(
        f"{candidate_id}-{scenario}",
        "run",
        candidate_id,
        scenario,
        EvaluationStatus.FAILED,
        AT,
        failure_reason="STRUCTURED_OUTPUT_INVALID: no valid answer",
    )


def test_i_is_mean_p_over_mean_r_and_the_best_comes_first() -> None:
    ranking = rank(
        [candidate("a"), candidate("b")],
        2,
        [ev("a", "s1", 0.6, 0.6), ev("a", "s2", 0.8, 0.4), ev("b", "s1", 0.9, 0.5), ev("b", "s2", 0.9, 0.5)],
    )

    assert [r.candidate_id for r in ranking] == ["b", "a"]
    assert [r.rank for r in ranking] == [1, 2]
    b, a = ranking
    assert b.p == pytest.approx(0.9)
    assert b.r == pytest.approx(0.5)
    assert b.i == pytest.approx(1.8)
    assert a.i == pytest.approx(0.7 / 0.5)


@pytest.mark.parametrize(
    ("p", "r", "label"),
    [
        (0.66, 0.6, CandidateLabel.PROMISING),  # I = 1.1
        (0.6, 0.6, CandidateLabel.UNDER_TEST),  # I = 1.0
        (0.54, 0.6, CandidateLabel.UNDER_TEST),  # I = 0.9
        (0.5, 0.6, CandidateLabel.WEAK),  # I ≈ 0.83
    ],
)
def test_labels_follow_the_documented_thresholds(p: float, r: float, label: CandidateLabel) -> None:
    (ranked,) = rank([candidate("a")], 1, [ev("a", "s1", p, r)])
    assert ranked.label is label


def test_a_hard_constraint_broken_in_any_scenario_rejects_and_says_which() -> None:
    ranking = rank(
        [candidate("best"), candidate("ok")],
        3,
        [
            ev("best", "s1", 0.95, 0.2),
            ev("best", "s2", 0.95, 0.2, (("budget", 100), ("style", 40))),
            ev("best", "s3", 0.95, 0.2, (("budget", 100),)),
            ev("ok", "s1", 0.6, 0.5),
            ev("ok", "s2", 0.6, 0.5, (("style", 40),)),
            ev("ok", "s3", 0.6, 0.5),
        ],
    )

    ok, best = ranking
    assert ok.candidate_id == "ok"
    assert ok.label is not CandidateLabel.REJECTED
    assert best.rejected
    assert best.rank == 2
    assert [(v.constraint, v.weight, v.scenarios) for v in best.violated_constraints] == [("budget", 100, 2)]


def test_failed_evaluations_score_nothing_and_an_unevaluated_candidate_stays_under_test() -> None:
    ranking = rank(
        [candidate("half"), candidate("none")],
        4,
        [ev("half", "s1", 0.9, 0.3), failed("half", "s2"), failed("half", "s3"), failed("none", "s1")],
    )

    half, none = ranking
    assert (half.evaluations, half.failed_evaluations) == (1, 2)
    assert half.i == pytest.approx(3.0)
    # Evaluated in fewer than half of the scenarios: not enough to call it promising.
    assert half.label is CandidateLabel.UNDER_TEST
    assert none.i is None
    assert none.p is None
    assert none.label is CandidateLabel.UNDER_TEST
    assert (none.evaluations, none.failed_evaluations) == (0, 1)


def test_a_candidate_evaluated_in_too_few_scenarios_ranks_after_those_that_held_up_in_enough() -> None:
    # "lucky" has the higher I, from one answer of four: "steady" held up in all four.
    steady = [ev("steady", f"s{n}", 0.6, 0.4) for n in range(4)]
    lucky = [ev("lucky", "s0", 0.9, 0.3), failed("lucky", "s1"), failed("lucky", "s2"), failed("lucky", "s3")]
    ranking = rank([candidate("lucky"), candidate("steady"), candidate("none")], 4, [*lucky, *steady])

    assert [r.candidate_id for r in ranking] == ["steady", "lucky", "none"]
    assert ranking[0].i == pytest.approx(1.5)
    assert ranking[1].i == pytest.approx(3.0)
    assert ranking[1].label is CandidateLabel.UNDER_TEST
    assert [r.rank for r in ranking] == [1, 2, 3]


def test_ties_are_broken_by_p_then_title() -> None:
    ranking = rank(
        [candidate("x", "Zeta"), candidate("y", "Alpha"), candidate("z", "Mid")],
        1,
        [ev("x", "s", 0.5, 0.5), ev("y", "s", 0.5, 0.5), ev("z", "s", 0.8, 0.8)],
    )
    assert [r.title for r in ranking] == ["Mid", "Alpha", "Zeta"]


def test_a_hard_constraint_named_in_other_case_and_spacing_still_rejects_and_is_named_as_written() -> None:
    # The evaluator's answer names the constraint its own way; the problem's weight and name hold.
    problem = ProblemCopy((Constraint("No child labour", "", 100), Constraint("Cheap", "", 10)), ("g",), "medium", {})
    answer = {
        "P": {"overall": 0.9, "components": {}},
        "R": {"overall": 0.3, "components": {}},
        "constraint_satisfaction": [
            {"constraint": "  no  CHILD labour ", "satisfied": False, "score": 0.0, "note": ""},
            {"constraint": "cheap", "satisfied": True, "score": 0.9, "note": ""},
            {"constraint": "something else", "satisfied": False, "score": 0.0, "note": ""},
        ],
        "explanation": "x",
    }
    evaluation = _evaluation("run", "a", "s1", problem, answer)
    assert [(c.constraint, c.weight) for c in evaluation.constraint_satisfaction] == [
        ("No child labour", 100),
        ("Cheap", 10),
        ("something else", 0),
    ]
    (only,) = rank([candidate("a")], 1, [evaluation])
    assert only.label is CandidateLabel.REJECTED
    assert [v.constraint for v in only.violated_constraints] == ["No child labour"]


def test_an_answer_names_the_exact_constraint_first_and_an_ambiguous_one_as_none() -> None:
    problem = ProblemCopy(
        (Constraint("No child labour", "", 100), Constraint("No  child labour", "", 10)), ("g",), "medium", {}
    )

    assert problem.constraint("No  child labour") == Constraint("No  child labour", "", 10)
    # Differing from both only in case and spacing: which one was meant is not known.
    assert problem.constraint("no child labour") is None
