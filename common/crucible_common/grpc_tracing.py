"""Trace context across gRPC calls: a client span per call, a server span per handled call.

Why not ``opentelemetry-instrumentation-grpc``'s interceptors: any client interceptor moves every
``grpc.aio`` call onto its intercepted path (an extra task and wrapper per call), and the server
interceptor wraps every handler again. Together they doubled the CPU of a call
(``make bench BENCH=gateway_read`` and ``run_pipeline`` stand on millions of such calls). Here the
client side wraps the channel's multi-callables, which keeps grpc's direct call path; the server
side is a context manager that the one service interceptor (``grpc_server.ErrorInterceptor``)
enters around the handler it already wraps. Spans keep the instrumentation's names
(``/package.Service/Method``), kinds and ``rpc.*`` attributes, and W3C ``traceparent`` metadata.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

TRACER_NAME = "crucible_common.grpc"
# Health checks and reflection are the supervisor's and tools' chatter, not work to follow.
UNTRACED_PREFIXES = ("/grpc.health.", "/grpc.reflection.")

_STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}


@cache
def _tracer() -> trace.Tracer:
    # Asked at the first call, not at import: the provider is installed by the composition root
    # (one asked earlier is a proxy that follows it). Once: get_tracer costs more than a span.
    return trace.get_tracer(TRACER_NAME)


def _rpc_attributes(method: str) -> dict[str, str]:
    service, _, name = method.lstrip("/").rpartition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}


def traced(method: str) -> bool:
    return not method.startswith(UNTRACED_PREFIXES)


# ---------------------------------------------------------------- server side


@contextmanager
def server_span(method: str, metadata: Iterable[tuple[str, str | bytes]] | None) -> Iterator[Span]:
    """The SERVER span of one handled call, current while the handler runs, continuing the caller's
    ``traceparent``. The caller sets the outcome with ``set_code``; an escaping exception is ERROR."""
    carrier = {key: value for key, value in metadata or () if isinstance(value, str)}
    parent = propagate.extract(carrier)
    with _tracer().start_as_current_span(
        method,
        context=parent,
        kind=SpanKind.SERVER,
        attributes=_rpc_attributes(method),
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


def set_code(span: Span, code: grpc.StatusCode, details: str = "") -> None:
    """Record a call's status on its span: the numeric code, and ERROR unless OK."""
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code is not grpc.StatusCode.OK:
        span.set_status(Status(StatusCode.ERROR, f"{code.name}: {details}" if details else code.name))


# ---------------------------------------------------------------- client side


class _TracedMultiCallable:
    """One method of a channel: each call gets a CLIENT span and carries its ``traceparent``."""

    def __init__(self, method: str, inner: Any) -> None:
        self._method = method
        self._inner = inner
        self._attributes = _rpc_attributes(method)

    def __call__(self, request: Any = None, *, metadata: Any = None, **kwargs: Any) -> Any:
        span = _tracer().start_span(self._method, kind=SpanKind.CLIENT, attributes=self._attributes)
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span, otel_context.get_current()))
        outgoing = (*tuple(metadata or ()), *carrier.items())
        try:
            call = self._inner(request, metadata=outgoing, **kwargs)
        except BaseException:
            span.set_status(Status(StatusCode.ERROR))
            span.end()
            raise
        call.add_done_callback(lambda done: _end_client_span(span, done))
        return call


def _end_client_span(span: Span, call: Any) -> None:
    # The call is over, so its status is there; grpc.aio offers it only through a coroutine, and a
    # task per call to await it would cost more than the span, so it is read where grpc keeps it.
    status = getattr(getattr(call, "_cython_call", None), "_status", None)
    if status is not None:
        code = _STATUS_CODES.get(status.code(), grpc.StatusCode.UNKNOWN)
        set_code(span, code, status.details())
    elif call.cancelled():
        set_code(span, grpc.StatusCode.CANCELLED)
    span.end()


class TracedChannel(grpc.aio.Channel):
    """A ``grpc.aio`` channel whose every call (but health checks and reflection) is traced."""

    def __init__(self, inner: grpc.aio.Channel) -> None:
        self._inner = inner

    def _wrap(self, method: str, inner: Any) -> Any:
        return _TracedMultiCallable(method, inner) if traced(method) else inner

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._wrap(method, self._inner.unary_unary(method, *args, **kwargs))

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._wrap(method, self._inner.unary_stream(method, *args, **kwargs))

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._wrap(method, self._inner.stream_unary(method, *args, **kwargs))

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._wrap(method, self._inner.stream_stream(method, *args, **kwargs))

    async def __aenter__(self) -> TracedChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._inner.close(None)

    async def close(self, grace: float | None = None) -> None:
        await self._inner.close(grace)

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self._inner.get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self._inner.wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self._inner.channel_ready()
