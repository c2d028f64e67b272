"""The well-known structured tasks of the offline model: the contract callers follow.

A structured request names its task by its schema name: the OpenAI ``response_format.json_schema.name``,
or the forced tool's name (Anthropic ``tool_choice {"type": "tool", "name": X}``, OpenAI
``tool_choice {"type": "function", "function": {"name": X}}``). Names are compared in snake case, so
``PlanningQuestions`` and ``planning_questions`` are the same task. Each task builds an answer from the
prompt, which is then fitted to the schema actually sent (missing required parts generated, extra parts
dropped, bounds applied) and validated; an unknown name gets a generic schema-valid instance.

"The task text" below is the latest user message with any embedded JSON object removed. "A JSON object
with key K" is the first JSON object having K, at any depth, found in the messages (latest first) or
the system text. ``key: N`` directives are lines such as ``max_questions: 5``.

``planning_questions``
    Prompt: the task to clarify in the last user message; optional ``max_questions: N``.
    Output: ``{"questions": [{"question", "rationale"}]}`` about output format, inputs and edge cases,
    success criteria, environment, scope, errors, layout, usage, performance, documentation; each
    question quotes the task. Count: ``max_questions`` clamped to the schema's ``minItems``/``maxItems``,
    else ``maxItems``, else 3.
``judge_decision``
    Prompt: a JSON object ``{"candidates": [{"name", "output"}, ...]}`` (``output`` text or JSON), the
    task in the surrounding text or a ``"task"`` key. Output: ``{"choice": <candidate name>, "rationale"}``;
    the choice stays within an ``enum`` on ``choice`` if the schema has one. Highest score wins: coverage
    of the task's key terms, number of distinct questions, a length within bounds; ties go to the first.
``architect_reply``
    Prompt: the user's message, and a JSON object with keys ``problem_spec`` and ``world_model`` (either
    may be null). Output: ``{"reply", "intent": "refine"|"run_request"|"question", "problem_spec_patch",
    "world_model_patch", "recommended_run_config"}``. A wish to run ("run it", "execute", "go ahead",
    "start the pipeline", "let's try it", ...) gives ``run_request`` and ``recommended_run_config =
    {"status": "ready"|"blocked", "blockers": ["missing_problem_spec", "missing_world_model"], "mode",
    "parameters": {"num_candidates", "num_scenarios"}, "estimated_cost_usd", "rationale",
    "expires_in_seconds"}``; the reply says that only the Run button starts a run. Otherwise the patches
    are what the message states (shapes of the two refinement tasks; ``world_model_patch`` is
    ``{"model_data": {...}}``) or null, and the intent is ``refine``, or ``question`` when nothing
    changes and the message asks something.
``problem_spec_refinement``
    Prompt: the user's description; optionally a ``problem_spec`` JSON object to merge into. Output:
    ``{"constraints": [{"name", "description", "weight"}], "goals": [{"description"}], "resolution":
    "coarse"|"medium"|"fine", "mode": "full_search"|"eval_only"|"seeded", "rationale"}``. Sentences with
    must / cannot / never / required are hard constraints (weight 100); should 70, prefer 60,
    ideally / if possible 50; want / maximize / minimize / goal / aim give goals; at least one goal.
``world_model_refinement``
    Prompt: the user's description; optionally a ``world_model`` JSON object to merge into. Output:
    ``{"model_data": {"actors", "mechanisms", "resources", "constraints", "assumptions",
    "simplifications"}, "rationale"}``, every item ``{"name", "description"}``, every section non-empty.
``design_candidates``
    Prompt: the problem (text and/or a ``problem_spec`` JSON object); optional ``num_candidates: N``.
    Output: ``{"candidates": [{"title", "description", "approach", "assumptions": [str]}]}``, distinct.
``scenarios``
    Prompt: as for candidates; optional ``num_scenarios: N``. Output: ``{"scenarios": [{"title",
    "description", "conditions": [str], "severity": "low"|"medium"|"high"}]}``.
``evaluation``
    Prompt: JSON objects with ``"candidate"`` and ``"scenario"`` (text or objects with title /
    description), and a ``"constraints"`` list of ``{"name", "weight"}`` (or names). Output: ``{"P":
    {"overall": 0..1, "components": {...}}, "R": {"overall": >0, "components": {...}},
    "constraint_satisfaction": [{"constraint", "satisfied", "score", "note"}], "explanation"}``. Scores
    are a function of the candidate and scenario text; about one candidate in nine violates a given
    hard constraint (weight >= 100) in every scenario, and soft constraints fail now and then.
``sprint_plan``
    Prompt: the coding task (see ``coding``). Output: ``{"summary", "steps": [str], "files": [str],
    "tests": [str], "plan_markdown"}``.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from crucible_agent.emulator import coding
from crucible_agent.emulator.conversation import JsonObject, ModelRequest
from crucible_agent.emulator.schemas import SchemaFiller
from crucible_agent.emulator.text import (
    as_text,
    find_json_object_in,
    int_directive,
    iter_json_objects,
    key_terms,
    quote_terms,
    sentences,
    snake,
    summary,
    task_subject,
    unit,
    without_json,
    word_set,
    words,
)

MAX_ITEMS = 50
_DIRECTIVE_LINE_RE = re.compile(r"^[ \t]*[A-Za-z_]+[ \t]*[:=][ \t]*\d+[ \t]*$", re.MULTILINE)


@dataclass
class TaskContext:
    request: ModelRequest
    schema: JsonObject
    filler: SchemaFiller
    rng: random.Random
    # 0 for OpenAI, 1 for Anthropic: picks the phrasing so two providers never answer alike.
    style: int

    @cached_property
    def task_text(self) -> str:
        text = _DIRECTIVE_LINE_RE.sub("", without_json(self.request.last_user_text())).strip()
        return text or _DIRECTIVE_LINE_RE.sub("", without_json(self.request.system)).strip()

    @cached_property
    def all_text(self) -> str:
        return self.request.all_text()

    @cached_property
    def texts(self) -> list[str]:
        """Where JSON context objects are looked for: latest message first, the system text last."""
        return [m.text for m in reversed(self.request.messages) if m.text] + [self.request.system]

    @cached_property
    def terms(self) -> list[str]:
        return key_terms(self.task_text, 8) or key_terms(self.all_text, 8)

    @cached_property
    def json_objects(self) -> list[JsonObject]:
        """The JSON objects embedded in the prompt, in ``texts`` order, each parsed once."""
        return [value for text in self.texts for _, _, value in iter_json_objects(text)]

    def find(self, predicate: Callable[[JsonObject], bool]) -> JsonObject | None:
        return find_json_object_in(self.json_objects, predicate)

    def json_with(self, key: str, kind: type | tuple[type, ...] = object) -> Any:
        found = self.find(lambda o: key in o and isinstance(o[key], kind))
        return None if found is None else found[key]

    def pick(self, *variants: str) -> str:
        return variants[self.style % len(variants)]

    def count(self, prop: str, directive: str, default: int = 3) -> int:
        low, high = self.filler.array_bounds(self.filler.property_schema(self.schema, prop))
        wanted = int_directive(self.all_text, directive)
        if wanted is None:
            wanted = high if isinstance(high, int) else max(default, low or 0)
        if isinstance(high, int):
            wanted = min(wanted, high)
        if isinstance(low, int):
            wanted = max(wanted, low)
        return max(0, min(wanted, MAX_ITEMS))


TaskFn = Callable[[TaskContext], Any]


# ---------------------------------------------------------------------------------------------
# planning_questions


_QUESTION_BANK: tuple[tuple[str, tuple[str, str], str], ...] = (
    (
        "output",
        (
            "What exact output should {subject} produce, and in which format: text on stdout, a return value "
            "or a file?",
            "When {subject} is done, what precisely should a user see: the exact text, its format and where it goes?",
        ),
        "The output format decides what the tests for {terms} check.",
    ),
    (
        "inputs",
        (
            "Which inputs must {subject} accept, and how should it treat edge cases such as empty, invalid or very "
            "large values of {term0}?",
            "Which edge cases around {term0} (empty, malformed, extreme values) must be handled, and what should "
            "happen for each?",
        ),
        "Edge cases around {term0} are where a simple solution usually breaks.",
    ),
    (
        "success",
        (
            "How will we verify that {subject} is complete: which tests or acceptance criteria must pass?",
            "What are the acceptance criteria for {subject}, i.e. which concrete checks must succeed before it "
            "counts as done?",
        ),
        "Explicit success criteria tell the coding phase when to stop.",
    ),
    (
        "environment",
        (
            "Which language version, libraries and runtime environment may {subject} use, and are new dependencies "
            "allowed?",
            "What constraints apply to the environment for {terms}: Python version, allowed packages, operating "
            "system?",
        ),
        "Environment constraints rule out some designs before any code is written.",
    ),
    (
        "scope",
        (
            "What is out of scope for {subject}: should the work cover only {terms}, or related features too?",
            "Where does the scope of {subject} end, and which features next to {term1} should be left out?",
        ),
        "A clear boundary keeps the sprint small and testable.",
    ),
    (
        "errors",
        (
            "How should {subject} report errors, for example when {term1} cannot be processed: an exception, an "
            "exit code or a message?",
            "If {term1} is invalid, should {subject} fail loudly (exception, non-zero exit) or recover quietly?",
        ),
        "Error behaviour is part of the contract and needs its own tests.",
    ),
    (
        "layout",
        (
            "Where should the code for {subject} live: which module and file names, and is there a layout to follow?",
            "Which file and function names are expected for {terms}, so other code and tests can find them?",
        ),
        "Names and locations must match what the tests import.",
    ),
    (
        "usage",
        (
            "Who will use {term0}, and how: from the command line, as an importable function, or from another service?",
            "How is {subject} invoked in practice: a script, a library call, or part of a larger program?",
        ),
        "The way it is called shapes the interface.",
    ),
    (
        "performance",
        (
            "Are there limits on time, memory or input size for {term2} that {subject} must respect?",
            "Does {subject} have performance targets, such as the largest {term2} it must handle quickly?",
        ),
        "Performance limits change which algorithm is acceptable.",
    ),
    (
        "docs",
        (
            "What documentation or usage examples should come with {subject}?",
            "Should {subject} ship with docstrings, a README section or examples showing {term0} in use?",
        ),
        "Documentation expectations are easy to forget and cheap to settle early.",
    ),
)


def planning_questions(ctx: TaskContext) -> JsonObject:
    count = ctx.count("questions", "max_questions")
    subject = task_subject(ctx.task_text)
    terms = ctx.terms or ["the task"]
    fill = {
        "subject": subject,
        "terms": quote_terms(terms),
        "term0": f"'{terms[0]}'",
        "term1": f"'{terms[1 % len(terms)]}'",
        "term2": f"'{terms[2 % len(terms)]}'",
    }
    core, rest = list(_QUESTION_BANK[:5]), list(_QUESTION_BANK[5:])
    ctx.rng.shuffle(core)
    ctx.rng.shuffle(rest)
    questions: list[JsonObject] = []
    for _, phrasings, rationale in core + rest:
        if len(questions) >= count:
            break
        questions.append({"question": ctx.pick(*phrasings).format(**fill), "rationale": rationale.format(**fill)})
    for i, term in enumerate(_cycle(terms, count - len(questions))):
        questions.append(
            {
                "question": ctx.pick(
                    "What exactly should '{t}' mean in {s}, and is there an example of the expected behaviour?",
                    "Can you give a concrete example of '{t}' in {s}, with the input and the expected result?",
                ).format(t=term, s=subject)
                + ("" if i < len(terms) else f" (case {i + 1})"),
                "rationale": f"'{term}' is a key term of the task and its meaning should not be guessed.",
            }
        )
    return {"questions": questions}


def _cycle(items: list[str], count: int) -> list[str]:
    return [items[i % len(items)] for i in range(max(count, 0))] if items else []


# ---------------------------------------------------------------------------------------------
# judge_decision


@dataclass(frozen=True)
class _Scored:
    name: str
    coverage: int
    distinct: int
    length: int
    score: float


def judge_decision(ctx: TaskContext) -> JsonObject:
    data = ctx.find(lambda o: isinstance(o.get("candidates"), list)) or {}
    raw = [c for c in data.get("candidates", []) if isinstance(c, dict | str)]
    candidates = [_candidate(c, i) for i, c in enumerate(raw)]
    enum = ctx.filler.property_schema(ctx.schema, "choice").get("enum")
    if isinstance(enum, list) and enum:
        allowed = [c for c in candidates if c[0] in enum]
        candidates = allowed or [(str(e), "") for e in enum]
    task = as_text(data["task"]) if "task" in data else ctx.task_text
    terms = key_terms(task, 10)
    if not candidates:
        return {"choice": "none", "rationale": "No candidates were given in the prompt, so there is nothing to choose."}
    scored = [_score(name, output, terms) for name, output in candidates]
    best = max(scored, key=lambda s: s.score)  # max keeps the first of equals
    others = [s for s in scored if s is not best]
    comparison = "; ".join(
        f"{s.name}: {s.coverage}/{len(terms)} key terms, {s.distinct} distinct questions" for s in others
    )
    rationale = ctx.pick(
        "{name} is chosen: it covers {cov}/{n} of the task's key terms ({terms}) with {d} distinct questions and "
        "a length of {length} characters, which is within bounds.{vs}",
        "I pick {name}. Against the task's key terms ({terms}) it scores {cov} of {n}, asks {d} distinct "
        "questions and stays at a reasonable length ({length} characters).{vs}",
    ).format(
        name=best.name,
        cov=best.coverage,
        n=len(terms),
        terms=quote_terms(terms, 4),
        d=best.distinct,
        length=best.length,
        vs=f" Others: {comparison}." if comparison else "",
    )
    return {"choice": best.name, "rationale": rationale}


def _candidate(raw: JsonObject | str, index: int) -> tuple[str, str]:
    if isinstance(raw, str):
        return f"candidate_{index + 1}", raw
    name = raw.get("name") or raw.get("id") or raw.get("provider") or f"candidate_{index + 1}"
    output = raw.get("output", raw.get("content", raw.get("questions", "")))
    return str(name), as_text(output)


def _score(name: str, output: str, terms: list[str]) -> _Scored:
    present = set(words(output))
    coverage = sum(1 for t in terms if t in present)
    distinct = len(_distinct_questions(output))
    length = len(output)
    length_score = 1.0 if 40 <= length <= 6000 else 0.0
    score = 2.0 * coverage / max(len(terms), 1) + 0.3 * min(distinct, 10) + length_score
    return _Scored(name, coverage, distinct, length, score)


def _distinct_questions(output: str) -> set[str]:
    try:
        parsed = json.loads(output)
    except ValueError:
        parsed = None
    items: list[Any] = []
    if isinstance(parsed, dict) and isinstance(parsed.get("questions"), list):
        items = parsed["questions"]
    elif isinstance(parsed, list):
        items = parsed
    texts = [as_text(i.get("question", i)) if isinstance(i, dict) else as_text(i) for i in items]
    if not texts:
        texts = [s for s in sentences(output) if s.endswith("?")]
    return {" ".join(words(t)) for t in texts if t.strip()}


# ---------------------------------------------------------------------------------------------
# problem_spec_refinement and world_model_refinement: extraction shared with architect_reply


_HARD_RE = re.compile(
    r"\b(must|mustn't|cannot|can't|can not|never|required|requires|require|shall|mandatory|not allowed|"
    r"forbidden|has to|have to)\b",
    re.IGNORECASE,
)
_SOFT_WEIGHTS = (
    (re.compile(r"\bshould\b", re.IGNORECASE), 70),
    (re.compile(r"\b(prefer|prefers|preferably|preferred)\b", re.IGNORECASE), 60),
    (re.compile(r"\b(ideally|if possible|nice to have|would be nice|try to)\b", re.IGNORECASE), 50),
)
_GOAL_RE = re.compile(
    r"\b(want|wants|maximi[sz]e|minimi[sz]e|goal|goals|aim|aims|objective|optimi[sz]e|would like|"
    r"achieve|increase|reduce|improve)\b",
    re.IGNORECASE,
)
_MODAL_WORDS = word_set(
    """
    must mustn't cannot can't never required requires require shall mandatory allowed forbidden has have
    should prefer prefers preferably preferred ideally possible nice try
    """
)
_RESOLUTIONS = ("coarse", "medium", "fine")
_MODES = ("full_search", "eval_only", "seeded")
_RESOLUTION_RES = (
    ("fine", re.compile(r"\b(fine|fine-grained|detailed|high[- ]resolution|precise|granular)\b", re.I)),
    ("coarse", re.compile(r"\b(coarse|rough|roughly|quick|high[- ]level|ballpark)\b", re.I)),
)
_MODE_RES = (
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
    mode = next((value for value, pattern in _MODE_RES if pattern.search(text)), None)
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
    resolution = found.resolution or _valid(existing.get("resolution"), _RESOLUTIONS) or "medium"
    mode = found.mode or _valid(existing.get("mode"), _MODES) or "full_search"
    hard = sum(1 for c in found.constraints if c["weight"] == 100)
    soft = len(found.constraints) - hard
    rationale = ctx.pick(
        "From the message: {hard} hard constraint(s) (must/cannot/never/required, weight 100), {soft} "
        "preference(s) (should/prefer, weight 50-80) and {goals} goal(s){derived}. Resolution {res}, mode {mode}.",
        "I read {hard} hard requirement(s) and {soft} soft preference(s), and {goals} goal(s){derived}; "
        "resolution is {res} and the run mode {mode}.",
    ).format(
        hard=hard,
        soft=soft,
        goals=len(found.goals),
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


def _valid(value: Any, options: tuple[str, ...]) -> str | None:
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
_RESOURCE_WORDS = word_set(
    """
    budget money funds funding cash cost costs time hours days weeks servers server cpu cpus gpu gpus memory
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
        "{stated} item(s) come straight from the message ({counts}); empty sections got one conservative default "
        "so the model is complete.",
        "I extracted {stated} item(s) from your description ({counts}) and filled each remaining section with a "
        "single explicit default.",
    ).format(stated=stated, counts=", ".join(f"{s}: {len(found[s])}" for s in WORLD_SECTIONS))
    return {"model_data": model_data, "rationale": rationale}


