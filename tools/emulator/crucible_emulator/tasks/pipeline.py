"""The pipeline's tasks: ``design_candidates``, ``scenarios`` and the ``evaluation`` of one pair."""

from __future__ import annotations

from typing import Any

from crucible_emulator.conversation import JsonObject
from crucible_emulator.tasks.context import TaskContext
from crucible_emulator.text import as_text, key_terms, noun_phrases, summary, unit, with_article, words

# ---------------------------------------------------------------------------------------------
# design_candidates and scenarios


_CANDIDATE_ARCHETYPES = (
    (
        "Incremental baseline",
        "Start from the simplest working version of {t0} and improve it in small, measured steps.",
    ),
    ("Capacity buffer", "Keep spare capacity around {t1} so peaks are absorbed without breaking constraints."),
    ("Demand shaping", "Influence when and how {t0} is requested so the load stays within limits."),
    ("Automation first", "Automate the repetitive parts of {t0} with explicit rules and scheduled checks."),
    ("Adaptive feedback", "Measure {t1} continuously and adjust parameters with simple feedback rules."),
    ("Decentralised", "Let each part of {t2} decide locally under shared rules instead of one central planner."),
    ("Conservative robust", "Design for the worst plausible case of {t0} first and accept a higher cost."),
    ("Cost minimal", "Meet the hard constraints with the fewest resources and nothing more."),
    ("Hybrid staged", "Combine a conservative core for {t0} with an adaptive layer switched on in stages."),
    ("Pooled partnership", "Share {t1} with partners so resources are pooled and idle time drops."),
)

_SCENARIO_ARCHETYPES = (
    ("Baseline operations", "low", "Normal conditions for {t0} for {d} days."),
    ("Demand surge", "high", "Demand for {t0} rises {p}% above normal for {d} days."),
    ("Resource shortage", "high", "The capacity available for {t1} drops by {p}% for {d} days."),
    ("Partial failure", "medium", "One component handling {t0} fails and recovers after {d} days."),
    ("Budget cut", "medium", "The money for {t1} is reduced by {p}%."),
    ("Slow degradation", "low", "Quality of {t2} declines by {p}% over {d} days before anyone notices."),
    ("Rule change", "medium", "A new rule restricts how {t0} may be used, effective in {d} days."),
    ("Bad data", "medium", "{p}% of the measurements about {t1} are missing or wrong."),
    ("Competitor move", "low", "A competitor offers an alternative to {t0} at {p}% lower cost."),
    ("Extreme event", "high", "An extreme event stops {t0} completely for {d} days."),
)


def _problem_terms(ctx: TaskContext) -> tuple[list[str], list[str], list[str]]:
    """Key terms, goal texts and hard-constraint names of the problem in the prompt."""
    spec = ctx.json_with("problem_spec", dict) or {}
    goals = [str(g.get("description")) for g in spec.get("goals", []) if isinstance(g, dict)]
    hard = [
        str(c.get("name"))
        for c in spec.get("constraints", [])
        if isinstance(c, dict) and isinstance(c.get("weight"), int | float) and c["weight"] >= 100
    ]
    stated = [
        str(c.get("description") or c.get("name"))
        for c in spec.get("constraints", [])
        if isinstance(c, dict) and (c.get("description") or c.get("name"))
    ]
    # The problem's own words when the prompt carries it: the instruction around it ("Propose
    # candidate designs for this problem") would name candidates "… for propose". What it is about
    # as noun phrases ("emergency department", "patients"), the few most mentioned; its key words
    # when it has none ("waiting", "hours" read badly as names, so only then).
    source = " ".join([*goals, *stated]) if goals or stated else ctx.task_text
    # A copy: the fallbacks are appended, and ctx.terms is the context's own.
    terms = list(noun_phrases(source, _FOCUS_PHRASES) or key_terms(source, 8) or ctx.terms)
    for fallback in ("system", "resources", "operations"):
        if len(terms) >= 3:
            break
        terms.append(fallback)
    return terms, goals, hard


# How many of the problem's noun phrases name candidates and scenarios: the less mentioned ones
# are the likelier to be misread ("river open" from "keep the river open").
_FOCUS_PHRASES = 4


