"""``architect_reply``: the Architect's answer to a chat message, and the run it recommends."""

from __future__ import annotations

import re
from typing import Any

from crucible_common.wording import counted, pairs
from crucible_emulator.conversation import JsonObject
from crucible_emulator.tasks.context import MAX_ITEMS, TaskContext
from crucible_emulator.tasks.refinement import MODE_RES, MODES, RESOLUTIONS, SpecFindings, find_spec, find_world, one_of
from crucible_emulator.text import quote_terms, sentences

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
# A short reply that only agrees or thanks ("yes, apply those", "looks good"): nothing to change.
_ACKNOWLEDGEMENT_RE = re.compile(
    r"^\W*(yes|yep|yeah|ok|okay|sure|fine|great|perfect|thanks|thank you|good|correct|right|agreed|"
    r"looks good|sounds good|that'?s (right|correct|fine|good)|apply|accept|do it)\b",
    re.IGNORECASE,
)
# The labels around the person's words in a prompt ("User message:", "Project state:").
_LABEL_RE = re.compile(r"^\s*(context|user message|project state)\s*:", re.IGNORECASE | re.MULTILINE)
_QUESTION_START_RE = re.compile(r"^\s*(what|how|why|which|who|when|where|can|could|is|are|does|do|should)\b", re.I)
# A question about what the runs found ("which candidate did best?", "why was one rejected?").
_ABOUT_RUNS_RE = re.compile(r"\b(runs?|results?|candidates?|best|winners?|won|rank\w*|rejected|scores?)\b", re.I)
# The first line of the post-run summary the run service posts to the chat.
_SUMMARY_HEAD_RE = re.compile(r"^\*\*(Run \w+ summary)\*\*")
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
        if asks:
            about_runs = _about_runs(ctx, context.get("runs")) if _ABOUT_RUNS_RE.search(text) else None
            reply = about_runs or _question_reply(ctx, problem_spec, world_model)
        elif _acknowledges(text):
            reply = _acknowledged_reply(ctx, problem_spec, world_model)
        else:
            reply = _nothing_found_reply(ctx)
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
        "resolution": spec.resolution or one_of(current.get("resolution"), RESOLUTIONS) or "medium",
        "mode": spec.mode or one_of(current.get("mode"), MODES) or "full_search",
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
    mode = next((value for value, pattern in MODE_RES if pattern.search(text)), None)
    mode = mode or one_of(spec.get("mode"), MODES) or "full_search"
    parameters = {}
    for key, pattern in _COUNT_RES.items():
        match = pattern.search(text)
        parameters[key] = max(1, min(int(match.group(1)), MAX_ITEMS)) if match else 3
    candidates, scenarios = parameters["num_candidates"], parameters["num_scenarios"]
    evaluations = candidates * scenarios
    cost = round(0.0025 * evaluations + 0.004 * (candidates + scenarios), 4)
    constraints = spec.get("constraints") if isinstance(spec.get("constraints"), list) else []
    checked = f", checked against {counted(len(constraints), 'constraint')}" if constraints else ""
    rationale = f"Mode {mode}: {pairs(candidates, scenarios)} = {counted(evaluations, 'evaluation')}{checked}."
    if blockers:
        missing = " and ".join(b.replace("_", " ").replace("missing ", "a ") for b in blockers)
        rationale += f" Blocked until the project has {missing}."
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
    # As the Architect's prompt asks: the plan and what blocks it, but no price and no word on how
    # to start it; the service adds both from the run service's preflight, which a model cannot know.
    params = config["parameters"]
    plan = (
        f"mode {config['mode']} with {counted(params['num_candidates'], 'candidate')} and "
        f"{counted(params['num_scenarios'], 'scenario')}"
    )
    if config["status"] == "blocked":
        problems = "; ".join(_BLOCKER_HELP[b] for b in config["blockers"])
        return ctx.pick(
            f"I would run {plan}, but not yet: {problems}.",
            f"The run I suggest is {plan}. It cannot go ahead yet because {problems}.",
        )
    return ctx.pick(f"Here is the run I would set up: {plan}.", f"I suggest a run with {plan}.")


def _refine_reply(ctx: TaskContext, spec: SpecFindings, world: dict[str, list[JsonObject]]) -> str:
    # One line per part of the project, as a person would list what they changed.
    parts: list[str] = []
    if spec.constraints:
        described = ", ".join(f"{c['name']} ({_weight_label(c['weight'])})" for c in spec.constraints)
        parts.append(f"Constraints: {described}")
    if spec.goals:
        parts.append("Goals: " + "; ".join(f'"{g["description"].rstrip(".")}"' for g in spec.goals))
    if spec.resolution:
        parts.append(f"Resolution: {spec.resolution}")
    if spec.mode:
        parts.append(f"Mode: {spec.mode}")
    if world:
        parts.append(
            "World model: "
            + ", ".join(
                # The sections are plural nouns ("actors", "resources"): one item takes the singular.
                f"{len(items)} {section if len(items) != 1 else section.removesuffix('s')} "
                f"({', '.join(i['name'] for i in items)})"
                for section, items in world.items()
            )
        )
    # The service applies a reply's patches as it is stored: they are changes made, not proposed.
    lead = ctx.pick("I updated the project:", "Here is what I took from your message and added:")
    lines = "\n".join(f"- {part}" for part in parts)
    # Markdown, as a model writes it: a list apart from the sentences around it.
    return f"{lead}\n\n{lines}\n\nTell me if anything is off, or add more detail."


