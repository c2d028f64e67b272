"""Which traces are kept: every write, reads at their ratio, children as their parent."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from crucible_common.telemetry import sampler

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736


def _decision(read_ratio: float, method: str | None, parent_sampled: bool | None = None) -> Decision:
    parent = None
    if parent_sampled is not None:
        flags = TraceFlags(TraceFlags.SAMPLED if parent_sampled else TraceFlags.DEFAULT)
        context = SpanContext(TRACE_ID, 0x00F067AA0BA902B7, is_remote=True, trace_flags=flags)
        parent = trace.set_span_in_context(NonRecordingSpan(context))
    attributes = {"http.request.method": method} if method else {}
    result = sampler(read_ratio).should_sample(parent, TRACE_ID, "GET /api/projects/{id}", SpanKind.SERVER, attributes)
    return result.decision


def test_a_root_read_is_kept_at_the_read_ratio() -> None:
    assert _decision(0.0, "GET") is Decision.DROP
    assert _decision(0.0, "HEAD") is Decision.DROP
    assert _decision(1.0, "GET") is Decision.RECORD_AND_SAMPLE


def test_a_root_write_or_a_span_that_is_not_a_request_is_always_kept() -> None:
    for method in ("POST", "PUT", "PATCH", "DELETE", None):
        assert _decision(0.0, method) is Decision.RECORD_AND_SAMPLE


def test_a_read_under_a_parent_follows_the_parents_decision() -> None:
    assert _decision(0.0, "GET", parent_sampled=True) is Decision.RECORD_AND_SAMPLE
    assert _decision(1.0, "POST", parent_sampled=False) is Decision.DROP


def test_the_ratio_decides_by_trace_id_so_about_that_share_of_reads_is_kept() -> None:
    read_sampler = sampler(0.1)
    kept = sum(
        read_sampler.should_sample(None, trace_id, "GET", SpanKind.SERVER, {"http.request.method": "GET"}).decision
        is Decision.RECORD_AND_SAMPLE
        for trace_id in (TracerProvider().id_generator.generate_trace_id() for _ in range(5000))
    )
    assert 350 < kept < 650
