"""Time limits on a request's headers and body, so that a few clients who trickle bytes (or send
none) cannot hold the gateway's connections.

uvicorn closes an idle keep-alive connection (after 5 s) but waits for a request in progress as
long as its client keeps the connection open: a connection that never sends a byte, headers that
never end, a body shorter than its Content-Length. It has no setting for either, hence this:

- ``http_protocol(seconds)``: uvicorn's httptools protocol, with a timer from a connection's (or a
  request's) first byte to the end of its headers. Passed to ``uvicorn.Config(http=...)``.
- ``BodyReadTimeout``: ASGI middleware that bounds the wait for a request's whole body, from the
  end of its headers. The body is read by the application, so the limit is where it reads.

Either answers 408 with a problem body and closes the connection.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from crucible_gateway import errors
from crucible_gateway.inputs import declares_body

REQUEST_TIMEOUT = 408


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol (httptools), closing a connection whose request's headers are
    not complete ``header_timeout`` seconds after its first byte (or after it was opened)."""

    header_timeout: ClassVar[float] = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A connection that sends nothing at all is a request whose headers never come.
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # The first request's clock started with the connection; a later one's starts at its first byte.
        if self._header_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_timed_out)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        self.logger.info("closing a connection whose request headers did not arrive in %gs", self.header_timeout)
        response = errors.problem(
            REQUEST_TIMEOUT,
            f"the request's headers did not arrive within {self.header_timeout:g} s",
            reason="REQUEST_TIMEOUT",
        )
        body = bytes(response.body)
        head = (
            "HTTP/1.1 408 Request Timeout\r\n"
            f"content-type: {errors.PROBLEM_JSON}\r\n"
            f"content-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        )
        self.transport.write(head.encode("ascii") + body)
        self.transport.close()


def http_protocol(header_timeout: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)``, with this header timeout."""

    class Configured(HeaderTimeoutProtocol):
        pass

    Configured.header_timeout = header_timeout
    return Configured


class BodyTimedOut(HTTPException):
    """The body did not arrive in time. An HTTPException, so that FastAPI, reading the body for a
    route, passes it on to the exception handlers (any other error there becomes a 400)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            REQUEST_TIMEOUT,
            f"the request body did not arrive within {seconds:g} s",
            headers={"Connection": "close"},
        )


class BodyReadTimeout:
    """Bounds the wait for an HTTP request's whole body: ``seconds`` from the end of its headers.

    Only the body is timed: once its last part has arrived (or the client has gone), later reads
    (a streaming response that listens for a disconnect) wait as long as they need.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not declares_body(scope):
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.seconds
        complete = False
        started = False

        async def timed_receive() -> Message:
            nonlocal complete
            if complete:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTimedOut(self.seconds) from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, timed_receive, watched_send)
        except BodyTimedOut as exc:
            # Raised where no exception handler runs (a middleware reading the body before the routes).
            if started:
                raise
            response = errors.problem(exc.status_code, exc.detail, reason="REQUEST_TIMEOUT")
            response.headers.update(exc.headers or {})
            await response(scope, receive, send)
