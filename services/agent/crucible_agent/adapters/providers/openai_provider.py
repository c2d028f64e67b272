"""OpenAI (and any OpenAI-compatible server) through the official ``openai`` SDK."""

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
    import openai
    from openai import AsyncStream


class OpenAIProvider(LlmProvider):
    name = "openai"

    def __init__(self, *, api_key: str, base_url: str | None, timeout: float) -> None:
        # Retries are ours (ProviderPool): one policy, visible in the call log, for both SDKs.
        self._options = {"api_key": api_key, "base_url": base_url, "timeout": timeout, "max_retries": 0}
        self._sdk_client: openai.AsyncOpenAI | None = None

    @property
    def _client(self) -> openai.AsyncOpenAI:
        # Built on first use: importing the SDK costs seconds, which start-up need not wait for.
        if self._sdk_client is None:
            module = sdk("openai")
            # aiohttp under the SDK's own client: about half the CPU per call of the default httpx
            # stack (measured by the llm_fanout and run_pipeline benchmarks).
            self._sdk_client = module.AsyncOpenAI(**self._options, http_client=module.DefaultAioHttpClient())
        return self._sdk_client

    async def complete(self, request: LlmRequest) -> ProviderResponse:
        try:
            # The SDK's client (auth, transport, errors) without its typed layer: converting the
            # parameters through their TypedDicts and the answer into pydantic models doubled the
            # CPU of a call (llm_fanout), and the request is ours and the answer is read here.
            response = await self._client.post("/chat/completions", body=_body(request), cast_to=object)
        except sdk("openai").APIError as exc:
            raise _translate(exc) from exc
        except ValueError as exc:
            # A 200 whose body is not JSON: the SDK parses it outside its own errors.
            raise ProviderUnavailable(self.name, f"the response was not valid JSON ({exc})") from exc
        return _response(response, request)

    async def stream(self, request: LlmRequest, on_text: TextSink) -> ProviderResponse:
        openai = sdk("openai")
        body = {**_body(request), "stream": True, "stream_options": {"include_usage": True}}
        answer = _StreamedAnswer()
        try:
            # Raw chunks, as in ``complete``: a typed model per chunk would cost more than the chunk.
            chunks: AsyncStream[object] = await self._client.post(
                "/chat/completions", body=body, cast_to=object, stream=True, stream_cls=openai.AsyncStream[object]
            )
            # Closed however the stream ends, a cancelled call included, so the connection is freed.
            async with chunks:
                async for chunk in chunks:
                    text = answer.add(chunk)
                    if text:
                        await on_text(text)
        except openai.APIError as exc:
            raise _translate(exc) from exc
        return _response(answer.whole(), request)

    async def close(self) -> None:
        if self._sdk_client is not None:
            await self._sdk_client.close()


def _body(request: LlmRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"model": request.model, "messages": [_message(m) for m in request.messages]}
    if request.json_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            # Not strict: strict mode only accepts a subset of JSON schema; we validate anyway.
            "json_schema": {
                "name": request.schema_name or "answer",
                "schema": request.json_schema,
                "strict": False,
            },
        }
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
            }
            for t in request.tools
        ]
    if request.max_tokens:
        body["max_completion_tokens"] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    return body


def _response(response: object, request: LlmRequest) -> ProviderResponse:
    try:
        return _read(response, request)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        # Answered 200, but not with a chat completion's shape: a broken answer, retried as one.
        raise ProviderUnavailable(OpenAIProvider.name, f"the response was not a chat completion ({exc!r})") from exc


def _read(response: object, request: LlmRequest) -> ProviderResponse:
    if not isinstance(response, dict):
        raise ProviderUnavailable(OpenAIProvider.name, "the response was not a JSON object")
    choices = response.get("choices")
    if not choices:
        raise ProviderUnavailable(OpenAIProvider.name, "the response had no choices")
    choice = choices[0]
    message = choice.get("message") or {}
    tool_calls = tuple(
        ToolCall(call["id"], call["function"]["name"], _arguments(call["function"].get("arguments") or ""))
        for call in (message.get("tool_calls") or [])
        if call.get("type") == "function"
    )
    usage = response.get("usage") or {}
    return ProviderResponse(
        text=message.get("content") or "",
        tool_calls=tool_calls,
        finish_reason=choice.get("finish_reason") or "",
        response_model=response.get("model") or request.model,
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        usage_reported=usage.get("prompt_tokens") is not None,
    )