# ---------------------------------------------------------------------------------------------
# architect_reply


_RUN_PATTERNS = tuple(
    re.compile(p, re.IGNORECASE | re.MULTILINE)
    for p in (
        r"\bgo ahead\b",
        r"\bstart (the |a )?(pipeline|run|search|simulation|evaluation)\b",
        r"\blet'?s (try it|run|go|start|execute|do it|kick)\b",
        r"\bkick (it |this )?off\b",
        r"\b(run|execute|launch) (it|this|that|now|again|the (pipeline|search|evaluation|simulation|model|run|"
        r"experiment)|a run|an? (evaluation|search|experiment))\b",
        r"^\s*(please\s+)?(run|execute|launch)\b",
        r"\b(can|could|would) you (please )?(run|execute|launch|start)\b",
        r"\b(i want|i'd like|i would like|ready|time) to (run|execute|launch|start)\b",
    )
)
_NEGATED_RUN_RE = re.compile(
    r"\b(don'?t|do not|not yet|never|no need to)\b[^.!?]{0,25}\b(run|execute|launch|start)\b", re.I
)
_QUESTION_START_RE = re.compile(r"^\s*(what|how|why|which|who|when|where|can|could|is|are|does|do|should)\b", re.I)
_COUNT_RES = {
    "num_candidates": re.compile(r"\b(\d{1,3})\s+(?:design\s+)?candidates?\b", re.I),
    "num_scenarios": re.compile(r"\b(\d{1,3})\s+scenarios?\b", re.I),
}


