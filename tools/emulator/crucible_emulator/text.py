"""Small, pure text helpers the offline model builds its answers from."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:['-][A-Za-z0-9_]+)*")
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?;])\s+|\n+")
_BULLET_RE = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")
_LABEL_RE = re.compile(r"^\s*[A-Za-z][A-Za-z_]*(?: [A-Za-z_]+){0,2}:\s+(?=\S)")
_QUOTED_RE = re.compile(r"(?<!\w)[\"'`“\u2018]([^\"'`”\u2019\n]{1,80})[\"'`”\u2019](?!\w)")
_IMPERATIVE_RE = re.compile(
    r"^(?:please\s+)?(?:write|create|build|implement|make|develop|add|design|code|produce|generate)\s+"
    r"(?:me\s+)?(?P<rest>(?:a|an|the|some)\s+.+)",
    re.IGNORECASE,
)

_STOPWORDS_TEXT = """
a about above after again against all also am an and any are as at be because been before being below
between both but by can could did do does doing down during each either else etc even ever every few for
from further get gets got had has have having he her here hers him his how however i if in into is it its
itself just let lets like made make makes many may me might more most much must my need needs no nor not now
of off often on once one only or other our ours out over own per please quite rather really same shall she
should so some such than that the their theirs them then there these they this those through thus to too
under until up upon us use used uses using very via was we well were what when where which while who whom
whose why will with within without would yes yet you your yours answer answers ask asked asking return
returns respond response json schema object field fields value values following given task tasks question
questions user users write writes written create creates want wants wish something thing things way ways
able sure ok okay thanks thank reduce reduces reducing increase increases
improve improves minimize minimise maximize maximise optimize optimise ensure ensures keep keeps provide provides
allow allows support supports handle handles build builds implement implements limited lower higher better best
good new don't doesn't isn't can't won't never always max_questions num_candidates num_scenarios
"""


def word_set(text: str) -> frozenset[str]:
    """The whitespace-separated words of ``text``, for word lists written as one block of text."""
    return frozenset(text.split())


STOPWORDS = word_set(_STOPWORDS_TEXT)


def words(text: str) -> list[str]:
    return [w.lower() for w in WORD_RE.findall(text)]


def key_terms(text: str, limit: int = 8) -> list[str]:
    """The most frequent content words (quoted words count double), ties broken by first appearance."""
    counts: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    for position, word in enumerate(words(text)):
        if len(word) < 3 or word in STOPWORDS or word.isdigit():
            continue
        counts[word] += 1
        first_seen.setdefault(word, position)
    for quoted in _QUOTED_RE.findall(text):
        for word in words(quoted):
            if word in counts:
                counts[word] += 1
    ranked = sorted(counts, key=lambda w: (-counts[w], first_seen[w]))
    return ranked[:limit]


# What a noun phrase follows: a determiner or a preposition for the things a problem is about ("the
# budget", "in a hospital emergency department"), a verb for what is to change of them ("reduce
# waiting time"); and what follows a sentence's subject ("Patients must ...").
_BEFORE_THING = word_set(
    """a an the our their its this that these those each every any some of in for on at to with from into onto
    per by under over about around between within without across along through toward towards beyond near
    behind beside inside outside past"""
)
_BEFORE_MEASURE = word_set(
    "reduce increase improve minimize minimise maximize maximise optimize optimise keep provide support cut lower raise"
)
_AFTER_SUBJECT = word_set("must should can could will would may might need needs are is have has cannot never")
# Heads that are units of a quantity, not what a problem is about ("4 hours", "2 million a year").
_UNIT_WORDS = word_set(
    """second seconds minute minutes hour hours day days week weeks month months year years time times percent
    thousand thousands million millions billion billions euro euros dollar dollars unit units"""
)
_TOKEN_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:['-][A-Za-z0-9_]+)*|\S")


def noun_phrases(text: str, limit: int = 8) -> list[str]:
    """What the text is about, as short noun phrases ("emergency department", "patients"): runs of
    content words after a determiner or a preposition, or a sentence's subject, then those after a
    verb ("waiting time", what is to change of them), each cut to its last two words; within each,
    most mentioned first, then by first appearance."""
    counts: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    measures: set[str] = set()
    position = 0
    for sentence in sentences(text):
        tokens = [t.lower() for t in _TOKEN_RE.findall(sentence)]
        i = 0
        while i < len(tokens):
            if not _is_content(tokens[i]):
                i += 1
                continue
            start = i
            while i < len(tokens) and _is_content(tokens[i]):
                i += 1
            run = tokens[start:i]
            before = tokens[start - 1] if start else ""
            after = tokens[i] if i < len(tokens) else ""
            thing = before in _BEFORE_THING or (start == 0 and after in _AFTER_SUBJECT)
            # A unit alone is a quantity's ("a year"), not a subject; "waiting time" is one.
            if (thing or before in _BEFORE_MEASURE) and not (len(run) == 1 and run[0] in _UNIT_WORDS):
                phrase = " ".join(run[-2:])
                counts[phrase] += 1
                first_seen.setdefault(phrase, position)
                if not thing:
                    measures.add(phrase)
            position += 1
    return sorted(counts, key=lambda p: (p in measures, -counts[p], first_seen[p]))[:limit]


def _is_content(token: str) -> bool:
    return token[:1].isalpha() and len(token) >= 3 and token not in STOPWORDS and token not in _BEFORE_THING


def with_article(phrase: str) -> str:
    """ "the budget", "the emergency department", but "patients": how a sentence names a phrase."""
    plural = phrase.endswith("s") and not phrase.endswith("ss")
    return phrase if plural else f"the {phrase}"


def task_subject(text: str, limit: int = 80) -> str:
    """How a question refers to the task: "a script that prints 'hi'" or "the task 'Fix the build'"."""
    first = summary(text, limit)
    match = _IMPERATIVE_RE.match(first)
    if match:
        return match.group("rest")
    return f"the task '{first}'" if first else "the task"


def sentences(text: str) -> list[str]:
    """Sentences and list items, without bullets or a leading label ("User message:"), punctuation kept."""
    out: list[str] = []
    for piece in _SENTENCE_SPLIT_RE.split(text):
        piece = _LABEL_RE.sub("", _BULLET_RE.sub("", piece)).strip()
        if piece and WORD_RE.search(piece) and not piece.endswith(":"):
            out.append(piece)
    return out


def summary(text: str, limit: int = 90) -> str:
    """The first sentence of ``text``, shortened to ``limit`` characters on a word boundary."""
    first = next(iter(sentences(text)), "").rstrip(".!?;: ")
    if len(first) <= limit:
        return first
    cut = first[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;: ") + "…"


def snake(text: str, max_words: int = 4) -> str:
    picked = [w for w in words(text) if w not in STOPWORDS][:max_words] or words(text)[:max_words]
    return "_".join(re.sub(r"[^a-z0-9]+", "_", w).strip("_") for w in picked) or "item"


def camel_to_snake(name: str) -> str:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip())
    return re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_")


def int_directive(text: str, key: str) -> int | None:
    """The N of a ``key: N`` (or ``key = N``) line in a prompt."""
    match = re.search(rf"\b{re.escape(key)}\s*[:=]\s*(\d+)", text, re.IGNORECASE)
    return int(match.group(1)) if match else None


def stable_int(*parts: object) -> int:
    """A 64-bit integer that depends only on the parts, stable across processes."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def unit(*parts: object) -> float:
    """A number in [0, 1) that depends only on the parts."""
    return stable_int(*parts) / 2**64