def _about_runs(ctx: TaskContext, runs: Any) -> str | None:
    """What the runs found, as a model would say it from what it was given: in an analysis session
    the project's runs (newest first), otherwise the latest post-run summary in the conversation.
    None when it was given neither."""
    if isinstance(runs, list):
        latest = next((r for r in runs if isinstance(r, dict)), None)
        return _from_digest(latest) if latest else "This project has no runs yet: there is nothing to compare."
    for message in reversed(ctx.request.messages):
        head = _SUMMARY_HEAD_RE.match(message.text) if message.role == "assistant" else None
        if head:
            found = [
                line for line in message.text.splitlines()[1:] if re.match(r"^(\d+\.|Rejected:|Why it stopped:)", line)
            ]
            return f"From {head.group(1)}: " + "; ".join(found) if found else None
    return None


def _from_digest(run: JsonObject) -> str:
    counts = run.get("counts")
    if not isinstance(counts, dict):
        counts = {}
    top = run.get("top_candidates")
    ranked = [c for c in top if isinstance(c, dict)] if isinstance(top, list) else []
    kept = [c for c in ranked if not c.get("rejected") and isinstance(c.get("I"), int | float)]
    rejected = [c for c in ranked if c.get("rejected")]
    said = [
        f"In run {str(run.get('run_id', ''))[:8]} ({run.get('mode')}, {str(run.get('status', '')).lower()}: "
        f"{pairs(counts.get('candidates', 0), counts.get('scenarios', 0))})"
    ]
    if kept:
        best = kept[0]
        said[0] += (
            f", the best was '{best.get('title')}' with I {best['I']:.2f} (P {best.get('P') or 0:.2f}, "
            f"R {best.get('R') or 0:.2f}), labelled {best.get('label')}."
        )
    else:
        said[0] += ", no candidate could be ranked."
    for c in rejected:
        violated = c.get("violated_constraints")
        broke = ", ".join(str(v) for v in violated) if isinstance(violated, list) and violated else "a hard constraint"
        said.append(f"'{c.get('title')}' was rejected: it broke {broke}.")
    return " ".join(said)


def _weight_label(weight: int) -> str:
    return "hard" if weight == 100 else f"weight {weight}"


def _question_reply(ctx: TaskContext, problem_spec: Any, world_model: Any) -> str:
    spec = problem_spec if isinstance(problem_spec, dict) else {}
    constraints = [c.get("name") for c in spec.get("constraints", []) if isinstance(c, dict)]
    goals = [g.get("description") for g in spec.get("goals", []) if isinstance(g, dict)]
    if spec:
        named = f" ({', '.join(map(str, constraints[:5]))})" if constraints else ""
        spec_text = (
            f"The problem specification has {counted(len(constraints), 'constraint')}{named} and "
            f"{counted(len(goals), 'goal')}."
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


def _acknowledges(text: str) -> bool:
    said = _LABEL_RE.sub("", text).strip()
    return len(said) <= 80 and bool(_ACKNOWLEDGEMENT_RE.search(said))


def _acknowledged_reply(ctx: TaskContext, problem_spec: Any, world_model: Any) -> str:
    if not problem_spec and not world_model:
        return ctx.pick(
            "Noted. There is nothing in the project yet: describe what must hold, what you want to achieve, "
            "and who and what is involved.",
            "Understood. To begin, tell me the requirements (must, should), the goals and who is involved.",
        )
    if not problem_spec or not world_model:
        missing = "the world model (who and what is involved)" if problem_spec else "the problem specification"
        return f"Noted; the changes so far are in the project. It still needs {missing} before a run."
    return ctx.pick(
        "Noted; those changes are in the project already. Add more detail, or ask me to recommend a run.",
        "Good: the project holds those changes. Refine it further, or say when you would like a run recommended.",
    )


def _nothing_found_reply(ctx: TaskContext) -> str:
    return ctx.pick(
        "I did not find constraints, goals or world-model details in that message about {t}. Try phrasing a "
        "requirement with must/should, a goal with want/maximize/minimize, or name the actors and resources.",
        "Nothing in that message about {t} changes the specification yet. State requirements (must, should), "
        "goals (want, minimize, maximize) or who and what is involved.",
    ).format(t=quote_terms(ctx.terms, 3))
