"""What the Architect proposes in a chat turn, and the rules that turn it into changes and words.

The model proposes; these rules decide. A patch is merged into the stored ProblemSpec and
WorldModel (by name: a constraint or an item the patch names again replaces the stored one), a
wish to run becomes a recommendation only with what the run service's preflight says about it,
and the reply always ends with the contract, in the service's words rather than the model's:
the Architect cannot start a run, the Run button does.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from crucible_common.wording import counted, pairs
from crucible_spec.domain.model import (
    WORLD_MODEL_SECTIONS,
    Constraint,
    Goal,
    JsonObject,
    ProblemSpec,
    Resolution,
    RunMode,
)

RECOMMENDATION_VERSION = 1
# How long a recommendation stays current unless the model says otherwise (within these bounds).
DEFAULT_EXPIRY_SECONDS = 900
MIN_EXPIRY_SECONDS = 60
MAX_EXPIRY_SECONDS = 86_400


class ArchitectIntent(enum.StrEnum):
    REFINE = "refine"
    RUN_REQUEST = "run_request"
    QUESTION = "question"


class RecommendationStatus(enum.StrEnum):
    READY = "ready"
    BLOCKED = "blocked"
    # The run service could not be asked: nothing is claimed about the configuration.
    INFO = "info"


@dataclass(frozen=True)
class SpecPatch:
    """Constraints and goals to add (or replace, by name), and the resolution or mode to set."""

    constraints: tuple[Constraint, ...] = ()
    goals: tuple[Goal, ...] = ()
    resolution: Resolution | None = None
    mode: RunMode | None = None
    remove_constraints: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorldPatch:
    """Items to add to (or replace in, by name) the WorldModel's sections."""

    sections: dict[str, tuple[JsonObject, ...]]


@dataclass(frozen=True)
class RunWish:
    """What the model suggests running; preflight decides what it would really be."""

    mode: RunMode | None
    num_candidates: int
    num_scenarios: int
    rationale: str
    expires_in_seconds: int = DEFAULT_EXPIRY_SECONDS


@dataclass(frozen=True)
class MergedSpec:
    constraints: tuple[Constraint, ...]
    goals: tuple[Goal, ...]
    resolution: Resolution | None
    mode: RunMode | None
    # The fields the patch changes, as update-mask paths.
    paths: tuple[str, ...]


def merge_spec(current: ProblemSpec | None, patch: SpecPatch) -> MergedSpec:
    stored_constraints = current.constraints if current else ()
    removed = {name.casefold() for name in patch.remove_constraints}
    named = {c.name.casefold(): c for c in patch.constraints}
    constraints = [c for c in stored_constraints if c.name.casefold() not in removed | named.keys()]
    # Replaced ones keep their place; new ones come last, in the order the model gave them.
    positions = {c.name.casefold(): i for i, c in enumerate(stored_constraints)}
    for key, constraint in named.items():
        if key in positions and key not in removed:
            constraints.insert(min(positions[key], len(constraints)), constraint)
        else:
            constraints.append(constraint)
    stored_goals = current.goals if current else ()
    seen = {g.description.strip().casefold() for g in stored_goals}
    goals = list(stored_goals)
    for goal in patch.goals:
        key = goal.description.strip().casefold()
        if key and key not in seen:
            seen.add(key)
            goals.append(goal)
    paths = []
    if tuple(constraints) != stored_constraints:
        paths.append("constraints")
    if tuple(goals) != stored_goals:
        paths.append("goals")
    if patch.resolution is not None and (current is None or patch.resolution != current.resolution):
        paths.append("resolution")
    if patch.mode is not None and (current is None or patch.mode != current.mode):
        paths.append("mode")
    return MergedSpec(tuple(constraints), tuple(goals), patch.resolution, patch.mode, tuple(paths))


def merge_world(current: JsonObject | None, patch: WorldPatch) -> tuple[JsonObject, tuple[str, ...]]:
    """The sections the patch changes, merged by item name; and their update-mask paths."""
    stored = current or {}
    changed: JsonObject = {}
    for section in WORLD_MODEL_SECTIONS:
        items = patch.sections.get(section, ())
        if not items:
            continue
        existing = list(stored.get(section) or [])
        by_name = {_item_name(item): i for i, item in enumerate(existing)}
        merged = list(existing)
        for item in items:
            key = _item_name(item)
            if key and key in by_name:
                merged[by_name[key]] = item
            else:
                by_name[key] = len(merged)
                merged.append(item)
        if merged != existing:
            changed[section] = merged
    return changed, tuple(f"model_data.{s}" for s in changed)


def _item_name(item: object) -> str:
    if isinstance(item, dict):
        return str(item.get("name", "")).strip().casefold()
    return str(item).strip().casefold()


# ---------------------------------------------------------------- recommendations


@dataclass(frozen=True)
class Blocker:
    code: str
    message: str
    field: str = ""


