"""Conversions between protobuf well-known types and plain Python values."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    # The same Timestamp as ``FromDatetime`` gives, in a fifth of its time: that one goes through a
    # calendar conversion, and every event a WatchRun streams and every row a list returns has one.
    since = value.astimezone(UTC) - _EPOCH
    return timestamp_pb2.Timestamp(seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1000)


def to_datetime(value: timestamp_pb2.Timestamp) -> datetime:
    return value.ToDatetime(tzinfo=UTC)


def struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    result.update(value)
    return result


def struct_to_dict(value: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as a dict; whole numbers come back as int (Struct stores every number as double)."""
    # Walked directly: json_format's generic MessageToDict took about 0.1 ms for an evaluation's
    # answer, and every model call's answer comes back as a Struct.
    return {key: _python(item) for key, item in value.fields.items()}


def _python(message: struct_pb2.Value) -> Any:
    kind = message.WhichOneof("kind")
    if kind == "string_value":
        return message.string_value
    if kind == "number_value":
        number = message.number_value
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind == "bool_value":
        return message.bool_value
    if kind == "struct_value":
        return {key: _python(item) for key, item in message.struct_value.fields.items()}
    if kind == "list_value":
        return [_python(item) for item in message.list_value.values]
    return None


def value(data: Any) -> struct_pb2.Value:
    """A JSON value (null, bool, number, string, list, dict) as a ``google.protobuf.Value``."""
    return json_format.ParseDict(data, struct_pb2.Value())


def value_to_python(message: struct_pb2.Value) -> Any:
    """A ``google.protobuf.Value`` as JSON data; whole numbers come back as int, as in ``struct_to_dict``."""
    return _python(message)


@functools.lru_cache(maxsize=256)
def _struct_of(canonical: str) -> bytes:
    return struct(json.loads(canonical)).SerializeToString(deterministic=True)


def schema_struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    """A Struct of a JSON schema sent with many calls, built once per distinct schema."""
    message = struct_pb2.Struct()
    message.ParseFromString(_struct_of(json.dumps(value, sort_keys=True, separators=(",", ":"))))
    return message


@functools.lru_cache(maxsize=256)
def _dict_of(serialized: bytes) -> dict[str, Any]:
    message = struct_pb2.Struct()
    message.ParseFromString(serialized)
    return struct_to_dict(message)


def schema_dict(value: struct_pb2.Struct) -> dict[str, Any]:
    """A JSON schema received with many calls as a dict, converted once per distinct schema.

    The same dict is returned for the same schema: callers read it and never change it.
    """
    return _dict_of(value.SerializeToString(deterministic=True))