def design_candidates(ctx: TaskContext) -> JsonObject:
    count = ctx.count("candidates", "num_candidates")
    terms, goals, hard = _problem_terms(ctx)
    archetypes = list(_CANDIDATE_ARCHETYPES)
    ctx.rng.shuffle(archetypes)
    goal = goals[0] if goals else summary(ctx.task_text, 100) or "the stated goal"
    respecting = f" while respecting {', '.join(hard)}" if hard else ""
    candidates: list[JsonObject] = []
    for i in range(count):
        title, approach = archetypes[i % len(archetypes)]
        focus = with_article(terms[i % len(terms)])
        suffix = f" (variant {i // len(archetypes) + 1})" if i >= len(archetypes) else ""
        fill = {"t0": with_article(terms[0]), "t1": with_article(terms[1]), "t2": with_article(terms[2])}
        other = with_article(terms[(i + 1) % len(terms)])
        assumptions = [
            f"What the problem statement says of {focus} holds.",
            f"The effect of the change on {other} can be measured within one cycle.",
        ]
        # As a real designer now and then does, the last of three or more overreaches: it counts on
        # breaking a hard constraint, which every evaluation of it then finds (the run rejects it).
        overreaches = bool(hard) and count >= _OVERREACH_FROM and i == count - 1
        if overreaches:
            assumptions.append(_OVERREACH.format(constraint=hard[0]))
        candidates.append(
            {
                "title": f"{title} for {focus}{suffix}",
                "description": ctx.pick(
                    "{title} design centred on {focus}: it targets '{goal}'{respecting}.",
                    "A {lower} approach, focused on {focus}, aimed at '{goal}'{respecting}.",
                ).format(
                    title=title,
                    lower=title.lower(),
                    focus=focus,
                    goal=goal,
                    respecting="" if overreaches else respecting,
                ),
                "approach": approach.format(**fill),
                "assumptions": assumptions,
            }
        )
    return {"candidates": candidates}


# How many candidates a design call asks for before one of them overreaches, and what it assumes.
_OVERREACH_FROM = 3
_OVERREACH = "{constraint} can be exceeded for a while at peaks; what that saves is worth it."


def scenarios(ctx: TaskContext) -> JsonObject:
    count = ctx.count("scenarios", "num_scenarios")
    terms, _, _ = _problem_terms(ctx)
    archetypes = list(_SCENARIO_ARCHETYPES)
    first, rest = archetypes[0], archetypes[1:]
    ctx.rng.shuffle(rest)
    archetypes = [first, *rest]
    out: list[JsonObject] = []
    for i in range(count):
        title, severity, condition = archetypes[i % len(archetypes)]
        percent = ctx.rng.choice((10, 20, 30, 40, 50))
        days = ctx.rng.choice((2, 3, 7, 14, 30))
        fill = {
            "t0": with_article(terms[0]),
            "t1": with_article(terms[1]),
            "t2": with_article(terms[2]),
            "p": percent,
            "d": days,
        }
        stated = _upper_first(condition.format(**fill))
        suffix = f" (variant {i // len(archetypes) + 1})" if i >= len(archetypes) else ""
        out.append(
            {
                "title": f"{title}: {terms[i % len(terms)]}{suffix}",
                "description": ctx.pick(
                    "Stress test of how designs for {t0} cope when: {c}",
                    "What happens to {t0} if {c_lower}",
                ).format(t0=fill["t0"], c=stated, c_lower=_lower_first(stated)),
                "conditions": [
                    stated,
                    f"All other conditions around {with_article(terms[(i + 1) % len(terms)])} stay at their baseline.",
                ],
                "severity": severity,
            }
        )
    return {"scenarios": out}


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


# ---------------------------------------------------------------------------------------------
# evaluation


_HARD_VIOLATION_RATE = 1 / 9
_SOFT_VIOLATION_RATE = 0.25
_SEVERITY_SHIFT = {"low": 0.0, "medium": 0.06, "high": 0.12}