def iter_json_objects(text: str) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """Every top-level JSON object embedded in free text, with its span."""
    decoder = json.JSONDecoder()
    index = text.find("{")
    while index != -1:
        try:
            value, end = decoder.raw_decode(text, index)
        except ValueError:
            index = text.find("{", index + 1)
            continue
        if isinstance(value, dict):
            yield index, end, value
        index = text.find("{", end)


def find_json_object_in(
    objects: list[dict[str, Any]], predicate: Callable[[dict[str, Any]], bool]
) -> dict[str, Any] | None:
    """The first object, or object nested in one, that satisfies ``predicate``."""
    for value in objects:
        found = _search(value, predicate)
        if found is not None:
            return found
    return None


def _search(value: Any, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    if isinstance(value, dict):
        if predicate(value):
            return value
        children: list[Any] = list(value.values())
    elif isinstance(value, list):
        children = value
    else:
        return None
    for child in children:
        found = _search(child, predicate)
        if found is not None:
            return found
    return None


def without_json(text: str) -> str:
    """``text`` with its embedded JSON objects removed, so sentences are the author's own words."""
    pieces: list[str] = []
    cursor = 0
    for start, end, _ in iter_json_objects(text):
        pieces.append(text[cursor:start])
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def quote_terms(terms: list[str], limit: int = 3) -> str:
    picked = [f"'{t}'" for t in terms[:limit]]
    if not picked:
        return "the task"
    if len(picked) == 1:
        return picked[0]
    return ", ".join(picked[:-1]) + " and " + picked[-1]
