"""Typed domain values in JSONB columns: dataclasses to JSON and back, through pydantic.

One ``TypeAdapter`` per type, built on first use (building one costs far more than using it).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import TypeAdapter

T = TypeVar("T")

_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _adapter(kind: Any) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    return adapter


def dump(kind: type[T] | Any, value: T) -> Any:
    """``value`` (of type ``kind``) as JSON-ready data."""
    return _adapter(kind).dump_python(value, mode="json")


def load(kind: type[T], data: Any) -> T:
    """Data a JSONB column holds, as a ``kind``; validated on the way."""
    value: T = _adapter(kind).validate_python(data)
    return value
