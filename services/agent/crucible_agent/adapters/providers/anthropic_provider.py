"""Anthropic through the official ``anthropic`` SDK; structured output through a forced tool."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from crucible_agent.adapters.providers.base import LlmProvider, sdk
from crucible_agent.domain.errors import (
    ProviderAuthFailed,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from crucible_agent.domain.model import ChatMessage, LlmRequest, ProviderResponse, Role, ToolCall

if TYPE_CHECKING:
    import anthropic

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
        system = "\n\n".join(m.content for m in request.messages if m.role is Role.SYSTEM)
        kwargs: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "messages": _messages(request.messages),
        }
        if system:
            kwargs["system"] = system
        tools = [{"name": t.name, "description": t.description, "input_schema": t.parameters} for t in request.tools]
        answer_tool = request.schema_name or "answer"
        if request.json_schema is not None:
            # Anthropic's structured output: one tool whose input is the answer, and the model
            # is made to call it.
            tools.append(
                {
                    "name": answer_tool,
                    "description": "Give the answer as this tool's input.",
                    "input_schema": request.json_schema,
                }
            )
            kwargs["tool_choice"] = {"type": "tool", "name": answer_tool}
        if tools:
            kwargs["tools"] = tools
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        try:
            # The SDK's client (auth, transport, errors) without its typed layer, which doubled the
            # CPU of a call (llm_fanout): the request is ours and the answer is read here.
            response = await self._client.post("/v1/messages", body=kwargs, cast_to=object)
        except sdk("anthropic").APIError as exc:
            raise _translate(exc) from exc
        if not isinstance(response, dict):
            raise ProviderUnavailable(self.name, "the response was not a JSON object")
        texts: list[str] = []
        calls: list[ToolCall] = []
        structured: str | None = None
        for block in response.get("content") or []:
            if block.get("type") == "text":
                texts.append(block.get("text") or "")
            elif block.get("type") == "tool_use":
                value = block.get("input")
                arguments = value if isinstance(value, dict) else {"_value": value}
                if request.json_schema is not None and block.get("name") == answer_tool:
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
        )

    async def close(self) -> None:
        if self._sdk_client is not None:
            await self._sdk_client.close()


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
    if isinstance(exc, anthropic.RateLimitError):
        return ProviderRateLimited(name, exc.message, retry_after=_retry_after(exc))
    if isinstance(exc, anthropic.AuthenticationError | anthropic.PermissionDeniedError):
        return ProviderAuthFailed(name, exc.message)
    if isinstance(exc, anthropic.APIStatusError) and exc.status_code >= 500:
        # Includes 529 "overloaded".
        return ProviderUnavailable(name, f"HTTP {exc.status_code}: {exc.message}", retry_after=_retry_after(exc))
    if isinstance(exc, anthropic.APIStatusError):
        return ProviderRejected(name, f"HTTP {exc.status_code}: {exc.message}")
    return ProviderUnavailable(name, str(exc))


def _retry_after(exc: anthropic.APIError) -> float | None:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    value = response.headers.get("retry-after")
    try:
        return float(value) if value else None
    except ValueError:
        return None
