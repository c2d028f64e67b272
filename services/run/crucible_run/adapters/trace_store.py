"""The trace store: the span files every process of the stack appends to, or none when spans go over OTLP."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crucible_common.trace_files import read_spans
from crucible_run.domain.spans import RecordedSpan, SpanLink, SpanRef, SpanSearch
from crucible_run.service_layer.ports import TraceStore


class LocalTraceFiles(TraceStore):
    """``<state dir>/traces/*.jsonl``, shared by the processes of one stack (``crucible up``)."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    async def find(self, trace_ids: Collection[str]) -> SpanSearch:
        # Files of every process, read in a thread: they can be large, and reading blocks.
        records = await asyncio.to_thread(read_spans, self._directory, trace_ids)
        # Names the files, not where they are: the answer may leave the host.
        note = "spans read from the stack's local trace files (<state dir>/traces/*.jsonl)"
        return SpanSearch(True, note, tuple(_span(r) for r in records))


class ExportedTraces(TraceStore):
    """Spans go to an OTLP endpoint: nothing is kept here to read back, and that is no error."""

    def __init__(self, endpoint: str) -> None:
        self._endpoint = endpoint

    async def find(self, trace_ids: Collection[str]) -> SpanSearch:
        return SpanSearch(
            False, f"spans are exported over OTLP to {self._endpoint}, not stored locally: look the trace ids up there"
        )


def _span(record: dict[str, Any]) -> RecordedSpan:
    """A record as ``crucible_common.telemetry.span_record`` writes it."""
    return RecordedSpan(
        ref=SpanRef(record["trace_id"], record["span_id"]),
        name=record["name"],
        service=record.get("service") or "",
        parent_span_id=record.get("parent_span_id") or "",
        start=_time(record.get("start_ns")),
        end=_time(record.get("end_ns")),
        attributes=record.get("attributes") or {},
        links=tuple(
            SpanLink(SpanRef(link["trace_id"], link["span_id"]), link.get("attributes") or {})
            for link in record.get("links") or ()
        ),
    )


def _time(nanoseconds: int | None) -> datetime | None:
    return datetime.fromtimestamp(nanoseconds / 1e9, UTC) if nanoseconds else None
