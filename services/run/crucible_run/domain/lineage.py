"""A run's lineage: recommendation → create run → execution → summary, and the spans that link them.

The ids of each link are the run's own (stored with it, or in the recommendation it copied); the
spans come from wherever spans are kept, and may be missing there (exported over OTLP, not
flushed yet, lost with a process that crashed). A lineage names every link it knows of either way.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from crucible_run.domain.model import JsonObject, Run, Trigger
from crucible_run.domain.spans import RecordedSpan, SpanRef, SpanSearch, recommendation_span

LABEL_CHARS = 200


class LineageRole(enum.StrEnum):
    RECOMMENDATION = "recommendation"
    CREATE_RUN = "create_run"
    EXECUTION = "execution"
    # A process executing the run, under the execution root (several when it was continued).
    EXECUTOR = "executor"
    SUMMARY = "summary"


@dataclass(frozen=True)
class ChatMessage:
    """A chat message as the spec service has it: the run reads its recommendation and its summary."""

    id: str
    project_id: str
    chat_session_id: str
    from_agent: bool
    content: str
    metadata: JsonObject
    created_at: datetime | None

    @property
    def label(self) -> str:
        """A run summary's label, else the message's first line (at most ``LABEL_CHARS``)."""
        summary = self.metadata.get("run_summary")
        if isinstance(summary, dict) and isinstance(summary.get("summary_label"), str):
            return str(summary["summary_label"])
        return next((line.strip() for line in self.content.splitlines() if line.strip()), "")[:LABEL_CHARS]


@dataclass(frozen=True)
class LinkedMessage:
    """A message the run names, with what the spec service has of it (None: not there any more)."""

    id: str
    message: ChatMessage | None


@dataclass(frozen=True)
class LineageSpan:
    role: LineageRole
    ref: SpanRef
    # None when the trace store does not have it.
    span: RecordedSpan | None


@dataclass(frozen=True)
class RunLineage:
    run_id: str
    project_id: str
    recommendation: LinkedMessage | None
    recommended_config: JsonObject | None
    trigger: Trigger
    trace_id: str
    summary: LinkedMessage | None
    spans: tuple[LineageSpan, ...]
    spans_stored_locally: bool
    spans_note: str
    # The spans of the execution trace the store has, and the services they come from.
    trace_span_count: int
    trace_services: tuple[str, ...]


def lineage_refs(run: Run) -> list[tuple[LineageRole, SpanRef]]:
    """The spans of the run's chain whose ids the run knows, in the chain's order."""
    refs = [
        (LineageRole.RECOMMENDATION, recommendation_span(run.recommended_config_snapshot)),
        (LineageRole.CREATE_RUN, run.create_span),
        (LineageRole.EXECUTION, SpanRef.of_traceparent(run.trace_context)),
        (LineageRole.SUMMARY, run.summary_span),
    ]
    return [(role, ref) for role, ref in refs if ref is not None]


def run_lineage(
    run: Run, recommendation: ChatMessage | None, summary: ChatMessage | None, search: SpanSearch
) -> RunLineage:
    """The run's chain from what the run stores, the messages it names and the spans found of its traces."""
    found = {s.ref: s for s in search.spans}
    spans: list[LineageSpan] = []
    for role, ref in lineage_refs(run):
        spans.append(LineageSpan(role, ref, found.get(ref)))
        if role is LineageRole.EXECUTION:
            # The executors are the root's children: their ids are not stored, each process
            # that executes the run makes its own under the root.
            executors = [s for s in search.spans if s.ref.trace_id == ref.trace_id and s.parent_span_id == ref.span_id]
            executors.sort(key=lambda s: s.start.timestamp() if s.start else 0.0)
            spans += [LineageSpan(LineageRole.EXECUTOR, s.ref, s) for s in executors]
    in_trace = [s for s in search.spans if run.trace_id and s.ref.trace_id == run.trace_id]
    return RunLineage(
        run_id=run.id,
        project_id=run.project_id,
        recommendation=LinkedMessage(run.recommended_message_id, recommendation)
        if run.recommended_message_id
        else None,
        recommended_config=run.recommended_config_snapshot,
        trigger=run.trigger,
        trace_id=run.trace_id,
        summary=LinkedMessage(run.run_summary_message_id, summary) if run.run_summary_message_id else None,
        spans=tuple(spans),
        spans_stored_locally=search.stored_locally,
        spans_note=search.note,
        trace_span_count=len(in_trace),
        trace_services=tuple(sorted({s.service for s in in_trace if s.service})),
    )
