"""The post-run summary: a labelled message in the project's chat, its ``run_summary`` as seed 001
lists it, and beside it (``run_rejections``) the candidates the run rejected and why, which the
seed's top candidates leave out."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from crucible_common.wording import broke, counted, pairs
from crucible_run.domain.model import ConstraintViolation, JsonObject, RankedCandidate, Run, RunCounts

TOP = 3
# A run's summary message has an id derived from the run's: posting it again (after a restart)
# finds the message already there.
_SUMMARY_NAMESPACE = uuid.UUID("6f1c5d2a-1f0e-4a8e-9c41-2b7d3e5a9c10")


def summary_message_id(run_id: str) -> str:
    return str(uuid.uuid5(_SUMMARY_NAMESPACE, f"run-summary:{run_id}"))


def results_path(run_id: str) -> str:
    return f"/runs/{run_id}"


def run_summary(run: Run, counts: RunCounts, ranking: Sequence[RankedCandidate], ended_at: datetime) -> JsonObject:
    """``metadata.run_summary``: run_id, project_id, mode, status, times, counts, top candidates, links, label."""
    started = run.started_at or run.created_at
    top = [r for r in ranking if not r.rejected and r.i is not None][:TOP]
    return {
        "run_id": run.id,
        "project_id": run.project_id,
        "mode": run.mode.value,
        "status": run.status.value,
        "started_at": started.isoformat(),
        "completed_at": ended_at.isoformat(),
        "duration_seconds": round((ended_at - started).total_seconds(), 3),
        "counts": {"candidates": counts.candidates, "scenarios": counts.scenarios, "evaluations": counts.evaluations},
        "top_candidates": [
            {
                "candidate_id": r.candidate_id,
                "label": r.title,
                "I": round(r.i, 4) if r.i is not None else None,
                "P": round(r.p, 4) if r.p is not None else None,
                "R": round(r.r, 4) if r.r is not None else None,
                "notes": f"{r.label.value}; {counted(r.evaluations, 'evaluation')}"
                + (f", {r.failed_evaluations} failed" if r.failed_evaluations else ""),
            }
            for r in top
        ],
        "links": {"results_view": results_path(run.id)},
        "summary_label": summary_label(run.id),
    }


def run_rejections(ranking: Sequence[RankedCandidate]) -> list[JsonObject]:
    """``metadata.run_rejections``: each rejected candidate, the hard constraints it broke and in how
    many of its evaluated scenarios."""
    return [
        {
            "candidate_id": r.candidate_id,
            "title": r.title,
            "evaluations": r.evaluations,
            "violated_constraints": [
                {"constraint": v.constraint, "weight": v.weight, "scenarios": v.scenarios}
                for v in r.violated_constraints
            ],
        }
        for r in ranking
        if r.rejected
    ]


def summary_metadata(summary: JsonObject, rejections: list[JsonObject]) -> JsonObject:
    """The summary message's metadata."""
    return {"run_summary": summary, "run_rejections": rejections}


def summary_label(run_id: str) -> str:
    return f"Run {run_id[:8]} summary"


def summary_text(summary: JsonObject, ranking: Sequence[RankedCandidate], failure_reason: str) -> str:
    """The message a person reads in the chat (``ranking`` for what it rejected); the card is drawn
    from the metadata."""
    counts = summary["counts"]
    lines = [
        f"**{summary['summary_label']}** ({summary['mode']}): {summary['status'].lower()} in "
        f"{summary['duration_seconds']:.1f} s, {pairs(counts['candidates'], counts['scenarios'])}, "
        f"{counted(counts['evaluations'], 'evaluation')}."
    ]
    if failure_reason:
        lines.append(f"Why it stopped: {failure_reason}")
    for position, top in enumerate(summary["top_candidates"], start=1):
        lines.append(f"{position}. {top['label']}: I {top['I']:.2f} (P {top['P']:.2f}, R {top['R']:.2f})")
    if not summary["top_candidates"]:
        lines.append("No candidate could be ranked.")
    for rejected in (r for r in ranking if r.rejected):
        lines.append(
            f"Rejected: {rejected.title}, {violations_text(rejected.violated_constraints, rejected.evaluations)}"
        )
    lines.append(f"Results: {summary['links']['results_view']}")
    return "\n".join(lines)


def violations_text(violations: Sequence[ConstraintViolation], evaluated: int) -> str:
    """Where a rejected candidate broke each hard constraint, of the ``evaluated`` scenarios it was
    evaluated in: "broke budget in 3 of 4 scenarios; …"."""
    return broke(((v.constraint, v.scenarios) for v in violations), evaluated)
