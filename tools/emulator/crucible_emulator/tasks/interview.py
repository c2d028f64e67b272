"""The planning interview: ``planning_questions`` and the ``judge_decision`` between two answers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from crucible_emulator.conversation import JsonObject
from crucible_emulator.tasks.context import TaskContext
from crucible_emulator.text import as_text, key_terms, quote_terms, sentences, task_subject, word_set, words

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


# Words that name the tools of a task rather than its matter: asked about last ("edge cases around
# 'python'" asks nothing a person can answer; "around 'is_prime'" does).
_TOOL_WORDS = word_set(
    """
    python pytest unittest function functions script scripts program module modules package code class classes
    method test tests cli command library file files
    """
)


def planning_questions(ctx: TaskContext) -> JsonObject:
    count = ctx.count("questions", "max_questions")
    subject = task_subject(ctx.task_text)
    found = ctx.terms or ["the task"]
    terms = [t for t in found if t not in _TOOL_WORDS] + [t for t in found if t in _TOOL_WORDS]
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