@dataclass
class _StreamedCall:
    id: str = ""
    type: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class _StreamedAnswer:
    """A streamed answer put back together as the completion ``complete`` would have read whole."""

    def __init__(self) -> None:
        self._model = ""
        self._content: list[str] = []
        self._calls: dict[int, _StreamedCall] = {}
        self._finish_reason: str | None = None
        self._usage: object = None

    def add(self, chunk: object) -> str:
        """Take one ``chat.completion.chunk`` in; return the answer's text it adds."""
        if not isinstance(chunk, dict):
            raise ProviderUnavailable(OpenAIProvider.name, "a stream chunk was not a JSON object")
        self._model = chunk.get("model") or self._model
        # With include_usage, the last chunk carries the usage (and no choices).
        self._usage = chunk.get("usage") or self._usage
        text = ""
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text += delta.get("content") or ""
            for piece in delta.get("tool_calls") or []:
                call = self._calls.setdefault(piece.get("index", 0), _StreamedCall())
                function = piece.get("function") or {}
                call.id = call.id or piece.get("id") or ""
                call.type = call.type or piece.get("type") or ""
                call.name += function.get("name") or ""
                call.arguments.append(function.get("arguments") or "")
            self._finish_reason = choice.get("finish_reason") or self._finish_reason
        if text:
            self._content.append(text)
        return text

    def whole(self) -> dict[str, Any]:
        if self._finish_reason is None:
            # A stream cut short (the server or the connection gave up) is an answer not given.
            raise ProviderUnavailable(OpenAIProvider.name, "the stream ended before the answer did")
        calls = [
            {"id": c.id, "type": c.type, "function": {"name": c.name, "arguments": "".join(c.arguments)}}
            for _, c in sorted(self._calls.items())
        ]
        message = {"content": "".join(self._content), "tool_calls": calls}
        return {
            "model": self._model,
            "choices": [{"message": message, "finish_reason": self._finish_reason}],
            "usage": self._usage,
        }


def _message(message: ChatMessage) -> dict[str, Any]:
    if message.role is Role.TOOL:
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    result: dict[str, Any] = {"role": message.role.value, "content": message.content}
    if message.tool_calls:
        result["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
            for c in message.tool_calls
        ]
    return result


def _arguments(raw: str) -> dict[str, Any]:
    try:
        parsed = json.loads(raw or "{}")
    except json.JSONDecodeError:
        # The model's malformed arguments reach the tool as-is, so the tool can report them.
        return {"_unparsed_arguments": raw}
    return parsed if isinstance(parsed, dict) else {"_value": parsed}


def _translate(exc: openai.APIError) -> ProviderError:
    openai = sdk("openai")
    name = OpenAIProvider.name
    if isinstance(exc, openai.APITimeoutError):
        return ProviderTimeout(name, "the request timed out")
    if isinstance(exc, openai.APIConnectionError):
        return ProviderUnavailable(name, f"cannot connect: {exc}")
    if isinstance(exc, openai.RateLimitError):
        return ProviderRateLimited(name, _detail(exc), retry_after=_retry_after(exc))
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return ProviderAuthFailed(name, _detail(exc))
    if isinstance(exc, openai.APIStatusError) and (exc.status_code >= 500 or exc.status_code in RETRIED_4XX):
        return ProviderUnavailable(name, f"HTTP {exc.status_code}: {_detail(exc)}", retry_after=_retry_after(exc))
    if isinstance(exc, openai.APIStatusError):
        return ProviderRejected(name, f"HTTP {exc.status_code}: {_detail(exc)}")
    return ProviderUnavailable(name, str(exc))


def _detail(exc: openai.APIError) -> str:
    return exc.message or type(exc).__name__


def _retry_after(exc: openai.APIError) -> float | None:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    for header, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = response.headers.get(header)
        if value:
            try:
                return float(value) * scale
            except ValueError:
                return None
    return None
