"""Trace context over real gRPC calls: TracedChannel on the client, the service interceptor's span."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from crucible_common.errors import NotFound
from crucible_common.grpc_server import ServiceDefinition, create_server
from crucible_common.grpc_tracing import TracedChannel

_EXPORTER = InMemorySpanExporter()
# The health service's own messages, served under a traced name: a real generated service.
CHECK = "/crucible.test.v1.Probe/Check"
WATCH = "/crucible.test.v1.Probe/Watch"
SPAN_WAIT_SECONDS = 5.0


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    return _EXPORTER


async def _check(request: health_pb2.HealthCheckRequest, context: Any) -> health_pb2.HealthCheckResponse:
    if request.service == "missing":
        raise NotFound("no such probe", reason="PROBE_NOT_FOUND")
    return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


async def _watch(request: health_pb2.HealthCheckRequest, context: Any) -> AsyncIterator[health_pb2.HealthCheckResponse]:
    for _ in range(3):
        yield health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


def _register(server: grpc.aio.Server) -> None:
    handlers = {
        "Check": grpc.unary_unary_rpc_method_handler(
            _check,
            request_deserializer=health_pb2.HealthCheckRequest.FromString,
            response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
        ),
        "Watch": grpc.unary_stream_rpc_method_handler(
            _watch,
            request_deserializer=health_pb2.HealthCheckRequest.FromString,
            response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("crucible.test.v1.Probe", handlers)])


@pytest.fixture
async def channel(spans: InMemorySpanExporter) -> AsyncIterator[TracedChannel]:
    server, port, _ = create_server(
        "127.0.0.1:0", [ServiceDefinition("crucible.test.v1.Probe", _register)], domain="test.crucible"
    )
    await server.start()
    try:
        async with TracedChannel(grpc.aio.insecure_channel(f"127.0.0.1:{port}")) as channel:
            spans.clear()
            yield channel
    finally:
        await server.stop(None)


async def _one(spans: InMemorySpanExporter, name: str, kind: SpanKind) -> ReadableSpan:
    """The one span of that name and kind. The server's may end just after the client has its answer
    (the status is sent before the handler's span closes), so it is waited for, briefly."""
    deadline = asyncio.get_running_loop().time() + SPAN_WAIT_SECONDS
    while True:
        found = [s for s in spans.get_finished_spans() if s.name == name and s.kind is kind]
        if found or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.01)
    assert len(found) == 1, [(s.name, s.kind) for s in spans.get_finished_spans()]
    return found[0]


def _unary(channel: grpc.aio.Channel, method: str) -> Any:
    return channel.unary_unary(
        method,
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )


async def test_a_call_continues_the_callers_trace_on_the_server(
    channel: TracedChannel, spans: InMemorySpanExporter
) -> None:
    with trace.get_tracer("test").start_as_current_span("caller") as caller:
        response = await _unary(channel, CHECK)(health_pb2.HealthCheckRequest(service="x"))
    assert response.status == health_pb2.HealthCheckResponse.SERVING
    client = await _one(spans, CHECK, SpanKind.CLIENT)
    server = await _one(spans, CHECK, SpanKind.SERVER)
    assert client.context.trace_id == caller.get_span_context().trace_id
    assert client.parent is not None
    assert client.parent.span_id == caller.get_span_context().span_id
    assert server.context.trace_id == client.context.trace_id
    assert server.parent is not None
    assert server.parent.span_id == client.context.span_id
    for span in (client, server):
        assert span.attributes is not None
        assert span.attributes["rpc.system"] == "grpc"
        assert span.attributes["rpc.service"] == "crucible.test.v1.Probe"
        assert span.attributes["rpc.method"] == "Check"
        assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.OK.value[0]
        assert span.status.status_code is StatusCode.UNSET


async def test_a_refused_call_records_its_status_on_both_spans(
    channel: TracedChannel, spans: InMemorySpanExporter
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _unary(channel, CHECK)(health_pb2.HealthCheckRequest(service="missing"))
    assert refused.value.code() is grpc.StatusCode.NOT_FOUND
    for kind in (SpanKind.CLIENT, SpanKind.SERVER):
        span = await _one(spans, CHECK, kind)
        assert span.attributes is not None
        assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
        assert span.status.status_code is StatusCode.ERROR


async def test_a_server_stream_is_one_span_each_side_ending_with_the_stream(
    channel: TracedChannel, spans: InMemorySpanExporter
) -> None:
    watch = channel.unary_stream(
        WATCH,
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    received = [r async for r in watch(health_pb2.HealthCheckRequest())]
    assert len(received) == 3
    client = await _one(spans, WATCH, SpanKind.CLIENT)
    server = await _one(spans, WATCH, SpanKind.SERVER)
    assert server.parent is not None
    assert server.parent.span_id == client.context.span_id
    assert server.attributes is not None
    assert server.attributes["rpc.grpc.status_code"] == 0


async def test_health_checks_are_not_traced(channel: TracedChannel, spans: InMemorySpanExporter) -> None:
    await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert [s.name for s in spans.get_finished_spans()] == []
