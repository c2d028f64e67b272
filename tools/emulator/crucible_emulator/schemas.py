"""JSON Schema support: cached validators, a generic instance generator, and fitting a template to a schema.

The generator covers what structured-output schemas use in practice: the basic types, ``enum`` and
``const``, ``anyOf`` / ``oneOf`` / ``allOf``, local ``$ref`` into ``$defs`` / ``definitions``,
``required``, numeric bounds and ``multipleOf``, item and length bounds, ``uniqueItems``. It does not
invent strings for a ``pattern``; a value that still fails validation is reported by ``satisfy``.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from functools import cached_property, lru_cache
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator, SchemaError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from crucible_emulator.conversation import InvalidRequest, JsonObject

_MISSING: Any = object()
_NUMERIC_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_SENTENCE_KEYS = (
    "description",
    "rationale",
    "summary",
    "explanation",
    "reason",
    "note",
    "reply",
    "text",
    "content",
    "message",
    "answer",
    "comment",
)
_NAME_KEYS = ("name", "id", "key", "slug", "identifier", "code")
_UNIT_KEYS = ("score", "probability", "overall", "ratio", "confidence", "share", "fraction")
_FALLBACK_WORDS = ("offline", "emulator", "answer", "draft", "item")


def schema_key(schema: Any) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


@lru_cache(maxsize=512)
def _validator_for_key(key: str) -> Validator:
    schema = json.loads(key)
    cls = validator_for(schema, default=Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)


def validator(schema: JsonObject) -> Validator:
    """A validator for ``schema``, compiled once per distinct schema."""
    return _validator_for_key(schema_key(schema))


@lru_cache(maxsize=512)
def _checker_for_key(key: str) -> Callable[[Any], bool]:
    try:
        return jsonschema_rs.validator_for(json.loads(key)).is_valid
    except (ValueError, jsonschema_rs.ValidationError):
        # A schema the compiled validator does not take: the reference implementation judges.
        return _validator_for_key(key).is_valid


def is_valid(schema: JsonObject, value: Any) -> bool:
    """Whether ``value`` fits ``schema``, by a validator compiled (in Rust) once per distinct schema:
    every structured answer is checked, and the pure-Python validator cost more than the answer."""
    return _checker_for_key(schema_key(schema))(value)


def check_schema(schema: Any, param: str) -> None:
    """Reject a schema the way a provider does: as a bad request naming the parameter."""
    if not isinstance(schema, dict):
        raise InvalidRequest("The schema must be a JSON object.", param)
    try:
        validator(schema)
    except SchemaError as exc:
        raise InvalidRequest(f"Invalid schema: {exc.message}", param) from exc


def first_error(schema: JsonObject, value: Any) -> str | None:
    error = next(iter(validator(schema).iter_errors(value)), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"{where}: {error.message}"


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "unknown"


class SchemaFiller:
    """Builds schema-valid values from a vocabulary; deterministic for a given ``rng`` state."""

    max_depth = 8

    def __init__(
        self, root: JsonObject, vocabulary: Sequence[str] | Callable[[], Sequence[str]], rng: random.Random
    ) -> None:
        self.root = root
        # A callable vocabulary is computed only if a string has to be invented.
        self._vocabulary = vocabulary
        self.rng = rng
        # One draw per filler keeps sibling strings apart (their offsets differ by the item index).
        self._salt = rng.randrange(1 << 16)

    @cached_property
    def vocabulary(self) -> list[str]:
        words = self._vocabulary() if callable(self._vocabulary) else self._vocabulary
        return list(words) or list(_FALLBACK_WORDS)

    @cached_property
    def _validator(self) -> Validator:
        return validator(self.root)

    # ---- schema navigation ----

    def resolve(self, schema: Any) -> JsonObject:
        """Follow ``$ref`` chains and merge ``allOf`` so the result is one plain schema."""
        if schema is True or schema is None:
            return {}
        if schema is False:
            return {"not": {}}
        current: JsonObject = schema
        for _ in range(32):
            ref = current.get("$ref")
            if not isinstance(ref, str):
                break
            target = self._pointer(ref)
            siblings = {k: v for k, v in current.items() if k != "$ref"}
            current = {**target, **siblings} if siblings else target
        if "allOf" in current:
            merged = {k: v for k, v in current.items() if k != "allOf"}
            for sub in current["allOf"]:
                merged = _merge(merged, self.resolve(sub))
            return merged
        return current

    def _pointer(self, ref: str) -> JsonObject:
        if not ref.startswith("#"):
            return {}
        node: Any = self.root
        for raw in ref[1:].lstrip("/").split("/") if ref not in ("#", "#/") else []:
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return {}
        if node is True:
            return {}
        return node if isinstance(node, dict) else {}

    def matches(self, schema: Any, value: Any) -> bool:
        return bool(self._validator.evolve(schema=schema).is_valid(value))

    def array_bounds(self, schema: Any) -> tuple[int | None, int | None]:
        resolved = self.resolve(schema)
        return resolved.get("minItems"), resolved.get("maxItems")

    def property_schema(self, schema: Any, *path: str) -> JsonObject:
        """The (resolved) schema at ``properties`` path, following the first object branch of unions."""
        current = self.resolve(schema)
        for name in path:
            current = self._object_branch(current)
            current = self.resolve(current.get("properties", {}).get(name, {}))
        return current

    def items_schema(self, schema: Any) -> JsonObject:
        resolved = self.resolve(schema)
        for branch in (resolved, *(self.resolve(b) for b in resolved.get("anyOf", []) + resolved.get("oneOf", []))):
            items = branch.get("items")
            if isinstance(items, dict):
                return self.resolve(items)
        return {}

    def _object_branch(self, schema: JsonObject) -> JsonObject:
        if "properties" in schema:
            return schema
        for branch in schema.get("anyOf", []) + schema.get("oneOf", []):
            resolved = self.resolve(branch)
            if "properties" in resolved:
                return resolved
        return schema

    # ---- generation ----

    def generate(self, schema: Any, *, key: str = "", depth: int = 0, index: int = 0) -> Any:
        if depth > 4 * self.max_depth:
            return None  # an unsatisfiable recursion (a required self-reference); validation reports it
        s = self.resolve(schema)
        if "const" in s:
            return s["const"]
        if isinstance(s.get("enum"), list) and s["enum"]:
            return s["enum"][self.rng.randrange(len(s["enum"]))]
        for combinator in ("oneOf", "anyOf"):
            branches = s.get(combinator)
            if isinstance(branches, list) and branches:
                return self._generate_union(s, combinator, branches, key=key, depth=depth, index=index)
        kind = self._pick_type(s, depth)
        if kind == "object":
            return self._generate_object(s, key=key, depth=depth)
        if kind == "array":
            return self._generate_array(s, key=key, depth=depth)
        if kind == "integer":
            return self._integer(s, key)
        if kind == "number":
            return self._number(s, key)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        return self._string(s, key=key, index=index)

    def _generate_union(
        self, s: JsonObject, combinator: str, branches: list[Any], *, key: str, depth: int, index: int
    ) -> Any:
        base = {k: v for k, v in s.items() if k != combinator}
        ordered = sorted(branches, key=lambda b: self._branch_cost(b, depth))
        fallback: Any = _MISSING
        for branch in ordered:
            candidate_schema = _merge(base, self.resolve(branch))
            value = self.generate(candidate_schema, key=key, depth=depth + 1, index=index)
            if fallback is _MISSING:
                fallback = value
            if combinator == "anyOf" or sum(self.matches(b, value) for b in branches) == 1:
                return value
        return fallback

    def _branch_cost(self, branch: Any, depth: int) -> int:
        resolved = self.resolve(branch)
        is_null = resolved.get("type") == "null"
        # Deep in a recursive schema the null branch ends the recursion; near the top it says nothing.
        if depth >= self.max_depth // 2:
            return 0 if is_null else 1
        return 1 if is_null else 0

    def _pick_type(self, s: JsonObject, depth: int) -> str:
        declared = s.get("type")
        if isinstance(declared, list):
            options = [t for t in declared if isinstance(t, str)]
            if "null" in options and (depth >= self.max_depth or len(options) == 1):
                return "null"
            non_null = [t for t in options if t != "null"]
            return non_null[0] if non_null else "null"
        if isinstance(declared, str):
            return declared
        if any(k in s for k in ("properties", "required", "additionalProperties", "minProperties")):
            return "object"
        if any(k in s for k in ("items", "prefixItems", "minItems", "maxItems", "uniqueItems")):
            return "array"
        if any(k in s for k in _NUMERIC_KEYWORDS):
            return "number"
        return "string"

    def _generate_object(self, s: JsonObject, *, key: str, depth: int) -> JsonObject:
        props: JsonObject = s.get("properties") or {}
        required: list[str] = [r for r in s.get("required", []) if isinstance(r, str)]
        extra = s.get("additionalProperties", True)
        extra_schema = extra if isinstance(extra, dict) else {}
        names = list(props) if depth < self.max_depth // 2 else [p for p in props if p in required]
        names += [r for r in required if r not in names]
        out: JsonObject = {}
        for name in names:
            out[name] = self.generate(props.get(name, extra_schema), key=name, depth=depth + 1)
        wanted = s.get("minProperties", 0)
        if not props and isinstance(extra, dict) and depth < self.max_depth // 2:
            wanted = max(wanted, 2)
        for i, word in enumerate(self._words_from(stable_offset(key), 12)):
            if len(out) >= wanted or extra is False:
                break
            name = word if word not in out else f"{word}_{i}"
            out[name] = self.generate(extra_schema, key=name, depth=depth + 1, index=i)
        return _trim_properties(out, s, required)

    def _generate_array(self, s: JsonObject, *, key: str, depth: int) -> list[Any]:
        prefix: list[Any] = s.get("prefixItems") or []
        items = s.get("items", {})
        low = int(s.get("minItems", 0))
        high = s.get("maxItems")
        # Deep in a recursive schema only the required minimum is generated, so recursion ends.
        default = 0 if depth >= self.max_depth else 1 if depth >= self.max_depth // 2 else 3
        count = max(low, min(default, high) if high is not None else default)
        if items is False:
            count = min(count, len(prefix))
        out: list[Any] = []
        seen: set[str] = set()
        for i in range(count * 4):
            if len(out) >= count:
                break
            position = len(out)
            sub = prefix[position] if position < len(prefix) else items
            value = self.generate(sub, key=key, depth=depth + 1, index=i)
            if s.get("uniqueItems"):
                marker = schema_key(value)
                if marker in seen:
                    continue
                seen.add(marker)
            out.append(value)
        return out

    def _integer(self, s: JsonObject, key: str) -> int:
        low, high = _bounds(s)
        lo = math.ceil(low) if low is not None else None
        hi = math.floor(high) if high is not None else None
        if lo is not None and low is not None and _exclusive(s, "min") and lo == low:
            lo += 1
        if hi is not None and high is not None and _exclusive(s, "max") and hi == high:
            hi -= 1
        if lo is None:
            lo = min(1, hi) if hi is not None else 1
        if hi is None:
            hi = lo + (9 if lo >= 0 else 10)
        if hi < lo:
            return lo
        step = s.get("multipleOf")
        if isinstance(step, int | float) and step > 0:
            first, last = math.ceil(lo / step), math.floor(hi / step)
            if last >= first:
                return int(self.rng.randint(first, last) * step)
        return self.rng.randint(lo, hi)

    def _number(self, s: JsonObject, key: str) -> float:
        low, high = _bounds(s)
        unit_like = any(word in key.lower() for word in _UNIT_KEYS)
        lo = low if low is not None else (0.0 if unit_like or high is None or high > 0 else high - 10.0)
        hi = high if high is not None else (1.0 if unit_like and lo < 1 else lo + 100.0)
        step = s.get("multipleOf")
        if isinstance(step, int | float) and step > 0:
            first, last = math.ceil(lo / step), math.floor(hi / step)
            if last >= first:
                return float(self.rng.randint(first, last) * step)
        margin = (hi - lo) * 0.05
        value = lo + margin + self.rng.random() * max(hi - lo - 2 * margin, 0.0)
        rounded = round(value, 3)
        if _within(s, rounded):
            return rounded
        return value if _within(s, value) else (lo + hi) / 2

    def _string(self, s: JsonObject, *, key: str, index: int) -> str:
        fmt = s.get("format")
        if fmt == "date-time":
            return "2025-01-01T00:00:00Z"
        if fmt == "date":
            return "2025-01-01"
        if fmt == "time":
            return "12:00:00"
        if fmt == "email":
            return f"{self._words_from(stable_offset(key, index), 1)[0]}@example.com"
        if fmt in ("uri", "url", "iri"):
            return f"https://example.com/{self._words_from(stable_offset(key, index), 1)[0]}"
        if fmt == "uuid":
            value = self.rng.getrandbits(128)
            return f"{value:032x}"[:8] + "-0000-4000-8000-" + f"{value:032x}"[-12:]
        lowered = key.lower()
        offset = stable_offset(key) + index + self._salt
        if any(lowered.endswith(k) for k in _NAME_KEYS):
            text = "_".join(self._words_from(offset, 2))
        elif "title" in lowered or "heading" in lowered:
            text = " ".join(w.capitalize() for w in self._words_from(offset, 4))
        elif any(k in lowered for k in _SENTENCE_KEYS):
            text = " ".join(self._words_from(offset, 10)).capitalize() + "."
        else:
            text = " ".join(self._words_from(offset, 3))
        if index >= len(self.vocabulary):
            # Past the vocabulary's size, word choice alone no longer keeps sibling items apart.
            text = f"{text} {index + 1}"
        return fit_length(text, s.get("minLength"), s.get("maxLength"), lambda: self.vocabulary)

    def _words_from(self, offset: int, count: int) -> list[str]:
        size = len(self.vocabulary)
        return [self.vocabulary[(offset + i) % size] for i in range(count)]

    # ---- fitting a template ----

    def conform(self, schema: Any, hint: Any, *, key: str = "", depth: int = 0) -> Any:
        """``hint`` bent to fit ``schema``: missing parts generated, extra parts dropped, bounds applied."""
        s = self.resolve(schema)
        if not s:
            return hint
        if "const" in s:
            return s["const"]
        if isinstance(s.get("enum"), list) and s["enum"]:
            return _closest_enum(s["enum"], hint, self)
        for combinator in ("oneOf", "anyOf"):
            branches = s.get(combinator)
            if isinstance(branches, list) and branches:
                base = {k: v for k, v in s.items() if k != combinator}
                for branch in branches:
                    merged = _merge(base, self.resolve(branch))
                    if self._type_fits(merged, hint):
                        return self.conform(merged, hint, key=key, depth=depth + 1)
                return self.generate(s, key=key, depth=depth)
        if not self._type_fits(s, hint):
            coerced = _coerce(s, hint)
            if coerced is _MISSING:
                return self.generate(s, key=key, depth=depth)
            hint = coerced
        kind = json_type(hint)
        if kind == "object":
            return self._conform_object(s, hint, depth=depth)
        if kind == "array":
            return self._conform_array(s, hint, key=key, depth=depth)
        if kind == "string":
            return fit_length(hint, s.get("minLength"), s.get("maxLength"), lambda: self.vocabulary)
        if kind in ("integer", "number"):
            return _clamp(s, hint)
        return hint

    def _type_fits(self, s: JsonObject, value: Any) -> bool:
        declared = s.get("type")
        allowed = [declared] if isinstance(declared, str) else declared if isinstance(declared, list) else None
        kind = json_type(value)
        if allowed is None:
            if "const" in s or "enum" in s or "anyOf" in s or "oneOf" in s:
                return True
            inferred = self._pick_type(s, 0) if s.keys() - {"description", "title", "default", "examples"} else None
            return inferred is None or kind == inferred or (kind == "integer" and inferred == "number")
        return kind in allowed or (kind == "integer" and "number" in allowed)

    def _conform_object(self, s: JsonObject, hint: JsonObject, *, depth: int) -> JsonObject:
        props: JsonObject = s.get("properties") or {}
        required: list[str] = [r for r in s.get("required", []) if isinstance(r, str)]
        extra = s.get("additionalProperties", True)
        out: JsonObject = {}
        for name, value in hint.items():
            if name in props:
                out[name] = self.conform(props[name], value, key=name, depth=depth + 1)
            elif isinstance(extra, dict):
                out[name] = self.conform(extra, value, key=name, depth=depth + 1)
            elif extra is not False:
                out[name] = value
        for name in required:
            if name not in out:
                sub = props.get(name, extra if isinstance(extra, dict) else {})
                out[name] = self.generate(sub, key=name, depth=depth + 1)
        for name in props:
            if len(out) >= s.get("minProperties", 0):
                break
            out.setdefault(name, self.generate(props[name], key=name, depth=depth + 1))
        return _trim_properties(out, s, required)

    def _conform_array(self, s: JsonObject, hint: list[Any], *, key: str, depth: int) -> list[Any]:
        prefix: list[Any] = s.get("prefixItems") or []
        items = s.get("items", {})
        high = s.get("maxItems")
        out: list[Any] = []
        seen: set[str] = set()
        for value in hint:
            if high is not None and len(out) >= high:
                break
            position = len(out)
            if position >= len(prefix) and items is False:
                break
            sub = prefix[position] if position < len(prefix) else items
            fitted = self.conform(sub, value, key=key, depth=depth + 1)
            if s.get("uniqueItems"):
                marker = schema_key(fitted)
                if marker in seen:
                    continue
                seen.add(marker)
            out.append(fitted)
        low = int(s.get("minItems", 0))
        for i in range(low * 4):
            if len(out) >= low:
                break
            position = len(out)
            sub = prefix[position] if position < len(prefix) else items
            value = self.generate(sub, key=key, depth=depth + 1, index=len(hint) + i)
            marker = schema_key(value)
            if s.get("uniqueItems") and marker in seen:
                continue
            seen.add(marker)
            out.append(value)
        return out


def stable_offset(*parts: object) -> int:
    return sum((i + 1) * ord(c) for i, c in enumerate("\x1f".join(map(str, parts))))


def fit_length(text: str, low: Any, high: Any, vocabulary: Callable[[], Sequence[str]]) -> str:
    minimum = int(low) if isinstance(low, int) else 0
    maximum = int(high) if isinstance(high, int) else None
    i = 0
    words = (list(vocabulary()) or list(_FALLBACK_WORDS)) if len(text) < minimum else []
    while len(text) < minimum:
        text = f"{text} {words[i % len(words)]}".strip()
        i += 1
    if maximum is not None and len(text) > maximum:
        cut = text[:maximum]
        shorter = cut.rsplit(" ", 1)[0]
        text = shorter if len(shorter) >= max(minimum, 1) and len(shorter) >= maximum // 2 else cut
    return text


def _closest_enum(options: list[Any], hint: Any, filler: SchemaFiller) -> Any:
    if hint in options:
        return hint
    if isinstance(hint, str):
        lowered = hint.strip().lower()
        for option in options:
            if isinstance(option, str) and option.lower() == lowered:
                return option
        for option in options:
            if isinstance(option, str) and (option.lower() in lowered or lowered in option.lower()):
                return option
    return options[filler.rng.randrange(len(options))]


def _coerce(s: JsonObject, value: Any) -> Any:
    declared = s.get("type")
    allowed = [declared] if isinstance(declared, str) else declared if isinstance(declared, list) else []
    if "integer" in allowed and isinstance(value, float) and value.is_integer():
        return int(value)
    if "integer" in allowed and isinstance(value, float):
        return round(value)
    if "string" in allowed and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if "string" in allowed and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "; ".join(value)
    if "array" in allowed and not isinstance(value, list) and value is not None:
        return [value]
    return _MISSING


def _bounds(s: JsonObject) -> tuple[float | None, float | None]:
    low = s.get("minimum")
    high = s.get("maximum")
    ex_low = s.get("exclusiveMinimum")
    ex_high = s.get("exclusiveMaximum")
    if isinstance(ex_low, int | float) and not isinstance(ex_low, bool):
        low = ex_low if low is None else max(low, ex_low)
    if isinstance(ex_high, int | float) and not isinstance(ex_high, bool):
        high = ex_high if high is None else min(high, ex_high)
    return low, high


def _within(s: JsonObject, value: float) -> bool:
    low, high = _bounds(s)
    if low is not None and (value < low or (_exclusive(s, "min") and value <= low)):
        return False
    return not (high is not None and (value > high or (_exclusive(s, "max") and value >= high)))


def _exclusive(s: JsonObject, side: str) -> bool:
    keyword = "exclusiveMinimum" if side == "min" else "exclusiveMaximum"
    value = s.get(keyword)
    if isinstance(value, bool):
        return value
    return isinstance(value, int | float)


def _clamp(s: JsonObject, value: float) -> float:
    low, high = _bounds(s)
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if low is not None and (value < low or (_exclusive(s, "min") and value <= low)):
        value = low + (1 if is_int else 1e-3) * _exclusive(s, "min")
    if high is not None and (value > high or (_exclusive(s, "max") and value >= high)):
        value = high - (1 if is_int else 1e-3) * _exclusive(s, "max")
    step = s.get("multipleOf")
    if isinstance(step, int | float) and step > 0 and not _is_multiple(value, step):
        value = math.ceil(value / step) * step
        if high is not None and value > high:
            value -= step
    if is_int or s.get("type") == "integer":
        return round(value)
    return value


def _is_multiple(value: float, step: float) -> bool:
    quotient = value / step
    return math.isclose(quotient, round(quotient), abs_tol=1e-9)


def _trim_properties(out: JsonObject, s: JsonObject, required: list[str]) -> JsonObject:
    limit = s.get("maxProperties")
    if isinstance(limit, int):
        for name in [n for n in out if n not in required]:
            if len(out) <= limit:
                break
            del out[name]
    return out


def _merge(a: JsonObject, b: JsonObject) -> JsonObject:
    """The conjunction of two schemas, as far as generation needs it."""
    if not a:
        return dict(b)
    merged = dict(a)
    for key, value in b.items():
        if key not in merged:
            merged[key] = value
        elif key == "properties":
            props = dict(merged[key])
            for name, sub in value.items():
                props[name] = {"allOf": [props[name], sub]} if name in props else sub
            merged[key] = props
        elif key == "required":
            merged[key] = list(dict.fromkeys([*merged[key], *value]))
        elif key == "type":
            left = merged[key] if isinstance(merged[key], list) else [merged[key]]
            right = value if isinstance(value, list) else [value]
            both = [t for t in left if t in right] or [t for t in left if t == "integer" and "number" in right]
            merged[key] = both[0] if len(both) == 1 else (both or left)
        elif key == "enum":
            merged[key] = [v for v in merged[key] if v in value] or merged[key]
        elif key in ("minimum", "exclusiveMinimum", "minItems", "minLength", "minProperties"):
            merged[key] = max(merged[key], value)
        elif key in ("maximum", "exclusiveMaximum", "maxItems", "maxLength", "maxProperties"):
            merged[key] = min(merged[key], value)
    return merged