def evaluation(ctx: TaskContext) -> JsonObject:
    candidate = ctx.json_with("candidate")
    scenario = ctx.json_with("scenario")
    candidate_text = as_text(candidate) if candidate is not None else ctx.task_text
    scenario_text = as_text(scenario) if scenario is not None else ""
    candidate_title = _title(candidate, "the candidate")
    scenario_title = _title(scenario, "the scenario")
    severity = scenario.get("severity") if isinstance(scenario, dict) else None
    shift = _SEVERITY_SHIFT.get(str(severity), 0.04)
    constraints = _constraints(ctx.json_with("constraints", list) or [])
    provider = (ctx.request.provider, ctx.request.model)

    def score(name: str, low: float, high: float) -> float:
        # Mostly the candidate's own merit, which every scenario sees; then the scenario; a little of
        # the provider, as two real models would differ. Were the pair alone to decide, a candidate's
        # average over twenty scenarios would come out at the middle for every candidate (I ≈ 1, all
        # UNDER_TEST), and a run would rank noise.
        merit = unit(name, candidate_text)
        fit = unit(name, candidate_text, scenario_text)
        nudge = unit(name, *provider, candidate_text, scenario_text)
        return round(min(high, max(low, low + (high - low) * (0.65 * merit + 0.25 * fit + 0.1 * nudge))), 3)

    terms = set(key_terms(" ".join(c[0] for c in constraints) + " " + ctx.task_text, 12))
    coverage = len(terms & set(words(candidate_text))) / max(len(terms), 1)
    p_components = {
        "effectiveness": round(max(0.05, score("effectiveness", 0.4, 0.95) - shift), 3),
        "feasibility": score("feasibility", 0.35, 0.95),
        "goal_alignment": round(min(1.0, 0.3 + 0.4 * coverage + 0.3 * unit("alignment", candidate_text)), 3),
    }
    r_components = {
        "cost": score("cost", 0.2, 1.2),
        "complexity": score("complexity", 0.1, 1.0),
        "risk": round(score("risk", 0.1, 0.9) + shift, 3),
    }
    satisfaction: list[JsonObject] = []
    violated: list[str] = []
    for name, weight in constraints:
        hard = weight >= 100
        if hard:
            overreach = _OVERREACH.format(constraint=name)
            fails = overreach in candidate_text or unit("violates", candidate_text, name) < _HARD_VIOLATION_RATE
        else:
            fails = unit("violates", candidate_text, scenario_text, name) < _SOFT_VIOLATION_RATE
        level = unit("satisfaction", candidate_text, scenario_text, name)
        value = round(0.1 + 0.35 * level, 3) if fails else round(0.6 + 0.4 * level, 3)
        if fails:
            violated.append(name)
        satisfaction.append(
            {
                "constraint": name,
                "satisfied": not fails,
                "score": value,
                "note": (
                    f"{'Hard' if hard else 'Soft'} constraint {'violated' if fails else 'met'} by {candidate_title} "
                    f"under {scenario_title}."
                ),
            }
        )
    p_overall = sum(p_components.values()) / len(p_components) - 0.08 * len(violated)
    p_overall = round(min(1.0, max(0.0, p_overall)), 3)
    r_overall = round(max(0.05, sum(r_components.values()) / len(r_components)), 3)
    strongest = max(p_components, key=lambda k: p_components[k])
    heaviest = max(r_components, key=lambda k: r_components[k])
    explanation = ctx.pick(
        "{c} under {s}: P={p} (strongest: {strong}), R={r} (largest: {heavy}).{v}",
        "Evaluating {c} in {s}. Performance {p}, led by {strong}; resource use {r}, mostly {heavy}.{v}",
    ).format(
        c=candidate_title,
        s=scenario_title,
        p=p_overall,
        r=r_overall,
        strong=strongest,
        heavy=heaviest,
        v=f" Violates: {', '.join(violated)}." if violated else " All constraints are met.",
    )
    return {
        "P": {"overall": p_overall, "components": p_components},
        "R": {"overall": r_overall, "components": r_components},
        "constraint_satisfaction": satisfaction,
        "explanation": explanation,
    }


def _title(value: Any, default: str) -> str:
    if isinstance(value, dict):
        for key in ("title", "name", "id"):
            if isinstance(value.get(key), str) and value[key].strip():
                return f"'{value[key].strip()}'"
    if isinstance(value, str) and value.strip():
        return f"'{summary(value, 60)}'"
    return default


def _constraints(raw: list[Any]) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for item in raw:
        if isinstance(item, str):
            out.append((item, 50.0))
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            weight = item.get("weight", 50)
            out.append((item["name"], float(weight) if isinstance(weight, int | float) else 50.0))
    return out