def wants_to_run(text: str) -> bool:
    """Whether the user's message asks to start a run."""
    if _NEGATED_RUN_RE.search(text):
        return False
    return any(p.search(text) for p in _RUN_PATTERNS)


def architect_reply(ctx: TaskContext) -> JsonObject:
    context = ctx.find(lambda o: "problem_spec" in o or "world_model" in o) or {}
    problem_spec = context.get("problem_spec")
    world_model = context.get("world_model")
    text = ctx.task_text
    if wants_to_run(text):
        # Whatever else the message states still refines the spec; the wish to run itself does not.
        rest = " ".join(s for s in sentences(text) if not wants_to_run(s))
        spec, world = find_spec(rest), find_world(rest)
        config = recommend_run(text, problem_spec, world_model)
        return {
            "reply": _run_reply(ctx, config),
            "intent": "run_request",
            "problem_spec_patch": _spec_patch(spec, problem_spec),
            "world_model_patch": _world_patch(world),
            "recommended_run_config": config,
        }
    spec, world = find_spec(text), find_world(text)
    spec_patch = _spec_patch(spec, problem_spec)
    world_patch = _world_patch(world)
    world_sections = {section: items for section, items in world.items() if items}
    asks = "?" in text or bool(_QUESTION_START_RE.search(text))
    if spec_patch is None and world_patch is None:
        intent = "question" if asks else "refine"
        reply = _question_reply(ctx, problem_spec, world_model) if asks else _nothing_found_reply(ctx)
    else:
        intent = "refine"
        reply = _refine_reply(ctx, spec, world_sections)
    return {
        "reply": reply,
        "intent": intent,
        "problem_spec_patch": spec_patch,
        "world_model_patch": world_patch,
        "recommended_run_config": None,
    }


