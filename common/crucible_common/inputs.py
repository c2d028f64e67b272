"""What no request may carry, whatever its field: checked once where requests enter, for every field.

Three classes of input that each field's own validation would otherwise have to remember:

- a NUL character (U+0000): Postgres stores it in neither ``text`` nor ``jsonb``, so a write fails
  with a server error after the request was accepted. Refused, not stripped: the content is the
  user's, and silently changing it would store something they did not send.
- a lone surrogate (U+D800 to U+DFFF, unpaired, as JSON's ``"\\ud800"`` can spell it): not Unicode
  text, so it cannot be encoded as UTF-8 — not into a protobuf string, not into a JSON response.
- NaN and Infinity, which Python's JSON parser reads but JSON has no words for (nor Postgres's jsonb).
- JSON nested deeper than ``MAX_JSON_DEPTH``: protobuf refuses to decode a message nested more than
  100 deep, and each JSON level costs up to three messages in a ``google.protobuf.Struct``. Twenty
  levels leave room for the messages that carry a Struct inside others (a world model inside a
  snapshot's data, inside a response); no document Crucible keeps needs more.

The gateway applies ``json_violations`` to request bodies and WebSocket frames and ``text_problem``
to paths and query strings; every service applies ``message_violations`` to each request it
receives (in the error interceptor, ``grpc_server``), for clients that are not the gateway.
"""

from __future__ import annotations

import functools
import math
import re

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.struct_pb2 import ListValue, Struct, Value

from crucible_common.errors import FieldViolation

MAX_JSON_DEPTH = 20

NUL = "must not contain NUL characters (U+0000)"
NOT_FINITE = "must be a finite number (JSON has no NaN or Infinity)"
# Stored as a double (a Struct's only number), a whole number past 2^53 would silently lose digits.
MAX_EXACT_INTEGER = 2**53
NOT_EXACT = f"must be a whole number within ±{MAX_EXACT_INTEGER:,}, which is stored exactly"
NOT_UNICODE = "must be Unicode text: it contains an unpaired surrogate"
TOO_DEEP = f"must not be nested more than {MAX_JSON_DEPTH} levels deep"

