"""A run's lineage on fakes: trace contexts read from a recommendation, the links built from them,
the chain put together from what the run stores, the chat and a trace store."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from crucible_common.telemetry import JsonLinesSpanExporter
from crucible_run.adapters.trace_store import ExportedTraces, LocalTraceFiles
from crucible_run.domain.lineage import ChatMessage, LineageRole, run_lineage
from crucible_run.domain.model import Run, RunMode, RunParameters, RunStatus, Trigger, TriggerSource
from crucible_run.domain.spans import RecordedSpan, SpanLink, SpanRef, SpanSearch, recommendation_span
from crucible_run.service_layer import tracing
from crucible_run.service_layer.handlers import lineage_of

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
RECOMMENDATION = SpanRef("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
CREATE = SpanRef("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
ROOT = SpanRef("5b8aa5a2d2c872e8321cf37308d69df2", "051581bf3cb55c13")
SUMMARY = SpanRef("1e223ff1f80f1c69f8f0b81c1a2d32ad", "6ff2b6c1a5d2e0f3")
CONFIG = {"mode": "full_search", "trace": {"trace_id": RECOMMENDATION.trace_id, "span_id": RECOMMENDATION.span_id}}


def _run(**changes: object) -> Run:
    run = Run(
        id="7d1c1f56-9a1e-4c59-8d1b-2f0d3e8b9a10",
        project_id="1c5d8e2a-0f3b-4e6a-9d7c-5b4a3f2e1d0c",
        mode=RunMode.FULL_SEARCH,
        parameters=RunParameters(2, 2),
        status=RunStatus.COMPLETED,
        trigger=Trigger("click-1", TriggerSource.RUN_CONFIG_PANEL, {"button": "run"}, AT),
        chat_session_id="",
        recommended_message_id="3f2e1d0c-5b4a-4e6a-9d7c-1c5d8e2a0f3b",
        recommended_config_snapshot=CONFIG,
        created_at=AT,
        run_summary_message_id="9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
        trace_id=ROOT.trace_id,
        trace_context={"traceparent": f"00-{ROOT.trace_id}-{ROOT.span_id}-01"},
        create_span=CREATE,
        summary_span=SUMMARY,
    )
    return replace(run, **changes)  # type: ignore[arg-type]


def _span(
    ref: SpanRef, name: str, *, parent: str = "", started: int = 0, service: str = "crucible-run"
) -> RecordedSpan:
    start = AT + timedelta(seconds=started)
    return RecordedSpan(ref, name, service, parent, start, start + timedelta(seconds=1), {}, ())


def _message(message_id: str, content: str, **metadata: object) -> ChatMessage:
    return ChatMessage(message_id, "p", "s", True, content, dict(metadata), AT)


# ---------------------------------------------------------------- trace contexts and links


@pytest.mark.parametrize(
    "value",
    [
        None,
        "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        {"trace_id": RECOMMENDATION.trace_id},
        {"trace_id": RECOMMENDATION.trace_id, "span_id": 7},
        {"trace_id": RECOMMENDATION.trace_id.upper(), "span_id": RECOMMENDATION.span_id},
        {"trace_id": RECOMMENDATION.trace_id[:-1] + "g", "span_id": RECOMMENDATION.span_id},
        {"trace_id": RECOMMENDATION.trace_id, "span_id": RECOMMENDATION.span_id + "0"},
        {"trace_id": "0" * 32, "span_id": RECOMMENDATION.span_id},
        {"trace_id": RECOMMENDATION.trace_id, "span_id": "0" * 16},
    ],
)
def test_a_trace_context_that_is_not_valid_w3c_ids_is_no_span(value: object) -> None:
    assert SpanRef.parse(value) is None
    assert recommendation_span({"mode": "full_search", "trace": value}) is None
    assert tracing.recommendation_link({"trace": value}, "m-1") == []


def test_a_recommendation_with_a_trace_context_gives_a_link_that_says_what_it_is() -> None:
    (link,) = tracing.recommendation_link(CONFIG, "m-1")

    assert (f"{link.context.trace_id:032x}", f"{link.context.span_id:016x}") == (
        RECOMMENDATION.trace_id,
        RECOMMENDATION.span_id,
    )
    assert link.context.is_remote
    assert dict(link.attributes or {}) == {"crucible.link": "recommendation", "crucible.recommendation_id": "m-1"}
    assert recommendation_span(None) is None
    assert recommendation_span({"mode": "full_search"}) is None


def test_a_traceparent_names_its_span() -> None:
    assert SpanRef.of_traceparent({"traceparent": f"00-{ROOT.trace_id}-{ROOT.span_id}-01"}) == ROOT
    assert SpanRef.of_traceparent({}) is None
    assert SpanRef.of_traceparent({"traceparent": "garbage"}) is None


# ---------------------------------------------------------------- the chain


def test_the_chain_is_in_order_with_the_executors_under_the_root_and_the_trace_counted() -> None:
    continued = _span(SpanRef(ROOT.trace_id, "2222222222222222"), "execute run", parent=ROOT.span_id, started=60)
    first = _span(SpanRef(ROOT.trace_id, "1111111111111111"), "execute run", parent=ROOT.span_id, started=1)
    phase = _span(SpanRef(ROOT.trace_id, "3333333333333333"), "phase design", parent=first.ref.span_id, started=2)
    chat = _span(SpanRef(ROOT.trace_id, "4444444444444444"), "chat", parent=phase.ref.span_id, service="crucible-agent")
    elsewhere = _span(SpanRef(CREATE.trace_id, "5555555555555555"), "POST /api/runs", service="crucible-gateway")
    search = SpanSearch(
        True,
        "read from files",
        (
            _span(CREATE, "create run"),
            _span(ROOT, "run"),
            continued,
            first,
            phase,
            chat,
            elsewhere,
            _span(SUMMARY, "post run summary"),
        ),
    )
    recommendation = _message("r", "\n  Run a full search of 2 candidates\nbecause ...")
    summary = _message("s", "**Run 7d1c1f56 summary** ...", run_summary={"summary_label": "Run 7d1c1f56 summary"})

    lineage = run_lineage(_run(), recommendation, summary, search)

    assert [(s.role, s.ref) for s in lineage.spans] == [
        (LineageRole.RECOMMENDATION, RECOMMENDATION),
        (LineageRole.CREATE_RUN, CREATE),
        (LineageRole.EXECUTION, ROOT),
        (LineageRole.EXECUTOR, first.ref),
        (LineageRole.EXECUTOR, continued.ref),
        (LineageRole.SUMMARY, SUMMARY),
    ]
    # Named by the run, not found in the store.
    assert lineage.spans[0].span is None
    assert all(s.span is not None for s in lineage.spans[1:])
    assert lineage.trace_span_count == 5
    assert lineage.trace_services == ("crucible-agent", "crucible-run")
    assert lineage.recommendation is not None
    assert lineage.recommendation.message is not None
    assert lineage.recommendation.message.label == "Run a full search of 2 candidates"
    assert lineage.summary is not None
    assert lineage.summary.message is not None
    assert lineage.summary.message.label == "Run 7d1c1f56 summary"
    assert lineage.recommended_config == CONFIG
    assert (lineage.trigger.id, lineage.trace_id) == ("click-1", ROOT.trace_id)


def test_a_run_not_yet_executed_has_no_trace_and_one_without_recommendation_starts_at_its_creation() -> None:
    created = _run(
        status=RunStatus.CREATED, trace_id="", trace_context={}, summary_span=None, run_summary_message_id=""
    )
    direct = _run(recommended_message_id="", recommended_config_snapshot=None)
    nothing = SpanSearch(True, "read from files")

    before = run_lineage(created, None, None, nothing)
    alone = run_lineage(direct, None, None, nothing)

    assert [s.role for s in before.spans] == [LineageRole.RECOMMENDATION, LineageRole.CREATE_RUN]
    assert (before.trace_id, before.summary, before.trace_span_count) == ("", None, 0)
    assert before.recommendation is not None
    assert before.recommendation.message is None
    assert [s.role for s in alone.spans] == [LineageRole.CREATE_RUN, LineageRole.EXECUTION, LineageRole.SUMMARY]
    assert alone.recommendation is None


@dataclass
class _Chat:
    messages: dict[str, ChatMessage] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    async def chat_message(self, message_id: str) -> ChatMessage | None:
        self.asked.append(message_id)
        return self.messages.get(message_id)


@dataclass
class _Traces:
    spans: tuple[RecordedSpan, ...] = ()
    asked: list[set[str]] = field(default_factory=list)

    async def find(self, trace_ids: Collection[str]) -> SpanSearch:
        self.asked.append(set(trace_ids))
        return SpanSearch(True, "fake", tuple(s for s in self.spans if s.ref.trace_id in trace_ids))


async def test_the_lineage_asks_the_chat_for_both_messages_and_the_store_for_each_trace_once() -> None:
    run = _run()
    chat = _Chat({run.recommended_message_id: _message(run.recommended_message_id, "Try it")})
    traces = _Traces((_span(CREATE, "create run"),))

    lineage = await lineage_of(run, chat, traces)  # type: ignore[arg-type]

    assert chat.asked == [run.recommended_message_id, run.run_summary_message_id]
    assert traces.asked == [{RECOMMENDATION.trace_id, CREATE.trace_id, ROOT.trace_id, SUMMARY.trace_id}]
    # The summary message is gone from the chat: the lineage still names it.
    assert lineage.summary is not None
    assert (lineage.summary.id, lineage.summary.message) == (run.run_summary_message_id, None)
    assert [s.span is not None for s in lineage.spans] == [False, True, False, False]


# ---------------------------------------------------------------- the trace stores


async def test_spans_exported_over_otlp_are_not_stored_and_that_is_no_error() -> None:
    search = await ExportedTraces("http://collector:4317").find({ROOT.trace_id})

    assert search.stored_locally is False
    assert search.spans == ()
    assert "http://collector:4317" in search.note


async def test_local_trace_files_give_back_spans_with_their_links_and_times(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "crucible-run"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("test").start_as_current_span(
        "create run", links=tracing.recommendation_link(CONFIG, "m-1"), attributes={"crucible.run_id": "r"}
    ) as span:
        created = tracing.ref_of(span)
    JsonLinesSpanExporter(tmp_path / "run.jsonl").export(exporter.get_finished_spans())
    assert created is not None

    search = await LocalTraceFiles(tmp_path).find({created.trace_id})

    (found,) = search.spans
    assert search.stored_locally is True
    assert (found.ref, found.name, found.service, found.parent_span_id) == (created, "create run", "crucible-run", "")
    assert found.attributes == {"crucible.run_id": "r"}
    assert found.links == (
        SpanLink(RECOMMENDATION, {"crucible.link": "recommendation", "crucible.recommendation_id": "m-1"}),
    )
    assert found.start is not None
    assert found.end is not None
    assert found.start <= found.end
