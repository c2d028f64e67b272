"""A run's chain of spans on real Postgres: recommendation → create run → execution → summary.

CreateRun's span links to the span context the recommendation carries; the execution is one
trace under a root stored with the run, even when another process continues it after a crash;
the summary's span links to that root; the lineage puts the chain together from the database,
the (fake) spec service and the trace files.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from crucible_common.telemetry import JsonLinesSpanExporter
from crucible_run.adapters import tables as t
from crucible_run.adapters.trace_store import LocalTraceFiles
from crucible_run.domain.lineage import LineageRole
from crucible_run.domain.model import Run, RunMode, RunParameters, RunStatus, TriggerSource
from crucible_run.domain.spans import SpanRef
from crucible_run.domain.summary import summary_label
from crucible_run.service_layer import commands as c
from crucible_run.service_layer import handlers as h
from crucible_run.service_layer import tracing
from crucible_run.service_layer.pipeline import RunExecutor
from tests.integration.run_fakes import Crash, FakeModels, FakeSpec
from tests.integration.run_harness import Harness, Idle, run_engine

pytestmark = pytest.mark.integration

RECOMMENDATION = SpanRef("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
_FINISHED = InMemorySpanExporter()


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    """Every span this process finishes from here on (a process has one tracer provider, set once)."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    provider.add_span_processor(SimpleSpanProcessor(_FINISHED))
    return _FINISHED


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with run_engine(database_url) as engine:
        yield engine


@pytest.fixture
async def harness(engine: AsyncEngine, spans: InMemorySpanExporter) -> AsyncIterator[Harness]:
    spans.clear()
    made = Harness.make(engine)
    yield made
    await made.close()


def _recommended(harness: Harness, trace_context: object) -> tuple[str, str, str]:
    """A project, its chat session and an Architect message recommending a run with ``trace_context``."""
    project = harness.spec.project()
    session = harness.spec.session(project)
    config = {"mode": "full_search", "parameters": {"num_candidates": 2, "num_scenarios": 2}, "trace": trace_context}
    return project, session, harness.spec.recommend(project, session, config)


async def _create(harness: Harness, project: str, session: str, message: str) -> Run:
    return await h.create_run(
        c.CreateRun(
            project,
            RunMode.FULL_SEARCH,
            RunParameters(num_candidates=2, num_scenarios=2),
            chat_session_id=session,
            recommended_message_id=message,
            ui_trigger_id=str(uuid.uuid4()),
            ui_trigger_source=TriggerSource.INTEGRATION_TEST,
            ui_trigger_metadata={"button": "run it"},
        ),
        harness.deps,
    )


def _of_run(spans: InMemorySpanExporter, name: str, run_id: str) -> list[ReadableSpan]:
    found = [
        s
        for s in spans.get_finished_spans()
        if s.name == name and (s.attributes or {}).get("crucible.run_id") == run_id
    ]
    return sorted(found, key=lambda s: s.start_time or 0)


def _ref(span: ReadableSpan) -> SpanRef:
    assert span.context is not None
    return SpanRef(f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}")


def _links(span: ReadableSpan) -> dict[str, SpanRef]:
    return {
        str((link.attributes or {})[tracing.LINK]): SpanRef(
            f"{link.context.trace_id:032x}", f"{link.context.span_id:016x}"
        )
        for link in span.links
    }


