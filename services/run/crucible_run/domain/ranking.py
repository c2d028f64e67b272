"""The I-ranker: I = P / R per candidate; a candidate that breaks a hard constraint is rejected.

P and R are the means of a candidate's successful evaluations (over the scenarios it was
evaluated in); a failed evaluation counts for nothing, it is never scored by default. The rest are
labelled by I:

- PROMISING: I ≥ 1.1 (it performs clearly more than it costs or risks);
- UNDER_TEST: 0.9 ≤ I < 1.1 (about even), or evaluated in fewer than half of the run's scenarios,
  or not at all;
- WEAK: I < 0.9 (it costs or risks clearly more than it performs).

Order: by I, best first (then P, then title), among the candidates evaluated in at least half of
the run's scenarios; then, the same way, those evaluated in fewer (an I from one scenario of twenty
is not evidence enough to rank, or to summarise, a candidate above one that held up in all
twenty); then candidates without I; rejected last.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from statistics import fmean

from crucible_run.domain.model import (
    HARD_CONSTRAINT_WEIGHT,
    Candidate,
    CandidateLabel,
    ConstraintViolation,
    Evaluation,
    EvaluationStatus,
    RankedCandidate,
)

PROMISING_I = 1.1
WEAK_BELOW_I = 0.9
MIN_SCENARIO_SHARE = 0.5


def rank(
    candidates: Sequence[Candidate], scenario_count: int, evaluations: Sequence[Evaluation]
) -> list[RankedCandidate]:
    by_candidate: dict[str, list[Evaluation]] = {c.id: [] for c in candidates}
    for evaluation in evaluations:
        by_candidate.setdefault(evaluation.candidate_id, []).append(evaluation)
    scored = [_score(c, by_candidate[c.id], scenario_count) for c in candidates]
    ordered = sorted(scored, key=lambda r: _order(r, scenario_count))
    return [replace(r, rank=position) for position, r in enumerate(ordered, start=1)]


def _score(candidate: Candidate, evaluations: list[Evaluation], scenario_count: int) -> RankedCandidate:
    good = [e for e in evaluations if e.status is EvaluationStatus.SUCCEEDED and e.p is not None and e.r is not None]
    failed = len(evaluations) - len(good)
    p = fmean(e.p.overall for e in good if e.p is not None) if good else None
    r = fmean(e.r.overall for e in good if e.r is not None) if good else None
    i = p / r if p is not None and r is not None and r > 0 else None
    broken: Counter[tuple[str, int]] = Counter()
    for e in good:
        for result in e.constraint_satisfaction:
            if not result.satisfied and result.weight >= HARD_CONSTRAINT_WEIGHT:
                broken[(result.constraint, result.weight)] += 1
    violations = tuple(ConstraintViolation(name, weight, n) for (name, weight), n in sorted(broken.items()))
    return RankedCandidate(
        candidate_id=candidate.id,
        title=candidate.title,
        rank=0,
        label=_label(i, len(good), scenario_count, bool(violations)),
        i=i,
        p=p,
        r=r,
        violated_constraints=violations,
        evaluations=len(good),
        failed_evaluations=failed,
    )


def _label(i: float | None, evaluated: int, scenario_count: int, rejected: bool) -> CandidateLabel:
    if rejected:
        return CandidateLabel.REJECTED
    if i is None or _too_few(evaluated, scenario_count):
        return CandidateLabel.UNDER_TEST
    if i >= PROMISING_I:
        return CandidateLabel.PROMISING
    if i >= WEAK_BELOW_I:
        return CandidateLabel.UNDER_TEST
    return CandidateLabel.WEAK


def _too_few(evaluated: int, scenario_count: int) -> bool:
    return evaluated < MIN_SCENARIO_SHARE * scenario_count


def _order(r: RankedCandidate, scenario_count: int) -> tuple[int, float, float, str]:
    if r.rejected:
        group = 3
    elif r.i is None:
        group = 2
    else:
        group = 1 if _too_few(r.evaluations, scenario_count) else 0
    return group, -(r.i or 0.0), -(r.p or 0.0), r.title
