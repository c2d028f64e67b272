"""The gateway's ASGI application, built from settings (and, in tests, given clients)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crucible_common.settings import Settings
from crucible_gateway import errors, openapi, ui
from crucible_gateway.api.main import router
from crucible_gateway.clients import ServiceClients
from crucible_gateway.inputs import InputGuard, declares_body
from crucible_gateway.schemas import documented
from crucible_gateway.slow_clients import BodyReadTimeout

MAX_BODY_BYTES = 2 * 1024 * 1024


class BodySizeLimit:
    """Refuses request bodies over a limit with 413, before the application reads them.

    A declared Content-Length is checked at once; a body without one (chunked) is read here up
    to the limit and then handed on, so the answer is the same 413 either way.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not declares_body(scope):
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit():
            if int(length) > self.limit:
                await self._refuse(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away; let the application see it as it is.
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = errors.problem(413, f"request body larger than {self.limit} bytes", reason="PAYLOAD_TOO_LARGE")
        await response(scope, receive, send)


class HeadAsGet:
    """HEAD answered wherever GET is, as HTTP asks of every server: the GET's status and headers
    (its Content-Length included), without its body. FastAPI's routes answer only the methods they
    name, and a health check or a link checker sends HEAD."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    # A GET that opens a stream (the MCP endpoint's server-sent events) has no end to wait for.
    STREAMS = ("/mcp",)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD" or scope["path"] in self.STREAMS:
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] != "http.response.body":
                await send(message)
            elif not message.get("more_body", False):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app({**scope, "method": "GET"}, receive, headers_only)


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    """A receive that returns ``messages`` first, then defers to ``then`` (for disconnects)."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is None:
            return {"type": "http.disconnect"}
        return await then()

    return receive


def create_app(settings: Settings, clients: ServiceClients | None = None) -> ASGIApp:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = clients is None
        app.state.clients = clients or ServiceClients.connect(settings)
        follower = asyncio.create_task(app.state.clients.projects.follow(), name="project cache")
        try:
            yield
        finally:
            follower.cancel()
            try:
                with contextlib.suppress(asyncio.CancelledError):
                    await follower
            finally:
                if own:
                    await app.state.clients.close()

    app = FastAPI(
        title="Crucible API",
        version="0.1.0",
        openapi_url="/api/openapi.json",
        # Served below from the bundled Swagger UI: no CDN, so the docs work offline too.
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry server spans (they continue an incoming traceparent);
        # per-dependency operation spans would cost more than the request they describe.
        telemetry={"operation_spans": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    errors.install(app)
    app.include_router(router)
    documented.document(app)
    # After documented: the error responses refer to its Problem schema.
    openapi.document(app, settings)

    # Swagger UI 5 (OpenAPI 3.1, which FastAPI emits) as the fastapi-offline package ships it.
    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount("/api/docs/assets", StaticFiles(directory=assets), name="swagger-ui")

    @app.get("/api/docs", response_class=HTMLResponse, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/api/openapi.json",
            title="Crucible API",
            swagger_js_url="/api/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/api/docs/assets/swagger-ui.css",
            swagger_favicon_url="/api/docs/assets/favicon.png",
        )

    # Last: the web UI answers every path no route or mount above has taken (but never /api, /mcp, /healthz).
    ui.install(app)
    # Outermost first: a HEAD is the GET without its body; the body's time limit covers every read
    # of it; an oversized body is refused before anything reads it; text no service can store is
    # refused before any route sees it.
    guarded = InputGuard(app, lambda: app.openapi(), settings.api_token)
    return HeadAsGet(BodyReadTimeout(BodySizeLimit(guarded, MAX_BODY_BYTES), settings.gateway_body_timeout_seconds))
