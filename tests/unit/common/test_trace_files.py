"""Spans written by the JSON-lines exporter and read back by trace id, whatever else the files hold."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from crucible_common import trace_files
from crucible_common.telemetry import JsonLinesSpanExporter
from crucible_common.trace_files import read_spans


def _spans(service: str, count: int, *, link_to: trace.SpanContext | None = None) -> list[ReadableSpan]:
    """``count`` traces of one parent and one child each, recorded by ``service``."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    for _ in range(count):
        links = [trace.Link(link_to, {"crucible.link": "recommendation"})] if link_to else []
        with tracer.start_as_current_span("parent", links=links), tracer.start_as_current_span("child"):
            pass
    provider.shutdown()
    return list(exporter.get_finished_spans())


def _trace_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"{span.context.trace_id:032x}"


def test_only_the_spans_of_the_traces_asked_for_come_back_with_their_links(tmp_path: Path) -> None:
    spec = _spans("crucible-spec", 3)
    wanted = spec[1].context
    assert wanted is not None
    # A run's spans in another file link to a span of the wanted trace: they are not of it.
    run = _spans("crucible-run", 2, link_to=wanted)
    JsonLinesSpanExporter(tmp_path / "spec.jsonl").export(spec)
    JsonLinesSpanExporter(tmp_path / "run.jsonl").export(run)

    found = read_spans(tmp_path, [_trace_id(spec[1]), _trace_id(run[0])])

    assert sorted((r["service"], r["name"]) for r in found) == [
        ("crucible-run", "child"),
        ("crucible-run", "parent"),
        ("crucible-spec", "child"),
        ("crucible-spec", "parent"),
    ]
    (linking,) = [r for r in found if r["links"]]
    assert linking["links"] == [
        {
            "trace_id": _trace_id(spec[1]),
            "span_id": f"{wanted.span_id:016x}",
            "attributes": {"crucible.link": "recommendation"},
        }
    ]


def test_large_files_are_read_in_blocks_whose_edges_cut_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spans = _spans("crucible-agent", 40)
    JsonLinesSpanExporter(tmp_path / "agent.jsonl").export(spans)
    # Blocks far smaller than a line: every line is cut by a block's edge at least once.
    monkeypatch.setattr(trace_files, "BLOCK_BYTES", 97)
    wanted = {_trace_id(spans[0]), _trace_id(spans[39]), _trace_id(spans[20])}

    found = read_spans(tmp_path, wanted)

    assert len(found) == 6
    assert {r["trace_id"] for r in found} == wanted


def test_a_line_still_being_written_and_other_files_are_passed_over(tmp_path: Path) -> None:
    spans = _spans("crucible-run", 2)
    path = tmp_path / "run.jsonl"
    JsonLinesSpanExporter(path).export(spans[:2])
    whole = path.read_bytes()
    # Another process is appending a span of the same trace: half its line is there.
    path.write_bytes(whole + whole.splitlines(keepends=True)[0][:120])
    (tmp_path / "notes.txt").write_text(_trace_id(spans[0]))

    found = read_spans(tmp_path, [_trace_id(spans[0])])

    assert len(found) == 2
    assert read_spans(tmp_path / "missing", [_trace_id(spans[0])]) == []
    assert read_spans(tmp_path, ["", ""]) == []
