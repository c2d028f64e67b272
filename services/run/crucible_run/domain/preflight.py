"""Preflight: whether a run configuration can run, what it would cost, and the config as it would run.

The same rules answer the Run Config panel, the Architect's recommendations and CreateRun, which
refuses a configuration with blockers. Unset counts take their default from the ProblemSpec's
resolution, but for a seeded run's num_candidates: unset, it designs none and evaluates its seeds.
eval_only and seeded runs without seeds (named, or given whole) take the candidates of the
project's latest completed run, and the normalized config names them, so a run says what it
evaluated.

``deprecated_mode`` is in the contract for modes to come; no mode is deprecated today.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from crucible_common.wording import counted, pairs
from crucible_run.domain import estimates as est
from crucible_run.domain.estimates import CostEstimate, ModelPrice, PromptSizes
from crucible_run.domain.model import BlockerCode, CandidateDraft, RunConfig, RunMode, RunParameters, WarningCode

# Documented bounds of the parameters.
MAX_CANDIDATES = 50
MAX_SCENARIOS = 50
MAX_EVALUATIONS = 1_000
MAX_SEEDS = 50
# A seed given whole (seed_candidates).
MAX_TITLE_CHARS = 200
MAX_TEXT_CHARS = 4_000
MAX_ASSUMPTIONS = 20
MAX_ASSUMPTION_CHARS = 1_000
MAX_BUDGET_USD = 1_000.0
MIN_BUDGET_TOKENS = 1_000
MIN_RUNTIME_S = 10
MAX_RUNTIME_S = 86_400
# Defaults by the ProblemSpec's resolution: (candidates, scenarios).
DEFAULT_COUNTS = {"coarse": (3, 3), "medium": (5, 5), "fine": (8, 8)}
# Warnings.
LARGE_CANDIDATE_COUNT = 20
HIGH_COST_USD = 1.0


@dataclass(frozen=True)
class Blocker:
    code: BlockerCode
    message: str
    field: str = ""


@dataclass(frozen=True)
class Warning:
    code: WarningCode
    message: str


@dataclass(frozen=True)
class Prerequisites:
    problem_spec: bool
    world_model: bool
    seed_candidates: bool


@dataclass(frozen=True)
class Facts:
    """What preflight needs to know about the project, gathered by the caller."""

    # The ProblemSpec has a constraint or a goal; the WorldModel has an item in some section.
    problem_spec: bool
    world_model: bool
    resolution: str
    # What each kind of call reads, from the pipeline's prompts (for the estimate).
    prompts: PromptSizes
    # Which of the named seed ids are candidates of this project's runs.
    known_seeds: frozenset[str]
    # The candidates of the project's latest completed run, the default seeds.
    latest_run_candidates: tuple[str, ...]
    designer: ModelPrice = est.UNPRICED
    evaluator: ModelPrice = est.UNPRICED
    # What each seed adds to an evaluation's prompt: the known candidates' by id, the drafts' in order
    # (one not sized counts as a designed candidate, ``estimates.CANDIDATE_CHARS``).
    seed_chars: Mapping[str, int] = field(default_factory=dict)
    draft_chars: tuple[int, ...] = ()


@dataclass(frozen=True)
class Preflight:
    ready: bool
    blockers: tuple[Blocker, ...]
    warnings: tuple[Warning, ...]
    config: RunConfig
    prerequisites: Prerequisites
    notes: tuple[str, ...]
    estimate: CostEstimate


@dataclass
class _Check:
    blockers: list[Blocker] = field(default_factory=list)
    warnings: list[Warning] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # The fields refused so far: what later checks of a configuration that could run leave alone.
    refused: set[str] = field(default_factory=set)

    def invalid(self, field_: str, message: str) -> None:
        self.blockers.append(Blocker(BlockerCode.VALIDATION_ERROR, f"{field_}: {message}", field_))
        self.refused.add(field_)

    def valid(self, *fields: str) -> bool:
        """None of ``fields`` has been refused."""
        return self.refused.isdisjoint(fields)


def preflight(mode: RunMode | None, parameters: RunParameters, facts: Facts) -> Preflight:
    check = _Check()
    if mode is None:
        check.invalid("mode", "one of full_search, eval_only, seeded")
        mode = RunMode.FULL_SEARCH
    if not facts.problem_spec:
        check.blockers.append(
            Blocker(
                BlockerCode.MISSING_PROBLEM_SPEC,
                "The project has no ProblemSpec yet: describe the problem in the chat, or add a constraint or a goal.",
            )
        )
    if not facts.world_model:
        check.blockers.append(
            Blocker(
                BlockerCode.MISSING_WORLD_MODEL,
                "The project has no WorldModel yet: describe the actors, resources and mechanisms in the chat, "
                "or add an item to one of its sections.",
            )
        )
    params = _normalize(mode, parameters, facts, check)
    seeds = _seeds(mode, params, facts, check)
    drafts = _drafts(mode, params, check)
    params = replace(params, seed_candidate_ids=seeds, seed_candidates=drafts)
    # A negative count (refused by a blocker, but still counted and estimated) is none, not less.
    designed = max(params.num_candidates, 0) if mode is not RunMode.EVAL_ONLY else 0
    scenarios = max(params.num_scenarios, 0)
    candidates = designed + len(seeds) + len(drafts)
    evaluations = candidates * scenarios
    counts_valid = check.valid("parameters.num_candidates", "parameters.num_scenarios")
    # Only of counts each within its bounds: 999 candidates are refused as such, not as too many pairs.
    if evaluations > MAX_EVALUATIONS and counts_valid:
        check.invalid(
            "parameters.num_scenarios",
            f"{pairs(candidates, scenarios)} = {counted(evaluations, 'evaluation')}; at most {MAX_EVALUATIONS}",
        )
    seed_sizes = [facts.seed_chars.get(s, est.CANDIDATE_CHARS) for s in seeds]
    seed_sizes += [
        facts.draft_chars[i] if i < len(facts.draft_chars) else est.CANDIDATE_CHARS for i in range(len(drafts))
    ]
    estimate = _estimate(designed, scenarios, seed_sizes, facts)
    _warnings(candidates, params, estimate, counts_valid, check)
    check.notes.insert(0, f"{pairs(candidates, scenarios)} = {counted(evaluations, 'evaluation')}")
    prerequisites = Prerequisites(
        facts.problem_spec, facts.world_model, bool(seeds or drafts) or mode is RunMode.FULL_SEARCH
    )
    return Preflight(
        ready=not check.blockers,
        blockers=tuple(check.blockers),
        warnings=tuple(check.warnings),
        config=RunConfig(mode, params),
        prerequisites=prerequisites,
        notes=tuple(check.notes),
        estimate=estimate,
    )


def _normalize(mode: RunMode, p: RunParameters, facts: Facts, check: _Check) -> RunParameters:
    default_candidates, default_scenarios = DEFAULT_COUNTS.get(facts.resolution, DEFAULT_COUNTS["medium"])
    candidates = p.num_candidates
    if mode is RunMode.EVAL_ONLY:
        if candidates:
            check.notes.append("eval_only designs no candidates: num_candidates is ignored")
        candidates = 0
    elif candidates == 0 and mode is RunMode.FULL_SEARCH:
        candidates = default_candidates
    scenarios = p.num_scenarios or default_scenarios
    low = 1 if mode is RunMode.FULL_SEARCH else 0
    if not low <= candidates <= MAX_CANDIDATES:
        check.invalid("parameters.num_candidates", f"{low} to {MAX_CANDIDATES}")
    if not 1 <= scenarios <= MAX_SCENARIOS:
        check.invalid("parameters.num_scenarios", f"1 to {MAX_SCENARIOS}")
    if p.budget_usd is not None and not 0 < p.budget_usd <= MAX_BUDGET_USD:
        check.invalid("parameters.budget_usd", f"more than 0 and at most {MAX_BUDGET_USD:g}")
    if p.budget_usd is not None and not (facts.designer.priced and facts.evaluator.priced):
        check.invalid("parameters.budget_usd", "the run's models have no price, so a USD budget cannot be kept")
    if p.budget_tokens is not None and p.budget_tokens < MIN_BUDGET_TOKENS:
        check.invalid("parameters.budget_tokens", f"at least {MIN_BUDGET_TOKENS}")
    if p.max_runtime_s is not None and not MIN_RUNTIME_S <= p.max_runtime_s <= MAX_RUNTIME_S:
        check.invalid("parameters.max_runtime_s", f"{MIN_RUNTIME_S} to {MAX_RUNTIME_S}")
    return replace(p, num_candidates=candidates, num_scenarios=scenarios)


def _seeds(mode: RunMode, p: RunParameters, facts: Facts, check: _Check) -> tuple[str, ...]:
    # In the canonical spelling the database gives ids in (an id in capitals is the same candidate).
    named = tuple(dict.fromkeys(_canonical_id(s) for s in p.seed_candidate_ids))
    if mode is RunMode.FULL_SEARCH:
        if named:
            check.notes.append("full_search designs its own candidates: seed_candidate_ids are ignored")
        return ()
    if len(named) + len(p.seed_candidates) > MAX_SEEDS:
        check.invalid("parameters.seed_candidate_ids", f"at most {MAX_SEEDS} seeds, named and given whole")
        return ()
    malformed = [s for s in named if not _is_uuid(s)]
    if malformed:
        check.invalid("parameters.seed_candidate_ids", f"not candidate ids: {', '.join(malformed[:5])}")
        return ()
    unknown = [s for s in named if s not in facts.known_seeds]
    if unknown:
        check.invalid(
            "parameters.seed_candidate_ids", f"not candidates of this project's runs: {', '.join(unknown[:5])}"
        )
        return ()
    if named or p.seed_candidates:
        return named
    if facts.latest_run_candidates:
        check.notes.append(
            f"the {counted(len(facts.latest_run_candidates), 'candidate')} of the project's latest completed run "
            f"{'is the seed' if len(facts.latest_run_candidates) == 1 else 'are the seeds'}"
        )
        return facts.latest_run_candidates
    check.blockers.append(
        Blocker(
            BlockerCode.INSUFFICIENT_CANDIDATES,
            f"A {mode.value} run evaluates existing candidates, and this project has none yet: name some in "
            "seed_candidate_ids, or complete a full_search run first.",
            "parameters.seed_candidate_ids",
        )
    )
    return ()


def _drafts(mode: RunMode, p: RunParameters, check: _Check) -> tuple[CandidateDraft, ...]:
    """The seeds given whole, checked against the bounds a stored candidate keeps."""
    if not p.seed_candidates:
        return ()
    if mode is RunMode.FULL_SEARCH:
        check.notes.append("full_search designs its own candidates: seed_candidates are ignored")
        return ()
    for i, draft in enumerate(p.seed_candidates):
        at = f"parameters.seed_candidates[{i}]"
        if not 1 <= len(draft.title.strip()) <= MAX_TITLE_CHARS:
            check.invalid(f"{at}.title", f"1 to {MAX_TITLE_CHARS} characters")
        for name in ("description", "approach"):
            if len(getattr(draft, name)) > MAX_TEXT_CHARS:
                check.invalid(f"{at}.{name}", f"at most {MAX_TEXT_CHARS} characters")
        if len(draft.assumptions) > MAX_ASSUMPTIONS or any(len(a) > MAX_ASSUMPTION_CHARS for a in draft.assumptions):
            check.invalid(
                f"{at}.assumptions", f"at most {MAX_ASSUMPTIONS}, of at most {MAX_ASSUMPTION_CHARS} characters each"
            )
    return tuple(replace(d, title=d.title.strip()) for d in p.seed_candidates)


def _estimate(designed: int, scenarios: int, seed_sizes: list[int], facts: Facts) -> CostEstimate:
    """The design and scenario calls, and every pair's evaluation: a designed candidate's sized as
    estimated, a seed's as it is written."""
    calls = []
    if designed:
        calls.append(est.estimate(facts.prompts.design, est.design_output(designed), facts.designer))
    calls.append(est.estimate(facts.prompts.scenarios, est.scenarios_output(scenarios), facts.designer))

    def evaluation(candidate_chars: int) -> est.CallEstimate:
        reads = facts.prompts.evaluation + candidate_chars + est.SCENARIO_CHARS
        return est.estimate(reads, est.EVALUATION_OUTPUT, facts.evaluator)

    groups = [(evaluation(est.CANDIDATE_CHARS), designed * scenarios)]
    groups += [(evaluation(size), scenarios) for size in seed_sizes]
    return est.total(calls, groups)