_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Why a string cannot be accepted as text, or None when it can."""
    if "\x00" in value:
        return NUL
    if _SURROGATE.search(value):
        return NOT_UNICODE
    return None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def json_violations(value: object, path: str = "", *, depth: int = 1) -> list[FieldViolation]:
    """Each string (key or value) that is not storable text, each number that is not finite or is a
    whole number past what a double holds exactly, and each container nested too deep.

    ``value`` is decoded JSON; ``path`` names it in the violations (``metadata.tags[2]``), and
    ``depth`` is its own level (the document itself is level 1).
    """
    found: list[FieldViolation] = []
    if isinstance(value, str):
        problem = text_problem(value)
        if problem is not None:
            found.append(FieldViolation(path, problem))
    elif isinstance(value, float) and not math.isfinite(value):
        found.append(FieldViolation(path, NOT_FINITE))
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_EXACT_INTEGER:
        found.append(FieldViolation(path, NOT_EXACT))
    elif isinstance(value, dict | list):
        if depth > MAX_JSON_DEPTH:
            # Nothing below is looked at: the whole value is refused by its outermost excess level.
            return [FieldViolation(path, TOO_DEEP)]
        if isinstance(value, dict):
            for key, item in value.items():
                key_problem = text_problem(key)
                if key_problem is not None:
                    # The key cannot name the field as it is (it is not text): escaped, it can.
                    found.append(FieldViolation(_join(path, ascii(key)), f"key {key_problem}"))
                    continue
                found.extend(json_violations(item, _join(path, key), depth=depth + 1))
        else:
            for index, item in enumerate(value):
                found.extend(json_violations(item, f"{path}[{index}]", depth=depth + 1))
    return found


def message_violations(message: Message, path: str = "") -> list[FieldViolation]:
    """Each string field of a protobuf message (at any depth, maps and Structs too) that is not
    storable text, and each ``Struct``/``ListValue``/``Value`` nested more than ``MAX_JSON_DEPTH`` deep.

    Bytes fields are not text and are not looked at. Protobuf itself refuses strings that are not
    UTF-8, so on the wire only NUL can reach a string field; the surrogate check matters for
    messages built in process.
    """
    if isinstance(message, Struct | ListValue | Value):
        if _known_clean(message):
            return []
        return _json_message_violations(message, path, depth=1)
    found: list[FieldViolation] = []
    for field, content in message.ListFields():
        name = _join(path, field.name)
        value_field = _map_value(field)
        if value_field is not None:
            for key, item in content.items():
                if isinstance(key, str) and (key_problem := text_problem(key)) is not None:
                    found.append(FieldViolation(f"{name}[{key!a}]", f"key {key_problem}"))
                    continue
                found.extend(_field_value_violations(value_field, item, f"{name}[{key!r}]"))
        elif field.is_repeated:
            for index, item in enumerate(content):
                found.extend(_field_value_violations(field, item, f"{name}[{index}]"))
        else:
            found.extend(_field_value_violations(field, content, name))
    return found


# JSON documents up to this size (serialized) are remembered once found clean.
CLEAN_CACHE_MAX_BYTES = 64 * 1024


def _known_clean(message: Struct | ListValue | Value) -> bool:
    """Whether this JSON document is one already found clean: the same JSON schema comes with every
    call of a run's thousands, and walking it costs more than the rest of the request's checks."""
    serialized = message.SerializeToString(deterministic=True)
    return len(serialized) <= CLEAN_CACHE_MAX_BYTES and _clean(message.DESCRIPTOR.full_name, serialized)


@functools.lru_cache(maxsize=512)
def _clean(type_name: str, serialized: bytes) -> bool:
    message = {"google.protobuf.Struct": Struct, "google.protobuf.ListValue": ListValue}.get(type_name, Value)()
    message.ParseFromString(serialized)
    return not _json_message_violations(message, "", depth=1)


@functools.cache
def _map_value(field: FieldDescriptor) -> FieldDescriptor | None:
    """The value field of a map field's entries; None for a field that is not a map."""
    entry = field.message_type
    if entry is None or not entry.GetOptions().map_entry:
        return None
    return entry.fields_by_name["value"]


def _field_value_violations(field: FieldDescriptor, value: object, path: str) -> list[FieldViolation]:
    if field.type == FieldDescriptor.TYPE_STRING:
        assert isinstance(value, str)
        problem = text_problem(value)
        return [FieldViolation(path, problem)] if problem is not None else []
    if isinstance(value, Message):
        return message_violations(value, path)
    return []


def _json_message_violations(message: Struct | ListValue | Value, path: str, *, depth: int) -> list[FieldViolation]:
    """A Struct, ListValue or Value as the JSON it stands for: ``depth`` counts objects and arrays."""
    if isinstance(message, Value):
        kind = message.WhichOneof("kind")
        if kind == "string_value":
            problem = text_problem(message.string_value)
            return [FieldViolation(path, problem)] if problem is not None else []
        if kind == "number_value" and not math.isfinite(message.number_value):
            return [FieldViolation(path, NOT_FINITE)]
        if kind == "struct_value":
            return _json_message_violations(message.struct_value, path, depth=depth)
        if kind == "list_value":
            return _json_message_violations(message.list_value, path, depth=depth)
        return []
    if depth > MAX_JSON_DEPTH:
        return [FieldViolation(path, TOO_DEEP)]
    found: list[FieldViolation] = []
    if isinstance(message, Struct):
        for key, item in message.fields.items():
            key_problem = text_problem(key)
            if key_problem is not None:
                found.append(FieldViolation(_join(path, ascii(key)), f"key {key_problem}"))
                continue
            found.extend(_json_message_violations(item, _join(path, key), depth=depth + 1))
    else:
        for index, item in enumerate(message.values):
            found.extend(_json_message_violations(item, f"{path}[{index}]", depth=depth + 1))
    return found