def _spec_patch(spec: SpecFindings, problem_spec: Any) -> JsonObject | None:
    if not (spec.constraints or spec.goals or spec.resolution or spec.mode):
        return None
    current = problem_spec if isinstance(problem_spec, dict) else {}
    # Resolution and mode are always present (unchanged unless the message sets them), so a strict schema
    # that requires them never gets an invented value.
    return {
        "constraints": spec.constraints,
        "goals": spec.goals,
        "resolution": spec.resolution or _valid(current.get("resolution"), _RESOLUTIONS) or "medium",
        "mode": spec.mode or _valid(current.get("mode"), _MODES) or "full_search",
    }


def _world_patch(world: dict[str, list[JsonObject]]) -> JsonObject | None:
    # Every section is present, empty when unchanged, for the same reason.
    return {"model_data": world} if any(world.values()) else None


def recommend_run(text: str, problem_spec: Any, world_model: Any) -> JsonObject:
    blockers: list[str] = []
    if not problem_spec:
        blockers.append("missing_problem_spec")
    if not world_model:
        blockers.append("missing_world_model")
    spec = problem_spec if isinstance(problem_spec, dict) else {}
    mode = next((value for value, pattern in _MODE_RES if pattern.search(text)), None)
    mode = mode or _valid(spec.get("mode"), _MODES) or "full_search"
    parameters = {}
    for key, pattern in _COUNT_RES.items():
        match = pattern.search(text)
        parameters[key] = max(1, min(int(match.group(1)), MAX_ITEMS)) if match else 3
    candidates, scenarios = parameters["num_candidates"], parameters["num_scenarios"]
    evaluations = candidates * scenarios
    cost = round(0.0025 * evaluations + 0.004 * (candidates + scenarios), 4)
    constraints = spec.get("constraints") if isinstance(spec.get("constraints"), list) else []
    rationale = (
        f"Mode {mode}: {candidates} candidates x {scenarios} scenarios = {evaluations} evaluations"
        f"{f', checked against {len(constraints)} constraint(s)' if constraints else ''}; the estimate assumes "
        "about $0.0025 per evaluation plus the design and scenario calls."
    )
    if blockers:
        rationale += " Blocked until " + " and ".join(b.replace("_", " ").replace("missing ", "a ") for b in blockers)
        rationale += " exists."
    return {
        "status": "blocked" if blockers else "ready",
        "blockers": blockers,
        "mode": mode,
        "parameters": parameters,
        "estimated_cost_usd": cost,
        "rationale": rationale,
        "expires_in_seconds": 900,
    }