def _warnings(candidates: int, p: RunParameters, estimate: CostEstimate, counts_valid: bool, check: _Check) -> None:
    """Of a configuration that could run: a count out of its bounds (a blocker already) makes no
    wide run, nor a cost worth a warning, and a budget out of its bounds none to cross."""
    if counts_valid and candidates > LARGE_CANDIDATE_COUNT:
        check.warnings.append(
            Warning(
                WarningCode.LARGE_CANDIDATE_COUNT,
                f"{candidates} candidates: a run this wide is slow and costly; {LARGE_CANDIDATE_COUNT} or fewer "
                "is usually enough to find the promising ones.",
            )
        )
    if estimate.usd is None:
        check.notes.append("a model of this run has no price: its cost is unknown, not zero")
    elif not counts_valid:
        return
    elif p.budget_usd is not None and estimate.usd > p.budget_usd:
        if check.valid("parameters.budget_usd"):
            check.warnings.append(
                Warning(
                    WarningCode.HIGH_BUDGET,
                    # Cents would read $0.00 for most runs of a few calls.
                    f"The estimate (${estimate.usd:.4f}) is over budget_usd (${p.budget_usd:g}): "
                    "the run will stop when the budget would be crossed.",
                )
            )
    elif estimate.usd > HIGH_COST_USD:
        check.warnings.append(
            Warning(
                WarningCode.HIGH_BUDGET,
                f"The estimate is ${estimate.usd:.2f}, above ${HIGH_COST_USD:.2f}; set budget_usd to cap it.",
            )
        )


def _canonical_id(value: str) -> str:
    return str(uuid.UUID(value)) if _is_uuid(value) else value


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