async def test_a_recommendation_its_run_and_its_summary_are_one_chain(
    harness: Harness, spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    project, session, message = _recommended(
        harness, {"trace_id": RECOMMENDATION.trace_id, "span_id": RECOMMENDATION.span_id}
    )

    run = await _create(harness, project, session, message)
    started = await h.execute_run(c.ExecuteRun(run.id), harness.deps)
    done = await harness.until_over(run.id)

    assert done.status is RunStatus.COMPLETED, done.failure_reason
    # CreateRun's span links to the recommendation, and says so.
    (create,) = _of_run(spans, tracing.CREATE_RUN_SPAN, run.id)
    (link,) = create.links
    assert _links(create) == {"recommendation": RECOMMENDATION}
    assert (link.attributes or {})["crucible.recommendation_id"] == message
    assert run.create_span == done.create_span == _ref(create)
    # The execution: a trace of its own, known as soon as ExecuteRun answers, linked back.
    (root,) = _of_run(spans, tracing.RUN_SPAN, run.id)
    assert root.parent is None
    assert started.trace_id == done.trace_id == _ref(root).trace_id != _ref(create).trace_id
    assert _links(root) == {"create_run": _ref(create), "recommendation": RECOMMENDATION}
    (executor,) = _of_run(spans, tracing.EXECUTOR_SPAN, run.id)
    assert executor.parent is not None
    assert executor.parent.span_id == root.context.span_id
    assert (executor.attributes or {})["crucible.run.continued"] is False
    assert _links(executor) == {"run": _ref(root)}
    in_trace = [s for s in spans.get_finished_spans() if _ref(s).trace_id == done.trace_id]
    phases = sorted(s.name for s in in_trace if s.name.startswith("phase "))
    assert phases == ["phase design", "phase evaluate", "phase rank", "phase scenarios"]
    assert all(
        s.parent is not None and s.parent.span_id == executor.context.span_id for s in in_trace if s.name in phases
    )
    # The summary's span: a trace of its own, linked to the run's root, naming the message.
    (summary,) = _of_run(spans, tracing.SUMMARY_SPAN, run.id)
    assert summary.parent is None
    assert _links(summary) == {"run": _ref(root)}
    assert (summary.attributes or {})["crucible.summary_message_id"] == done.run_summary_message_id
    assert done.summary_span == _ref(summary)

    # The lineage, from the database, the chat and the trace files.
    traces = tmp_path / "traces"
    JsonLinesSpanExporter(traces / "run.jsonl").export(spans.get_finished_spans())
    lineage = await h.get_lineage(run.id, replace(harness.deps, traces=LocalTraceFiles(traces)))

    assert [(s.role, s.span is not None) for s in lineage.spans] == [
        # Nobody recorded the recommendation's span in these files: named, not found.
        (LineageRole.RECOMMENDATION, False),
        (LineageRole.CREATE_RUN, True),
        (LineageRole.EXECUTION, True),
        (LineageRole.EXECUTOR, True),
        (LineageRole.SUMMARY, True),
    ]
    assert [s.ref for s in lineage.spans] == [RECOMMENDATION, _ref(create), _ref(root), _ref(executor), _ref(summary)]
    create_found = lineage.spans[1].span
    assert create_found is not None
    assert [(x.target, x.attributes[tracing.LINK]) for x in create_found.links] == [(RECOMMENDATION, "recommendation")]
    assert lineage.recommendation is not None
    assert lineage.recommendation.id == message
    assert lineage.recommendation.message is not None
    assert lineage.recommendation.message.label == "Run a full search"
    assert lineage.recommended_config is not None
    assert lineage.recommended_config["trace"]["span_id"] == RECOMMENDATION.span_id
    assert (lineage.trigger.id, lineage.trigger.metadata) == (run.trigger.id, {"button": "run it"})
    assert lineage.trace_id == done.trace_id
    assert lineage.summary is not None
    assert lineage.summary.message is not None
    assert (lineage.summary.id, lineage.summary.message.label) == (done.run_summary_message_id, summary_label(run.id))
    assert lineage.spans_stored_locally is True
    assert lineage.trace_span_count == len(in_trace)


async def test_a_run_continued_after_a_crash_stays_in_its_one_trace(
    engine: AsyncEngine, spans: InMemorySpanExporter
) -> None:
    spans.clear()
    spec, models = FakeSpec(), FakeModels(crash_at_evaluation=3)
    first = Harness.make(engine, models, owner="p1", spec=spec, launch=False)
    run = await first.create(spec.project(), num_candidates=2, num_scenarios=3)
    await h.execute_run(c.ExecuteRun(run.id), first.deps)
    assert isinstance(first.scheduler, Idle)
    # The first process dies in the middle of the evaluations; its lease lapses.
    with pytest.raises(Crash):
        await RunExecutor(first.pipeline, first.scheduler.launched[-1]).run()
    async with engine.begin() as conn:
        await conn.execute(
            update(t.runs).where(t.runs.c.id == run.id).values(lease_expires_at=datetime(2000, 1, 1, tzinfo=UTC))
        )
    second = Harness.make(engine, models, owner="p2", spec=spec)
    try:
        for lease in await second.pipeline.leases.claim_stale(10):
            second.scheduler.launch(lease)
        done = await second.until_over(run.id)
    finally:
        await second.close()

    assert done.status is RunStatus.COMPLETED, done.failure_reason
    (root,) = _of_run(spans, tracing.RUN_SPAN, run.id)
    executors = _of_run(spans, tracing.EXECUTOR_SPAN, run.id)
    assert [(e.attributes or {})["crucible.run.continued"] for e in executors] == [False, True]
    assert all(e.parent is not None and e.parent.span_id == root.context.span_id for e in executors)
    assert [_links(e) for e in executors] == [{"run": _ref(root)}] * 2
    assert {_ref(e).trace_id for e in executors} == {_ref(root).trace_id} == {done.trace_id}
    evaluating = [s for s in spans.get_finished_spans() if s.name == "phase evaluate"]
    assert {_ref(s).trace_id for s in evaluating} == {done.trace_id}
    assert len(evaluating) == 2
    (summary,) = _of_run(spans, tracing.SUMMARY_SPAN, run.id)
    assert _links(summary) == {"run": _ref(root)}


@pytest.mark.parametrize(
    "trace_context",
    [
        None,
        "4bf92f3577b34da6a3ce929d0e0e4736",
        {"trace_id": "4BF92F3577B34DA6A3CE929D0E0E4736", "span_id": "00f067aa0ba902b7"},
        {"trace_id": "0" * 32, "span_id": "00f067aa0ba902b7"},
        {"trace_id": RECOMMENDATION.trace_id, "span_id": "00f067aa0ba902"},
        {"trace_id": RECOMMENDATION.trace_id},
    ],
    ids=["none", "not-an-object", "upper-case", "all-zeros", "short-span-id", "no-span-id"],
)
async def test_a_recommendation_without_a_valid_trace_context_still_makes_a_run(
    harness: Harness, spans: InMemorySpanExporter, trace_context: object
) -> None:
    project, session, message = _recommended(harness, trace_context)

    run = await _create(harness, project, session, message)
    await h.execute_run(c.ExecuteRun(run.id), harness.deps)
    done = await harness.until_over(run.id)

    assert done.status is RunStatus.COMPLETED
    (create,) = _of_run(spans, tracing.CREATE_RUN_SPAN, run.id)
    assert create.links == ()
    (root,) = _of_run(spans, tracing.RUN_SPAN, run.id)
    assert set(_links(root)) == {"create_run"}
    lineage = await h.get_lineage(run.id, harness.deps)
    assert [s.role for s in lineage.spans] == [
        LineageRole.CREATE_RUN,
        LineageRole.EXECUTION,
        LineageRole.SUMMARY,
    ]


async def test_a_lineage_without_local_spans_still_names_every_link(harness: Harness) -> None:
    project, session, message = _recommended(
        harness, {"trace_id": RECOMMENDATION.trace_id, "span_id": RECOMMENDATION.span_id}
    )
    created = await _create(harness, project, session, message)

    before = await h.get_lineage(created.id, harness.deps)
    await h.execute_run(c.ExecuteRun(created.id), harness.deps)
    done = await harness.until_over(created.id)
    after = await h.get_lineage(created.id, harness.deps)

    # Not executed yet: the recommendation and the creation, no trace, no summary.
    assert [s.role for s in before.spans] == [LineageRole.RECOMMENDATION, LineageRole.CREATE_RUN]
    assert (before.trace_id, before.summary) == ("", None)
    # Spans exported over OTLP: the lineage says so, names each span by its ids, and fails nothing.
    assert after.spans_stored_locally is False
    assert "OTLP" in after.spans_note
    assert [(s.role, s.span) for s in after.spans] == [
        (LineageRole.RECOMMENDATION, None),
        (LineageRole.CREATE_RUN, None),
        (LineageRole.EXECUTION, None),
        (LineageRole.SUMMARY, None),
    ]
    assert after.spans[2].ref.trace_id == after.trace_id == done.trace_id
    assert (after.trace_span_count, after.trace_services) == (0, ())