@dataclass(frozen=True)
class Preflight:
    """The run service's verdict on a configuration (the same one the Run Config panel gets)."""

    ready: bool
    blockers: tuple[Blocker, ...]
    warnings: tuple[str, ...]
    mode: RunMode
    parameters: JsonObject
    prerequisites: JsonObject
    notes: tuple[str, ...]
    estimated_tokens: int
    # None: some model the run would call has no price (unknown, not zero).
    estimated_usd: float | None
    estimated_calls: int


@dataclass(frozen=True)
class TraceContext:
    trace_id: str
    span_id: str


@dataclass(frozen=True)
class Recommendation:
    """seed 001's ``recommended_run_config``, with the trace context of the span that made it."""

    recommendation_id: str
    project_id: str
    chat_session_id: str
    source_message_id: str
    generated_at: datetime
    expires_at: datetime
    status: RecommendationStatus
    mode: RunMode | None
    parameters: JsonObject
    prerequisites: JsonObject
    estimated_cost: JsonObject
    rationale: str
    notes: tuple[str, ...]
    blockers: tuple[Blocker, ...]
    warnings: tuple[str, ...]
    trace: TraceContext | None = None
    version: int = RECOMMENDATION_VERSION

    def to_json(self) -> JsonObject:
        return {
            "version": self.version,
            "recommendation_id": self.recommendation_id,
            "project_id": self.project_id,
            "chat_session_id": self.chat_session_id,
            "source_message_id": self.source_message_id,
            "generated_at": self.generated_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "status": self.status.value,
            "mode": self.mode.value if self.mode else None,
            "parameters": self.parameters,
            "prerequisites": self.prerequisites,
            "estimated_cost": self.estimated_cost,
            "rationale": self.rationale,
            "notes": list(self.notes),
            "blockers": [b.code for b in self.blockers],
            "blocker_details": [{"code": b.code, "message": b.message, "field": b.field} for b in self.blockers],
            "warnings": list(self.warnings),
            "trace": {"trace_id": self.trace.trace_id, "span_id": self.trace.span_id} if self.trace else None,
        }


@dataclass(frozen=True)
class RecommendationSource:
    recommendation_id: str
    project_id: str
    chat_session_id: str
    source_message_id: str
    generated_at: datetime
    trace: TraceContext | None = None


def recommend(source: RecommendationSource, wish: RunWish, preflight: Preflight | None) -> Recommendation:
    """The recommendation as preflight judges the wish; without a preflight, only information."""
    expiry = max(MIN_EXPIRY_SECONDS, min(wish.expires_in_seconds, MAX_EXPIRY_SECONDS))
    if preflight is None:
        status = RecommendationStatus.INFO
        mode = wish.mode
        parameters: JsonObject = {"num_candidates": wish.num_candidates, "num_scenarios": wish.num_scenarios}
        prerequisites: JsonObject = {}
        cost: JsonObject = {"tokens": None, "usd": None}
        notes: tuple[str, ...] = ("The run service could not check this configuration; the Run Config panel will.",)
        blockers: tuple[Blocker, ...] = ()
        warnings: tuple[str, ...] = ()
    else:
        status = RecommendationStatus.READY if preflight.ready else RecommendationStatus.BLOCKED
        mode = preflight.mode
        parameters = preflight.parameters
        prerequisites = preflight.prerequisites
        cost = {"tokens": preflight.estimated_tokens, "usd": preflight.estimated_usd}
        notes = preflight.notes
        blockers = preflight.blockers
        warnings = preflight.warnings
    return Recommendation(
        recommendation_id=source.recommendation_id,
        project_id=source.project_id,
        chat_session_id=source.chat_session_id,
        source_message_id=source.source_message_id,
        generated_at=source.generated_at,
        expires_at=source.generated_at + timedelta(seconds=expiry),
        status=status,
        mode=mode,
        parameters=parameters,
        prerequisites=prerequisites,
        estimated_cost=cost,
        rationale=wish.rationale,
        notes=notes,
        blockers=blockers,
        warnings=warnings,
        trace=source.trace,
    )


def contract_text(recommendation: Recommendation | None) -> str:
    """What every reply to a wish to run ends with, whatever the model wrote before it."""
    if recommendation is None:
        return ""
    if recommendation.status is RecommendationStatus.BLOCKED:
        missing = " ".join(b.message for b in recommendation.blockers)
        return (
            f"This run cannot start yet. {missing} I cannot start runs myself: once that is done, "
            "open the Run Config panel and press the Run button to start it."
        )
    params = recommendation.parameters
    shape = f"{recommendation.mode.value if recommendation.mode else 'the'} run"
    candidates, scenarios = int(params.get("num_candidates") or 0), int(params.get("num_scenarios") or 0)
    if candidates and scenarios:
        shape += f" of {pairs(candidates, scenarios)}"
    elif candidates or scenarios:
        # A recommendation may leave one count to the run's default: only the one it gives is said.
        shape += f" of {counted(candidates, 'candidate') if candidates else counted(scenarios, 'scenario')}"
    cost = recommendation.estimated_cost.get("usd")
    estimate = f", estimated at ${cost:.4f}" if isinstance(cost, int | float) else ""
    return (
        f"I recommend a {shape}{estimate}. I cannot start runs myself: to run it, open the Run Config "
        "panel and press the Run button (or `crucible run start`)."
    )
