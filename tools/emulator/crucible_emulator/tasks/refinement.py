"""``problem_spec_refinement`` and ``world_model_refinement``, and the extraction the Architect shares."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from crucible_common.wording import counted
from crucible_emulator.conversation import JsonObject
from crucible_emulator.tasks.context import TaskContext
from crucible_emulator.text import quote_terms, sentences, snake, summary, word_set, words

_HARD_RE = re.compile(
    r"\b(must|mustn't|cannot|can't|can not|never|required|requires|require|shall|mandatory|not allowed|"
    r"forbidden|has to|have to|hard limit|hard constraint|non-negotiable|no matter what|at all costs)\b",
    re.IGNORECASE,
)
_SOFT_WEIGHTS = (
    (re.compile(r"\bshould\b", re.IGNORECASE), 70),
    (re.compile(r"\b(prefer|prefers|preferably|preferred)\b", re.IGNORECASE), 60),
    (re.compile(r"\b(ideally|if possible|nice to have|would be nice|try to)\b", re.IGNORECASE), 50),
    # A limit stated as an instruction ("keep the budget under 2 million") is meant as a "should".
    (
        re.compile(
            r"\b(keep|keeps|stay|stays|remain|remains)\b[^.!?;]{0,40}?\b(under|below|within|above|over)\b|"
            r"\b(no more than|not more than|at most|not exceed|no less than|at least)\b|"
            # ... or as a measure and its bound ("budget under 20 million euros", "noise below 60 dB").
            r"\b(budget|cost|costs|price|spend|spending|emissions|time|duration|delay|noise|weight|risk)\b"
            r"[^.!?;]{0,20}?\b(under|below|within|less than|lower than)\b",
            re.IGNORECASE,
        ),
        70,
    ),
)
_GOAL_RE = re.compile(
    r"\b(want|wants|need|needs|maximi[sz]e|minimi[sz]e|goal|goals|aim|aims|objective|optimi[sz]e|would like|"
    r"achieve|increase|reduce|improve)\b",
    re.IGNORECASE,
)
_MODAL_WORDS = word_set(
    """
    must mustn't cannot can't never required requires require shall mandatory allowed forbidden has have
    should prefer prefers preferably preferred ideally possible nice try
    """
)
RESOLUTIONS = ("coarse", "medium", "fine")
MODES = ("full_search", "eval_only", "seeded")
_RESOLUTION_RES = (
    ("fine", re.compile(r"\b(fine|fine-grained|detailed|high[- ]resolution|precise|granular)\b", re.I)),
    ("coarse", re.compile(r"\b(coarse|rough|roughly|quick|high[- ]level|ballpark)\b", re.I)),
)
MODE_RES = (
    ("eval_only", re.compile(r"\b(eval(uate|uation)?[ _-]only|only evaluate|just evaluate)\b", re.I)),
    ("seeded", re.compile(r"\b(seed|seeded|seeds)\b", re.I)),
    ("full_search", re.compile(r"\b(full[ _-]search|explore|search widely)\b", re.I)),
)


@dataclass(frozen=True)
class SpecFindings:
    constraints: list[JsonObject]
    goals: list[JsonObject]
    resolution: str | None
    mode: str | None


def find_spec(text: str) -> SpecFindings:
    """Constraints, goals, resolution and mode stated in ``text``."""
    constraints: list[JsonObject] = []
    goals: list[JsonObject] = []
    names: set[str] = set()
    for sentence in sentences(text):
        weight = _constraint_weight(sentence)
        if weight == 100 or (weight is not None and not _GOAL_RE.search(sentence)):
            name = _unique(_constraint_name(sentence), names)
            constraints.append({"name": name, "description": sentence, "weight": weight})
        elif _GOAL_RE.search(sentence):
            goals.append({"description": sentence})
    resolution = next((value for value, pattern in _RESOLUTION_RES if pattern.search(text)), None)
    mode = next((value for value, pattern in MODE_RES if pattern.search(text)), None)
    return SpecFindings(constraints, goals, resolution, mode)


def _constraint_weight(sentence: str) -> int | None:
    if _HARD_RE.search(sentence):
        return 100
    return next((weight for pattern, weight in _SOFT_WEIGHTS if pattern.search(sentence)), None)


def _constraint_name(sentence: str) -> str:
    content = [w for w in words(sentence) if w not in _MODAL_WORDS]
    return snake(" ".join(content), 4)


def _unique(name: str, taken: set[str]) -> str:
    candidate, i = name, 2
    while candidate.casefold() in taken:
        candidate, i = f"{name}_{i}", i + 1
    taken.add(candidate.casefold())
    return candidate


def problem_spec_refinement(ctx: TaskContext) -> JsonObject:
    found = find_spec(ctx.task_text)
    existing = ctx.json_with("problem_spec", dict) or {}
    constraints = _merge_named(existing.get("constraints"), found.constraints, key="name")
    goals = _merge_named(existing.get("goals"), found.goals, key="description")
    derived_goal = not goals
    if derived_goal:
        goals = [{"description": f"Deliver: {summary(ctx.task_text, 160) or 'the outcome the user described'}"}]
    resolution = found.resolution or one_of(existing.get("resolution"), RESOLUTIONS) or "medium"
    mode = found.mode or one_of(existing.get("mode"), MODES) or "full_search"
    hard = sum(1 for c in found.constraints if c["weight"] == 100)
    soft = len(found.constraints) - hard
    rationale = ctx.pick(
        "From the message: {hard_constraints} (must/cannot/never/required, weight 100), {preferences} "
        "(should/prefer, weight 50-80) and {goals}{derived}. Resolution {res}, mode {mode}.",
        "I read {hard_requirements} and {soft_preferences}, and {goals}{derived}; "
        "resolution is {res} and the run mode {mode}.",
    ).format(
        hard_constraints=counted(hard, "hard constraint"),
        hard_requirements=counted(hard, "hard requirement"),
        preferences=counted(soft, "preference"),
        soft_preferences=counted(soft, "soft preference"),
        goals=counted(len(found.goals), "goal"),
        derived=" (one goal derived from the description, since none was stated)" if derived_goal else "",
        res=resolution,
        mode=mode,
    )
    return {
        "constraints": constraints,
        "goals": goals,
        "resolution": resolution,
        "mode": mode,
        "rationale": rationale,
    }


def one_of(value: Any, options: tuple[str, ...]) -> str | None:
    """``value`` when it is one of ``options``, else None."""
    return value if value in options else None


def _merge_named(existing: Any, found: list[JsonObject], *, key: str) -> list[JsonObject]:
    merged: dict[str, JsonObject] = {}
    for item in existing if isinstance(existing, list) else []:
        if isinstance(item, dict) and isinstance(item.get(key), str):
            merged[item[key].casefold()] = item
    for item in found:
        merged[str(item[key]).casefold()] = item
    return list(merged.values())


WORLD_SECTIONS = ("actors", "mechanisms", "resources", "constraints", "assumptions", "simplifications")

_ACTOR_WORDS = word_set(
    """
    user users customer customers client clients operator operators driver drivers agent agents manager
    managers staff employee employees team teams supplier suppliers vendor vendors patient patients doctor
    doctors nurse nurses student students teacher teachers player players admin admins administrator
    administrators developer developers engineer engineers stakeholder stakeholders government regulator
    regulators competitor competitors partner partners buyer buyers seller sellers rider riders passenger
    passengers visitor visitors member members owner owners farmer farmers worker workers volunteer
    volunteers citizen citizens resident residents household households shop shops store stores hospital
    hospitals school schools company companies
    """
)
# Resources a system has or spends; not units ("4 hours" bounds a wait, it is not a resource).
_RESOURCE_WORDS = word_set(
    """
    budget money funds funding cash cost costs time servers server cpu cpus gpu gpus memory
    storage bandwidth capacity inventory stock fuel energy electricity water land vehicle vehicles truck
    trucks machine machines equipment material materials beds rooms seats data compute warehouse warehouses
    space
    """
)
_MECHANISM_RE = re.compile(
    r"\b(when|whenever|if|causes?|leads? to|results? in|triggers?|depends? on|affects?|increases?|decreases?|"
    r"flows?|feeds?|drives?|process(es)?|queues?|schedul\w*|allocat\w*|routes?|orders?|pays?|buys?|sells?|"
    r"delivers?|produces?|consumes?)\b",
    re.IGNORECASE,
)
_ASSUMPTION_RE = re.compile(
    r"\b(assume|assumes|assuming|assumption|expect|expected|likely|typically|usually|probably|suppose)\b", re.I
)
_SIMPLIFICATION_RE = re.compile(
    r"\b(ignore|ignoring|neglect|approximate|approximately|simplif\w*|treat(ed)? as|constant|fixed|"
    r"deterministic|steady)\b",
    re.IGNORECASE,
)


def find_world(text: str) -> dict[str, list[JsonObject]]:
    """World-model items the text states explicitly, by section."""
    found: dict[str, list[JsonObject]] = {section: [] for section in WORLD_SECTIONS}
    seen: dict[str, set[str]] = {section: set() for section in WORLD_SECTIONS}

    def add(section: str, name: str, description: str) -> None:
        if name.casefold() not in seen[section]:
            seen[section].add(name.casefold())
            found[section].append({"name": name, "description": description})

    for sentence in sentences(text):
        tokens = words(sentence)
        for token in tokens:
            if token in _ACTOR_WORDS:
                add("actors", _singular(token), sentence)
            if token in _RESOURCE_WORDS:
                add("resources", _singular(token), sentence)
        if _constraint_weight(sentence) is not None:
            add("constraints", _constraint_name(sentence), sentence)
        elif _ASSUMPTION_RE.search(sentence):
            add("assumptions", snake(sentence, 4), sentence)
        elif _SIMPLIFICATION_RE.search(sentence):
            add("simplifications", snake(sentence, 4), sentence)
        elif _MECHANISM_RE.search(sentence):
            add("mechanisms", snake(sentence, 3), sentence)
    return found


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3 and word not in ("data", "staff"):
        return word[:-1]
    return word


def world_model_refinement(ctx: TaskContext) -> JsonObject:
    found = find_world(ctx.task_text)
    existing = ctx.json_with("world_model", dict) or {}
    base = existing.get("model_data", existing) if isinstance(existing, dict) else {}
    subject = summary(ctx.task_text, 100) or "the described system"
    terms = ctx.terms or ["system"]
    defaults = {
        "actors": {"name": "user", "description": f"The person or organisation that benefits from: {subject}."},
        "mechanisms": {"name": f"{terms[0]}_process", "description": f"How {terms[0]} changes over time in {subject}."},
        "resources": {"name": "time", "description": f"The time available to act on {quote_terms(terms, 2)}."},
        "constraints": {"name": "scope", "description": f"Only what is needed for {subject} is modelled."},
        "assumptions": {
            "name": "stable_environment",
            "description": f"Conditions around {quote_terms(terms, 2)} stay as described during the horizon.",
        },
        "simplifications": {
            "name": "aggregate_behaviour",
            "description": f"Individual differences are averaged; effects outside {terms[0]} are ignored.",
        },
    }
    model_data: dict[str, list[JsonObject]] = {}
    stated = 0
    for section in WORLD_SECTIONS:
        items = _merge_named(base.get(section) if isinstance(base, dict) else None, found[section], key="name")
        stated += len(found[section])
        model_data[section] = items or [defaults[section]]
    rationale = ctx.pick(
        "{stated} taken straight from the message ({counts}); empty sections got one conservative default "
        "so the model is complete.",
        "I extracted {stated} from your description ({counts}) and filled each remaining section with a "
        "single explicit default.",
    ).format(stated=counted(stated, "item"), counts=", ".join(f"{s}: {len(found[s])}" for s in WORLD_SECTIONS))
    return {"model_data": model_data, "rationale": rationale}
