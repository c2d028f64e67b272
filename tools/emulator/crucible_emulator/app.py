"""The emulator's HTTP application: both provider protocols, and the admin endpoints."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

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
    if decision.fault is not None:
        logger.info("injecting %s into a %s %s request", decision.fault, protocol.provider, task)
    if decision.fault == "timeout":
        await asyncio.sleep(state.config.timeout_seconds)
    if decision.fault == "error":
        await _sleep_until(loop, deadline)
        return protocol.error("server", "The server had an error while processing your request (injected fault).")
    if decision.fault == "rate_limit":
        await _sleep_until(loop, deadline)
        return protocol.error("rate_limit", "Rate limit reached for requests (injected fault). Retry after 0s.")
    try:
        result = offline_model.answer(model_request, decision.modifiers)
        usage = offline_model.prompt_tokens(model_request), offline_model.completion_tokens(result)
        payload = protocol.render(model_request, result, usage)
    except Exception:
        # The caller must see a provider-shaped 500, not a bare stack trace; the log keeps the detail.
        logger.exception("the offline model failed on a %s %s request", protocol.provider, task)
        return protocol.error("server", "The Crucible emulator failed to answer this request; see its log.")
    if model_request.stream:
        events = protocol.stream(model_request, payload)
        gap = state.config.stream_chunk_delay_ms / 1000
        return StreamingResponse(
            _paced(events, loop, deadline, gap), media_type="text/event-stream", headers={"cache-control": "no-cache"}
        )
    await _sleep_until(loop, deadline)
    return JSONResponse(payload)


async def _paced(events: list[str], loop: asyncio.AbstractEventLoop, deadline: float, gap: float) -> AsyncIterator[str]:
    # The headers go at once, as a provider's do; the latency is the wait for the first event.
    await _sleep_until(loop, deadline)
    for number, sse in enumerate(events):
        if number and gap:
            await asyncio.sleep(gap)
        yield sse


async def _sleep_until(loop: asyncio.AbstractEventLoop, deadline: float) -> None:
    # Latency is measured from arrival, so the answer's own compute time is part of it.
    remaining = deadline - loop.time()
    if remaining > 0:
        await asyncio.sleep(remaining)


_NOT_JSON: Any = object()


async def _json_body(request: Request) -> Any:
    raw = await request.body()
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
