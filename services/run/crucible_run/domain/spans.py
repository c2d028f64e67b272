"""Spans as the run context names them: by W3C ids, which it stores with a run and follows later."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_SPAN_ID = re.compile(r"[0-9a-f]{16}")
# The key of a recommended_run_config that holds the trace context of the span that produced the
# recommendation: {"trace_id": <32 hex>, "span_id": <16 hex>}.
RECOMMENDATION_TRACE_KEY = "trace"


@dataclass(frozen=True)
class SpanRef:
    """A span's identity: a trace id of 32 and a span id of 16 lower-case hex digits, neither all zeros."""

    trace_id: str
    span_id: str

    @classmethod
    def parse(cls, value: object) -> SpanRef | None:
        """``{"trace_id": ..., "span_id": ...}`` as a span, or None when it is absent or not valid W3C ids."""
        if not isinstance(value, Mapping):
            return None
        trace_id, span_id = value.get("trace_id"), value.get("span_id")
        if not isinstance(trace_id, str) or not isinstance(span_id, str):
            return None
        if not _TRACE_ID.fullmatch(trace_id) or not _SPAN_ID.fullmatch(span_id):
            return None
        if int(trace_id, 16) == 0 or int(span_id, 16) == 0:
            return None
        return cls(trace_id, span_id)

    @classmethod
    def of_traceparent(cls, carrier: Mapping[str, str]) -> SpanRef | None:
        """The span a W3C ``traceparent`` (``00-<trace id>-<span id>-<flags>``) names."""
        parts = carrier.get("traceparent", "").split("-")
        return cls.parse({"trace_id": parts[1], "span_id": parts[2]}) if len(parts) == 4 else None


def recommendation_span(config: dict[str, Any] | None) -> SpanRef | None:
    """The span that produced a recommended_run_config, when the config carries a valid trace context."""
    return SpanRef.parse(config.get(RECOMMENDATION_TRACE_KEY)) if config else None


@dataclass(frozen=True)
class SpanLink:
    target: SpanRef
    # What the link is: crucible.link ("recommendation", "create_run", "run", ...) and the ids it names.
    attributes: dict[str, Any]


@dataclass(frozen=True)
class RecordedSpan:
    """A finished span as a trace store gives it back."""

    ref: SpanRef
    name: str
    # The service name of the process that recorded it (crucible-run, ...).
    service: str
    parent_span_id: str
    start: datetime | None
    end: datetime | None
    attributes: dict[str, Any]
    links: tuple[SpanLink, ...]


@dataclass(frozen=True)
class SpanSearch:
    """What a trace store found of some traces, and whether it keeps spans at all."""

    # False when spans are exported (over OTLP) rather than kept where this process can read them.
    stored_locally: bool
    note: str
    spans: tuple[RecordedSpan, ...] = ()