_BLOCKER_HELP = {
    "missing_problem_spec": "there is no problem specification yet: describe what must hold (constraints, e.g. "
    "'the budget must stay under $10k') and what you want to achieve (goals), and I will draft it",
    "missing_world_model": "there is no world model yet: describe the actors, mechanisms and resources involved, "
    "and I will draft it",
}


def _run_reply(ctx: TaskContext, config: JsonObject) -> str:
    params = config["parameters"]
    plan = (
        f"mode {config['mode']} with {params['num_candidates']} candidates and {params['num_scenarios']} scenarios "
        f"(estimated ${config['estimated_cost_usd']:.4f})"
    )
    opening = ctx.pick(
        "I can't start runs myself; only the Run button starts a run.",
        "To be clear: I cannot start a run. Only the Run button does that.",
    )
    if config["status"] == "blocked":
        problems = "; ".join(_BLOCKER_HELP[b] for b in config["blockers"])
        return f"{opening} A run is blocked right now because {problems}. Once that is fixed I recommend {plan}."
    return f"{opening} I have prepared a recommended configuration: {plan}. Review it and press Run to start it."


def _refine_reply(ctx: TaskContext, spec: SpecFindings, world: dict[str, list[JsonObject]]) -> str:
    parts: list[str] = []
    if spec.constraints:
        described = ", ".join(f"{c['name']} ({_weight_label(c['weight'])})" for c in spec.constraints)
        parts.append(f"constraints: {described}")
    if spec.goals:
        parts.append("goals: " + "; ".join(g["description"] for g in spec.goals))
    if spec.resolution:
        parts.append(f"resolution {spec.resolution}")
    if spec.mode:
        parts.append(f"mode {spec.mode}")
    if world:
        parts.append(
            "world model: "
            + ", ".join(
                f"{len(items)} {section} ({', '.join(i['name'] for i in items)})" for section, items in world.items()
            )
        )
    lead = ctx.pick("I propose these changes. ", "Here is what I took from your message. ")
    return lead + "; ".join(parts) + ". Tell me if anything is off, or add more detail."


