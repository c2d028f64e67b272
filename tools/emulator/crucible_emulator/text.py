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
