"""The run's spans and their links: recommendation → create run → execution → summary.

CreateRun's span links to the span that produced the recommendation. ExecuteRun starts the run's
execution trace with a root span of its own, which links back to CreateRun's span (and the
recommendation), and stores the root's context on the run; each process that executes the run,
the first and any that continues it after a crash, works in a span under that root, so the
phases and the model calls (the agent service's spans, through gRPC context propagation) are all
one trace. The span that posts the summary starts a trace of its own that links to the root (so
does the one that snapshots a failed run).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanContext, TraceFlags

from crucible_run.domain.model import JsonObject, Run, RunPhase
from crucible_run.domain.spans import SpanRef, recommendation_span

tracer = trace.get_tracer("crucible.run")

CREATE_RUN_SPAN = "create run"
RUN_SPAN = "run"
EXECUTOR_SPAN = "execute run"
SUMMARY_SPAN = "post run summary"
FAILURE_SNAPSHOT_SPAN = "snapshot failed run"
# Each link says what it points at.
LINK = "crucible.link"


def link(ref: SpanRef | None, kind: str, **attributes: str) -> list[trace.Link]:
    """A link to ``ref`` that says it is ``kind``; none when there is no span to link to."""
    if ref is None:
        return []
    # The linked span's sampling decision is not known here, and a link does not need it.
    context = SpanContext(int(ref.trace_id, 16), int(ref.span_id, 16), is_remote=True, trace_flags=TraceFlags(0))
    return [trace.Link(context, {LINK: kind, **attributes})]


def recommendation_link(config: JsonObject | None, message_id: str) -> list[trace.Link]:
    """A link to the span that produced the recommended config, when the config carries its context."""
    return link(recommendation_span(config), "recommendation", **{"crucible.recommendation_id": message_id})


def run_link(run: Run) -> list[trace.Link]:
    """A link to the root of the run's execution trace, once it has one."""
    return link(SpanRef.of_traceparent(run.trace_context), "run", **{"crucible.run_id": run.id})


@contextmanager
def execution_root(run: Run, phases: tuple[RunPhase, ...]) -> Iterator[dict[str, str]]:
    """The root span of the run's execution trace, for the caller to store its context (yielded).

    A trace of its own, not the ExecuteRun request's: the run outlives the request, and every
    process that executes it continues this trace. It links back to where the run came from.
    """
    request = ref_of(trace.get_current_span())
    with tracer.start_as_current_span(
        RUN_SPAN,
        context=Context(),
        links=[
            *link(run.create_span, "create_run"),
            *recommendation_link(run.recommended_config_snapshot, run.recommended_message_id),
            *link(request, "execute_request"),
        ],
        attributes={
            "crucible.run_id": run.id,
            "crucible.project_id": run.project_id,
            "crucible.run.mode": run.mode.value,
            "crucible.run.phases": [p.value for p in phases],
        },
    ) as root:
        yield carrier_of(root)


@contextmanager
def after_end(name: str, run: Run) -> Iterator[trace.Span]:
    """A span of a step after the run's end (its summary, its failure snapshot).

    A trace of its own, linked to the run's: the step is not part of the execution, and may be
    done by another process, long after (a cancel, a service that was away).
    """
    with tracer.start_as_current_span(
        name,
        context=Context(),
        links=run_link(run),
        attributes={"crucible.run_id": run.id, "crucible.project_id": run.project_id},
    ) as span:
        yield span


def ref_of(span: trace.Span) -> SpanRef | None:
    context = span.get_span_context()
    return SpanRef(f"{context.trace_id:032x}", f"{context.span_id:016x}") if context.is_valid else None


def carrier_of(span: trace.Span) -> dict[str, str]:
    """The span's W3C context, to store: a later process continues its trace from it."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


def under(carrier: dict[str, str]) -> Context:
    """The context whose parent is the stored span (a new trace when nothing is stored)."""
    return propagate.extract(carrier, context=Context())