def _weight_label(weight: int) -> str:
    return "hard" if weight == 100 else f"weight {weight}"


def _question_reply(ctx: TaskContext, problem_spec: Any, world_model: Any) -> str:
    spec = problem_spec if isinstance(problem_spec, dict) else {}
    constraints = [c.get("name") for c in spec.get("constraints", []) if isinstance(c, dict)]
    goals = [g.get("description") for g in spec.get("goals", []) if isinstance(g, dict)]
    if spec:
        spec_text = (
            f"The problem specification has {len(constraints)} constraint(s)"
            f"{' (' + ', '.join(map(str, constraints[:5])) + ')' if constraints else ''} and {len(goals)} goal(s)."
        )
    else:
        spec_text = "There is no problem specification yet."
    model = world_model.get("model_data", world_model) if isinstance(world_model, dict) else {}
    if model:
        sizes = ", ".join(f"{len(v)} {k}" for k, v in model.items() if isinstance(v, list))
        world_text = f"The world model has {sizes or 'no sections'}."
    else:
        world_text = "There is no world model yet."
    about = quote_terms(ctx.terms, 3)
    return ctx.pick(
        f"About {about}: {spec_text} {world_text} Tell me constraints (must/should) or goals to refine them.",
        f"Regarding {about}. {spec_text} {world_text} You can refine either by describing requirements or goals.",
    )


