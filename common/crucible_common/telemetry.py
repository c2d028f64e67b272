"""OpenTelemetry tracing for one process.

Spans go over OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; otherwise each process appends
them as JSON lines to ``<state_dir>/traces/<process>.jsonl`` so a command can follow a chain of
spans across processes later (``crucible_common.trace_files`` reads them back).

Every write starts a trace; a read (HTTP GET or HEAD) starts one at ``trace_read_ratio``
(``ReadSampler``), and a span with a parent follows its parent, so a trace is whole or absent.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import orjson
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, Sampler, SamplingResult, TraceIdRatioBased
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes


class JsonLinesSpanExporter(SpanExporter):
    """Appends finished spans, one JSON object per line, to a local file.

    Each line carries what following a chain needs (ids, parent, links, times, status,
    attributes, the process's service name) and no more: the SDK's own ``to_json`` serialises
    the whole resource into every span and costs more than the request it describes.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = path.open("ab")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = b"".join(orjson.dumps(span_record(span), default=str) + b"\n" for span in spans)
        with self._lock:
            if self._file is None:
                return SpanExportResult.FAILURE
            self._file.write(lines)
            self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def span_record(span: ReadableSpan) -> dict[str, Any]:
    context = span.get_span_context()
    assert context is not None
    return {
        "name": span.name,
        "service": span.resource.attributes.get(SERVICE_NAME),
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_span_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "kind": span.kind.name,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
        "links": [
            {
                "trace_id": f"{link.context.trace_id:032x}",
                "span_id": f"{link.context.span_id:016x}",
                # What the link is (crucible.link = "recommendation", ...): a chain is followed by it.
                "attributes": dict(link.attributes or {}),
            }
            for link in span.links
        ],
        "events": [
            {"name": e.name, "time_ns": e.timestamp, "attributes": dict(e.attributes or {})} for e in span.events
        ],
    }


def otlp_endpoint() -> str:
    """Where spans are exported over OTLP; "" when they are kept in local files instead."""
    return os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")


def traces_dir(state_dir: Path) -> Path:
    """The directory of the local span files, one ``<process>.jsonl`` a process."""
    return state_dir / "traces"


class ReadSampler(Sampler):
    """Decides for spans without a parent: HTTP reads (GET, HEAD) at ``read_ratio``, the rest always.

    Under ``ParentBased`` (``sampler``), a span with a parent follows its parent's decision, so a
    trace is kept or dropped whole, across processes. Which reads are kept is decided by the trace
    id, as ``TraceIdRatioBased`` does, so every process that sees a root decides it alike.
    """

    def __init__(self, read_ratio: float) -> None:
        self._reads = TraceIdRatioBased(read_ratio)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if attributes and attributes.get("http.request.method") in READS:
            return self._reads.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)
        return ALWAYS_ON.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"ReadSampler{{reads={self._reads.get_description()}}}"


READS = frozenset({"GET", "HEAD"})


def sampler(read_ratio: float) -> Sampler:
    """What every process samples with, unless ``OTEL_TRACES_SAMPLER`` names another."""
    return ParentBased(root=ReadSampler(read_ratio))


def setup_tracing(process_name: str, state_dir: Path, *, read_ratio: float = 1.0) -> TracerProvider:
    """Install the process-wide tracer provider; call once, from the composition root."""
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: f"crucible-{process_name}"}),
        # The standard variable, when set, wins: the SDK then builds the sampler it names.
        sampler=None if os.environ.get("OTEL_TRACES_SAMPLER") else sampler(read_ratio),
    )
    exporter: SpanExporter
    if otlp_endpoint():
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    else:
        exporter = JsonLinesSpanExporter(traces_dir(state_dir) / f"{process_name}.jsonl")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider
