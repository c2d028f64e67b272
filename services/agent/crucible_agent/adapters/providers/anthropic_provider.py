"""Anthropic through the official ``anthropic`` SDK; structured output through a forced tool."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crucible_agent.adapters.providers.base import RETRIED_4XX, LlmProvider, sdk
from crucible_agent.domain.errors import (
    ProviderAuthFailed,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from crucible_agent.domain.model import ChatMessage, LlmRequest, ProviderResponse, Role, TextSink, ToolCall

if TYPE_CHECKING:
    import anthropic
    from anthropic import AsyncStream

DEFAULT_MAX_TOKENS = 4096


class AnthropicProvider(LlmProvider):
    name = "anthropic"

    def __init__(self, *, api_key: str, base_url: str | None, timeout: float) -> None:
        self._options = {"api_key": api_key, "base_url": base_url, "timeout": timeout, "max_retries": 0}
        self._sdk_client: anthropic.AsyncAnthropic | None = None

    @property
    def _client(self) -> anthropic.AsyncAnthropic:
        # Built on first use: importing the SDK costs seconds, which start-up need not wait for.
        if self._sdk_client is None:
            module = sdk("anthropic")
            # aiohttp under the SDK's own client: about half the CPU per call of the default httpx
            # stack (measured by the llm_fanout and run_pipeline benchmarks).
            self._sdk_client = module.AsyncAnthropic(**self._options, http_client=module.DefaultAioHttpClient())
        return self._sdk_client

    async def complete(self, request: LlmRequest) -> ProviderResponse:
        body, answer_tool = _body(request)
        try:
            # The SDK's client (auth, transport, errors) without its typed layer, which doubled the
            # CPU of a call (llm_fanout): the request is ours and the answer is read here.
            response = await self._client.post("/v1/messages", body=body, cast_to=object)
        except sdk("anthropic").APIError as exc:
            raise _translate(exc) from exc
        except ValueError as exc:
            # A 200 whose body is not JSON: the SDK parses it outside its own errors.
            raise ProviderUnavailable(self.name, f"the response was not valid JSON ({exc})") from exc
        return _response(response, request, answer_tool)

    async def stream(self, request: LlmRequest, on_text: TextSink) -> ProviderResponse:
        anthropic = sdk("anthropic")
        body, answer_tool = _body(request)
        message = _StreamedMessage(answer_tool)
        try:
            # Raw events, as in ``complete``: a typed model per event would cost more than the event.
            events: AsyncStream[object] = await self._client.post(
                "/v1/messages",
                body={**body, "stream": True},
                cast_to=object,
                stream=True,
                stream_cls=anthropic.AsyncStream[object],
            )
            # Closed however the stream ends, a cancelled call included, so the connection is freed.
            async with events:
                async for event in events:
                    text = message.add(event)
                    if text:
                        await on_text(text)
        except anthropic.APIError as exc:
            raise _translate(exc) from exc
        # Unlike openai's, this SDK lets its transport's errors out of a stream untranslated.
        except sdk("httpx2").TimeoutException as exc:
            raise ProviderTimeout(self.name, "the stream timed out") from exc
        except sdk("httpx2").TransportError as exc:
            raise ProviderUnavailable(self.name, f"the stream broke: {exc}") from exc
        return _response(message.whole(), request, answer_tool)

    async def close(self) -> None:
        if self._sdk_client is not None:
            await self._sdk_client.close()


def _body(request: LlmRequest) -> tuple[dict[str, Any], str | None]:
    """The request's body, and the name of the tool that carries a structured answer (None without a schema)."""
    system = "\n\n".join(m.content for m in request.messages if m.role is Role.SYSTEM)
    body: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
        "messages": _messages(request.messages),
    }
    if system:
        body["system"] = system
    tools = [{"name": t.name, "description": t.description, "input_schema": t.parameters} for t in request.tools]
    answer_tool = None
    if request.json_schema is not None:
        # Anthropic's structured output: one tool whose input is the answer, and the model
        # is made to call it.
        answer_tool = request.schema_name or "answer"
        tools.append(
            {
                "name": answer_tool,
                "description": "Give the answer as this tool's input.",
                "input_schema": request.json_schema,
            }
        )
        body["tool_choice"] = {"type": "tool", "name": answer_tool}
    if tools:
        body["tools"] = tools
    if request.temperature is not None:
        body["temperature"] = request.temperature
    return body, answer_tool


def _response(response: object, request: LlmRequest, answer_tool: str | None) -> ProviderResponse:
    try:
        return _read(response, request, answer_tool)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        # Answered 200, but not with a message's shape: a broken answer, retried as one.
        raise ProviderUnavailable(AnthropicProvider.name, f"the response was not a message ({exc!r})") from exc


def _read(response: object, request: LlmRequest, answer_tool: str | None) -> ProviderResponse:
    if not isinstance(response, dict):
        raise ProviderUnavailable(AnthropicProvider.name, "the response was not a JSON object")
    texts: list[str] = []
    calls: list[ToolCall] = []
    structured: str | None = None
    for block in response.get("content") or []:
        if block.get("type") == "text":
            texts.append(block.get("text") or "")
        elif block.get("type") == "tool_use":
            value = block.get("input")
            arguments = value if isinstance(value, dict) else {"_value": value}
            if answer_tool is not None and block.get("name") == answer_tool:
                structured = json.dumps(arguments)
            else:
                calls.append(ToolCall(block["id"], block["name"], arguments))
    usage = response.get("usage") or {}
    return ProviderResponse(
        text=structured if structured is not None else "".join(texts),
        tool_calls=tuple(calls),
        finish_reason=response.get("stop_reason") or "",
        response_model=response.get("model") or request.model,
        input_tokens=int(usage.get("input_tokens") or 0),
        output_tokens=int(usage.get("output_tokens") or 0),
        usage_reported=usage.get("input_tokens") is not None,
    )


@dataclass
class _StreamedBlock:
    start: dict[str, Any]
    pieces: list[str] = field(default_factory=list)

    def whole(self) -> dict[str, Any]:
        if self.start.get("type") == "text":
            return {**self.start, "text": (self.start.get("text") or "") + "".join(self.pieces)}
        if self.start.get("type") != "tool_use" or not self.pieces:
            return self.start
        raw = "".join(self.pieces)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            # As OpenAI's malformed arguments are: passed on as they are, for the caller to report.
            value = {"_unparsed_arguments": raw}
        return {**self.start, "input": value}


class _StreamedMessage:
    """A streamed answer put back together as the message ``complete`` would have read whole."""

    def __init__(self, answer_tool: str | None) -> None:
        self._answer_tool = answer_tool
        self._message: dict[str, Any] = {}
        self._usage: dict[str, Any] = {}
        self._blocks: dict[int, _StreamedBlock] = {}
        self._stopped = False

    def add(self, event: object) -> str:
        """Take one event in; return the answer's text it adds."""
        if not isinstance(event, dict):
            raise ProviderUnavailable(AnthropicProvider.name, "a stream event was not a JSON object")
        kind = event.get("type")
        if kind == "message_start":
            self._message = event.get("message") or {}
            self._count(self._message.get("usage"))
        elif kind == "content_block_start":
            started = _StreamedBlock(event.get("content_block") or {})
            self._blocks[event.get("index", len(self._blocks))] = started
            return self._text(started, started.start.get("text") or "")
        elif kind == "content_block_delta":
            block = self._blocks.get(event.get("index", len(self._blocks) - 1))
            if block is None:
                raise ProviderUnavailable(AnthropicProvider.name, "the stream continued a block it had not started")
            delta = event.get("delta") or {}
            piece = delta.get("text") or delta.get("partial_json") or ""
            block.pieces.append(piece)
            return self._text(block, piece)
        elif kind == "message_delta":
            self._message.update(event.get("delta") or {})
            self._count(event.get("usage"))
        elif kind == "message_stop":
            self._stopped = True
        return ""

    def _text(self, block: _StreamedBlock, piece: str) -> str:
        # The answer's text: its text blocks, or for a structured answer the JSON of the tool that carries it.
        if self._answer_tool is None:
            return piece if block.start.get("type") == "text" else ""
        return piece if block.start.get("name") == self._answer_tool else ""

    def _count(self, usage: object) -> None:
        # message_start counts the input; message_delta the output so far, and the input again in newer versions.
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})

    def whole(self) -> dict[str, Any]:
        if not self._stopped:
            # A stream cut short (the server or the connection gave up) is an answer not given.
            raise ProviderUnavailable(AnthropicProvider.name, "the stream ended before the answer did")
        content = [block.whole() for _, block in sorted(self._blocks.items())]
        return {**self._message, "content": content, "usage": self._usage}


def _messages(messages: tuple[ChatMessage, ...]) -> list[dict[str, Any]]:
    """Chat messages as Anthropic content blocks; consecutive same-role turns are merged."""
    result: list[dict[str, Any]] = []
    for message in messages:
        if message.role is Role.SYSTEM:
            continue
        blocks: list[dict[str, Any]]
        if message.role is Role.TOOL:
            role = "user"
            blocks = [{"type": "tool_result", "tool_use_id": message.tool_call_id, "content": message.content}]
        else:
            role = message.role.value
            blocks = [{"type": "text", "text": message.content}] if message.content else []
            blocks += [
                {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in message.tool_calls
            ]
        if not blocks:
            continue
        if result and result[-1]["role"] == role:
            result[-1]["content"].extend(blocks)
        else:
            result.append({"role": role, "content": blocks})
    return result


def _translate(exc: anthropic.APIError) -> ProviderError:
    anthropic = sdk("anthropic")
    name = AnthropicProvider.name
    if isinstance(exc, anthropic.APITimeoutError):
        return ProviderTimeout(name, "the request timed out")
    if isinstance(exc, anthropic.APIConnectionError):
        return ProviderUnavailable(name, f"cannot connect: {exc}")
    if isinstance(exc, anthropic.APIStatusError) and exc.status_code < 400:
        # An error event in a stream that had started well (HTTP 200): the event's type says what failed.
        if _error_type(exc.body) == "rate_limit_error":
            return ProviderRateLimited(name, exc.message)
        return ProviderUnavailable(name, f"the stream failed: {exc.message}")
    if isinstance(exc, anthropic.RateLimitError):
        return ProviderRateLimited(name, exc.message, retry_after=_retry_after(exc))
    if isinstance(exc, anthropic.AuthenticationError | anthropic.PermissionDeniedError):
        return ProviderAuthFailed(name, exc.message)
    if isinstance(exc, anthropic.APIStatusError) and (exc.status_code >= 500 or exc.status_code in RETRIED_4XX):
        # Includes 529 "overloaded".
        return ProviderUnavailable(name, f"HTTP {exc.status_code}: {exc.message}", retry_after=_retry_after(exc))
    if isinstance(exc, anthropic.APIStatusError):
        return ProviderRejected(name, f"HTTP {exc.status_code}: {exc.message}")
    return ProviderUnavailable(name, str(exc))


def _error_type(body: object) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("type") or "") if isinstance(error, dict) else ""


def _retry_after(exc: anthropic.APIError) -> float | None:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    value = response.headers.get("retry-after")
    try:
        return float(value) if value else None
    except ValueError:
        return None