def _nothing_found_reply(ctx: TaskContext) -> str:
    return ctx.pick(
        "I did not find constraints, goals or world-model details in that message about {t}. Try phrasing a "
        "requirement with must/should, a goal with want/maximize/minimize, or name the actors and resources.",
        "Nothing in that message about {t} changes the specification yet. State requirements (must, should), "
        "goals (want, minimize, maximize) or who and what is involved.",
    ).format(t=quote_terms(ctx.terms, 3))


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
    ("Decentralised", "Let each {t2} decide locally under shared rules instead of one central planner."),
    ("Conservative robust", "Design for the worst plausible case of {t0} first and accept a higher cost."),
    ("Cost minimal", "Meet the hard constraints with the fewest resources and nothing more."),
    ("Hybrid staged", "Combine a conservative core for {t0} with an adaptive layer switched on in stages."),
    ("Pooled partnership", "Share {t1} with partners so resources are pooled and idle time drops."),
)

_SCENARIO_ARCHETYPES = (
    ("Baseline operations", "low", "{t0} runs under normal conditions for {d} days."),
    ("Demand surge", "high", "Demand for {t0} rises {p}% above normal for {d} days."),
    ("Resource shortage", "high", "Available {t1} drops by {p}% for {d} days."),
    ("Partial failure", "medium", "One component handling {t0} fails and recovers after {d} days."),
    ("Budget cut", "medium", "The budget for {t1} is reduced by {p}%."),
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
    source = " ".join([ctx.task_text, *goals]) if goals else ctx.task_text
    terms = key_terms(source, 8) or ctx.terms or ["system", "resources", "operations"]
    while len(terms) < 3:
        terms.append(("system", "resources", "operations")[len(terms)])
    return terms, goals, hard


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
        focus = terms[i % len(terms)]
        suffix = f" (variant {i // len(archetypes) + 1})" if i >= len(archetypes) else ""
        fill = {"t0": terms[0], "t1": terms[1], "t2": terms[2]}
        candidates.append(
            {
                "title": f"{title} for {focus}{suffix}",
                "description": ctx.pick(
                    "{title} design centred on {focus}: it targets '{goal}'{respecting}.",
                    "A {lower} approach, focused on {focus}, aimed at '{goal}'{respecting}.",
                ).format(title=title, lower=title.lower(), focus=focus, goal=goal, respecting=respecting),
                "approach": approach.format(**fill),
                "assumptions": [
                    f"{focus.capitalize()} behaves as described in the problem statement.",
                    f"The effect of the change on {terms[(i + 1) % len(terms)]} can be measured within one cycle.",
                ],
            }
        )
    return {"candidates": candidates}


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
        fill = {"t0": terms[0], "t1": terms[1], "t2": terms[2], "p": percent, "d": days}
        stated = _upper_first(condition.format(**fill))
        suffix = f" (variant {i // len(archetypes) + 1})" if i >= len(archetypes) else ""
        out.append(
            {
                "title": f"{title}: {terms[i % len(terms)]}{suffix}",
                "description": ctx.pick(
                    "Stress test of how designs for {t0} cope when: {c}",
                    "What happens to {t0} if {c_lower}",
                ).format(t0=terms[0], c=stated, c_lower=_lower_first(stated)),
                "conditions": [
                    stated,
                    f"All other conditions around {terms[(i + 1) % len(terms)]} stay at their baseline.",
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
        # Mostly the candidate and scenario; a little of the provider, as two real models would differ.
        base = unit(name, candidate_text, scenario_text)
        nudge = unit(name, *provider, candidate_text, scenario_text) - 0.5
        return round(min(high, max(low, low + (high - low) * (0.9 * base + 0.1 * (nudge + 0.5)))), 3)

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
            fails = unit("violates", candidate_text, name) < _HARD_VIOLATION_RATE
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


# ---------------------------------------------------------------------------------------------
# sprint_plan


def sprint_plan(ctx: TaskContext) -> JsonObject:
    task = coding.parse_task(coding.task_sources(ctx.request))
    plan = coding.plan_for(task)
    return {
        "summary": plan.summary,
        "steps": list(plan.steps),
        "files": list(plan.files),
        "tests": list(plan.tests),
        "plan_markdown": plan.markdown,
    }


TASKS: dict[str, TaskFn] = {
    "planning_questions": planning_questions,
    "judge_decision": judge_decision,
    "architect_reply": architect_reply,
    "problem_spec_refinement": problem_spec_refinement,
    "world_model_refinement": world_model_refinement,
    "design_candidates": design_candidates,
    "scenarios": scenarios,
    "evaluation": evaluation,
    "sprint_plan": sprint_plan,
}
