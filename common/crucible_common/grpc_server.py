"""The gRPC server bootstrap every service uses.

``create_server`` builds a ``grpc.aio`` server with health, reflection, tracing and the error
interceptor, bound to an address (port 0 picks a free one, for tests); ``serve`` runs it until
SIGTERM/SIGINT and then stops it gracefully.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status

from crucible_common.database import database_unavailable
from crucible_common.errors import CrucibleError, Unavailable, ValidationFailed, to_status
from crucible_common.grpc_tracing import server_span, set_code, traced
from crucible_common.inputs import message_violations
from crucible_common.tls import Tls

logger = logging.getLogger(__name__)

Registration = Callable[[grpc.aio.Server], None]
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


@dataclass(frozen=True)
class ServiceDefinition:
    """One gRPC service a server hosts: its full name and how to add its servicer."""

    full_name: str
    register: Registration


def check_request(request: Message) -> None:
    """Refuse a request any of whose fields carries what no field may (``crucible_common.inputs``)."""
    violations = message_violations(request)
    if violations:
        raise ValidationFailed(violations)


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Maps domain exceptions to canonical gRPC status with ``google.rpc`` details, once.

    A ``CrucibleError`` becomes its own code; a lost database becomes UNAVAILABLE; anything else
    is logged with its traceback and answered INTERNAL without leaking it. Before the handler,
    every request is checked for what no field of any request may carry (``check_request``):
    this is where every request of every service enters, so no handler has to remember it. The
    call's SERVER span is opened here too (``grpc_tracing``), around all of that.
    """

    def __init__(self, domain: str) -> None:
        self._domain = domain
        self._wrapped: dict[str, Handler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None:
            return cached
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        wrapped = self._wrap(handler, method)
        self._wrapped[method] = wrapped
        return wrapped

    def _wrap(self, handler: Handler, method: str) -> Handler:
        tracing = traced(method)
        if handler.unary_unary is not None:
            unary: Any = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                if not tracing:
                    return await self._handle(unary, request, context, method)
                with server_span(method, context.invocation_metadata()) as span:
                    try:
                        response = await self._handle(unary, request, context, method)
                    except BaseException as exc:
                        set_code(span, _code_of(exc, context))
                        raise
                    set_code(span, grpc.StatusCode.OK)
                    return response

            return grpc.unary_unary_rpc_method_handler(
                unary_unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            stream: Any = handler.unary_stream

            async def unary_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                if not tracing:
                    async for item in self._stream(stream, request, context, method):
                        yield item
                    return
                with server_span(method, context.invocation_metadata()) as span:
                    try:
                        async for item in self._stream(stream, request, context, method):
                            yield item
                    except BaseException as exc:
                        set_code(span, _code_of(exc, context))
                        raise
                    set_code(span, grpc.StatusCode.OK)

            return grpc.unary_stream_rpc_method_handler(
                unary_stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    async def _handle(self, unary: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any], method: str) -> Any:
        try:
            check_request(request)
            return await unary(request, context)
        except Exception as exc:
            await self._abort(exc, context, method)

    async def _stream(
        self, stream: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any], method: str
    ) -> AsyncIterator[Any]:
        try:
            check_request(request)
            async for item in stream(request, context):
                yield item
        except Exception as exc:
            await self._abort(exc, context, method)

    async def _abort(self, exc: Exception, context: grpc.aio.ServicerContext[Any, Any], method: str) -> None:
        if isinstance(exc, asyncio.CancelledError | grpc.aio.AbortError):
            raise exc
        error: CrucibleError
        if isinstance(exc, CrucibleError):
            error = exc
        elif database_unavailable(exc):
            logger.warning("%s: database unavailable: %s", method, exc)
            error = Unavailable("the database is unavailable; retry shortly", reason="DATABASE_UNAVAILABLE")
        elif isinstance(exc, OSError | ConnectionError):
            logger.warning("%s: dependency unavailable: %s", method, exc)
            error = Unavailable("a dependency is unavailable; retry shortly", reason="DEPENDENCY_UNAVAILABLE")
        else:
            logger.exception("%s failed unexpectedly", method)
            error = CrucibleError("internal error", reason="INTERNAL")
        status = rpc_status.to_status(to_status(error, self._domain))
        await context.abort(status.code, status.details, status.trailing_metadata)


def _code_of(exc: BaseException, context: grpc.aio.ServicerContext[Any, Any]) -> grpc.StatusCode:
    """The status a call ended with when its handler raised: what it aborted with, or CANCELLED."""
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        return grpc.StatusCode.CANCELLED
    code = context.code()
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


def create_server(
    address: str,
    services: Iterable[ServiceDefinition],
    *,
    domain: str,
    max_message_bytes: int = 8 * 1024 * 1024,
    tls: Tls | None = None,
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """Build (not start) a server for ``services`` bound to ``address``; returns the bound port."""
    services = list(services)
    server = grpc.aio.server(
        interceptors=[ErrorInterceptor(domain)],
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),
        ],
    )
    for service in services:
        service.register(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [s.full_name for s in services] + [health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    port = server.add_secure_port(address, tls.server_credentials()) if tls else server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind gRPC server to {address}")
    return server, port, health_servicer


async def set_serving(health_servicer: health.aio.HealthServicer, services: Iterable[ServiceDefinition]) -> None:
    await health_servicer.set(health.OVERALL_HEALTH, health_pb2.HealthCheckResponse.SERVING)
    for service in services:
        await health_servicer.set(service.full_name, health_pb2.HealthCheckResponse.SERVING)


async def serve_until_signalled(
    server: grpc.aio.Server,
    health_servicer: health.aio.HealthServicer,
    *,
    grace_seconds: float,
    on_draining: Callable[[], Awaitable[None]] | None = None,
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Wait for SIGTERM/SIGINT, then stop: NOT_SERVING first, ``on_draining``, then in-flight calls
    get ``grace``, then ``on_stop``."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logger.info("stopping (grace %.1fs)", grace_seconds)
    await health_servicer.enter_graceful_shutdown()
    if on_draining is not None:
        await on_draining()
    await server.stop(grace_seconds)
    if on_stop is not None:
        await on_stop()
