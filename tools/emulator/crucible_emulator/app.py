"""The emulator's HTTP application: both provider protocols, and the admin endpoints."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from crucible_emulator import coding_agent, offline_model
from crucible_emulator.anthropic_api import AnthropicProtocol
from crucible_emulator.config import EmulatorConfig
from crucible_emulator.conversation import InvalidRequest
from crucible_emulator.faults import EmulatorState, RequestFacts
from crucible_emulator.openai_api import OpenAIProtocol
from crucible_emulator.wire import WireProtocol

logger = logging.getLogger(__name__)

OPENAI_PREFIX = "/openai/v1"
ANTHROPIC_PREFIX = "/anthropic"


def create_app(config: EmulatorConfig | None = None) -> Starlette:
    """The emulator as an ASGI app; ``config`` defaults to the ``CRUCIBLE_EMULATOR_*`` environment."""
    state = EmulatorState(config if config is not None else EmulatorConfig.from_env())
    # The server's log line about a response left incomplete is noise when the emulator cut it on purpose.
    logging.getLogger("uvicorn.error").addFilter(_QUIET_WHEN_CUT)
    openai, anthropic = OpenAIProtocol(), AnthropicProtocol()

    async def chat_completions(request: Request) -> Response:
        return await _complete(state, openai, request)

    async def messages(request: Request) -> Response:
        return await _complete(state, anthropic, request)

    async def get_config(request: Request) -> Response:
        return JSONResponse(state.config.model_dump(mode="json"))

    async def put_config(request: Request) -> Response:
        body = await _json_body(request)
        if not isinstance(body, dict):
            return _admin_error(400, "The body must be a JSON object with the fields to change.")
        try:
            updated = EmulatorConfig.model_validate({**state.config.model_dump(), **body})
        except ValidationError as exc:
            details = exc.errors(include_url=False, include_context=False, include_input=False)
            return _admin_error(400, "Invalid emulator configuration.", details)
        state.config = updated
        logger.info("configuration changed: %s", ", ".join(sorted(body)))
        return JSONResponse(updated.model_dump(mode="json"))

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse(state.stats())

    async def stats(request: Request) -> Response:
        return JSONResponse(state.stats())

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        protocol = _protocol_for(request.url.path, openai, anthropic)
        message = f"Unknown request URL: {request.method} {request.url.path}."
        if exc.status_code == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}."
        if protocol is not None:
            response = protocol.error("not_found" if exc.status_code == 404 else "invalid_request", message)
            response.status_code = exc.status_code
            return response
        return _admin_error(exc.status_code, message)

    app = Starlette(
        routes=[
            Route(f"{OPENAI_PREFIX}/chat/completions", chat_completions, methods=["POST"]),
            Route(f"{ANTHROPIC_PREFIX}/v1/messages", messages, methods=["POST"]),
            Route("/emulator/config", get_config, methods=["GET"]),
            Route("/emulator/config", put_config, methods=["PUT"]),
            Route("/emulator/reset", reset, methods=["POST"]),
            Route("/emulator/stats", stats, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
    )
    app.state.emulator = state
    return app


async def _complete(state: EmulatorState, protocol: WireProtocol, request: Request) -> Response:
    loop = asyncio.get_running_loop()
    started = loop.time()
    if not protocol.authenticated(request.headers):
        return protocol.error("authentication", "Missing API key: any non-empty key is accepted by the emulator.")
    body = await _json_body(request)
    if body is _NOT_JSON:
        return protocol.error("invalid_request", "We could not parse the JSON body of your request.")
    try:
        model_request = protocol.parse(body)
    except InvalidRequest as exc:
        return protocol.error("invalid_request", exc.message, exc.param)
    task = offline_model.task_name(model_request)
    facts = RequestFacts(
        provider=protocol.provider,
        task=task,
        model=model_request.model,
        structured=model_request.output is not None,
        writes_program=task == "coding_agent" and coding_agent.writes_program(model_request),
    )
    decision = state.decide(facts)
    deadline = started + decision.delay_seconds
    caller = _Caller(request.receive)
    if decision.fault is not None:
        logger.info("injecting %s into a %s %s request", decision.fault, protocol.provider, task)
    if decision.fault == "timeout" and not await caller.sleep(state.config.timeout_seconds):
        logger.info("the caller of a held %s %s request left before its answer", protocol.provider, task)
        return _NoResponse()
    if decision.fault == "error":
        await caller.sleep(deadline - loop.time())
        return protocol.error("server", "The server had an error while processing your request (injected fault).")
    if decision.fault == "rate_limit":
        await caller.sleep(deadline - loop.time())
        return protocol.error("rate_limit", "Rate limit reached for requests (injected fault). Retry after 0s.")
    try:
        result = offline_model.answer(model_request, decision.modifiers)
        usage = offline_model.prompt_tokens(model_request), offline_model.completion_tokens(result)
        payload = protocol.render(model_request, result, usage)
    except Exception:
        # The caller must see a provider-shaped 500, not a bare stack trace; the log keeps the detail.
        logger.exception("the offline model failed on a %s %s request", protocol.provider, task)
        return protocol.error("server", "The Crucible emulator failed to answer this request; see its log.")
    truncated = decision.fault == "truncated"

    def delivered() -> None:
        state.delivered(task)

    if model_request.stream:
        events = protocol.stream(model_request, payload)
        gap = state.config.stream_chunk_delay_ms / 1000
        return _StreamedAnswer(events, caller, deadline, gap, delivered, truncated=truncated)
    if not await caller.sleep(deadline - loop.time()):
        return _NoResponse()
    return _Answer(payload, caller, delivered, truncated=truncated)


class _Caller:
    """The connection a model request came on: whether the caller is still there, as ASGI tells it.

    Once the request body is read, the server's ``receive`` only ever answers ``http.disconnect``: at once
    when the caller has gone, otherwise when the response is complete.
    """

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.gone = False

    async def sleep(self, seconds: float) -> bool:
        """Wait ``seconds``, or less if the caller leaves first; whether the caller is still there."""
        if seconds > 0 and not self.gone:
            await self._watch(seconds)
        return not self.gone

    async def connected(self) -> bool:
        """Whether the caller is still there, without waiting."""
        if not self.gone:
            await self._watch(0)
        return not self.gone

    async def _watch(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                while (await self._receive())["type"] != "http.disconnect":
                    pass
        except TimeoutError:
            return
        self.gone = True


class _NoResponse(Response):
    """What a caller that has left gets: nothing (the server sends no error to a closed connection)."""

    def __init__(self) -> None:
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        return None


class _Answer(JSONResponse):
    """A model's 200 answer, counted as delivered once written in full while its caller is connected.

    Truncated, it sends the headers (with the full Content-Length) and the first half of the body, then
    returns without finishing the response, and the server closes the connection.
    """

    def __init__(self, payload: Any, caller: _Caller, delivered: Callable[[], None], *, truncated: bool) -> None:
        super().__init__(payload)
        self._caller = caller
        self._delivered = delivered
        self._truncated = truncated

    def render(self, content: Any) -> bytes:
        # The same compact UTF-8 JSON as Starlette's, by orjson: a benchmark's every call is one.
        return orjson.dumps(content)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        if self._truncated:
            await send({"type": "http.response.body", "body": self.body[: len(self.body) // 2], "more_body": True})
            _cut_short()
            return
        await send({"type": "http.response.body", "body": self.body, "more_body": True})
        if not await self._caller.connected():
            return
        self._delivered()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class _StreamedAnswer(Response):
    """A model's 200 answer as server-sent events, counted as delivered once its last event is written.

    The headers go at once, as a provider's do; the latency is the wait for the first event, then
    ``gap`` between two events. Truncated, it sends the first half of the events and returns without
    finishing the response, and the server closes the connection.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        events: list[str],
        caller: _Caller,
        deadline: float,
        gap: float,
        delivered: Callable[[], None],
        *,
        truncated: bool,
    ) -> None:
        self.status_code = 200
        self.background = None
        self.init_headers({"cache-control": "no-cache"})
        self._events = events
        self._caller = caller
        self._deadline = deadline
        self._gap = gap
        self._delivered = delivered
        self._truncated = truncated

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        events = self._events[: len(self._events) // 2] if self._truncated else self._events
        for number, sse in enumerate(events):
            wait = self._gap if number else self._deadline - loop.time()
            if not await self._caller.sleep(wait):
                return
            await send({"type": "http.response.body", "body": sse.encode(self.charset), "more_body": True})
        if self._truncated:
            _cut_short()
            return
        if not await self._caller.connected():
            return
        self._delivered()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


# Set in the request's task when the emulator cuts a response short on purpose. An ASGI app cannot close
# its connection itself; returning before the response is complete makes the server (uvicorn) close it,
# and log that it did, from the same task, after the app has returned.
_CUT_SHORT: ContextVar[bool] = ContextVar("crucible_emulator_cut_short", default=False)


def _cut_short() -> None:
    _CUT_SHORT.set(True)


class _QuietWhenCut(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _CUT_SHORT.get()


_QUIET_WHEN_CUT = _QuietWhenCut()


_NOT_JSON: Any = object()


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except ValueError:
        pass
    # What orjson refuses and Python's parser reads (NaN, a lone surrogate's escape) is judged as before.
    try:
        return json.loads(raw)
    except ValueError:
        return _NOT_JSON


def _protocol_for(path: str, openai: OpenAIProtocol, anthropic: AnthropicProtocol) -> WireProtocol | None:
    if path.startswith("/openai/"):
        return openai
    if path.startswith(f"{ANTHROPIC_PREFIX}/"):
        return anthropic
    return None


def _admin_error(status: int, message: str, details: Any = None) -> JSONResponse:
    error: dict[str, Any] = {"message": message}
    if details is not None:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=status)
