"""The agent context's values as JSON: how messages and answers are stored, hashed and replayed."""

from __future__ import annotations

from typing import Any

from crucible_agent.domain.model import ChatMessage, ProviderResponse, Role, ToolCall


def message_json(m: ChatMessage) -> dict[str, Any]:
    return {
        "role": m.role.value,
        "content": m.content,
        "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in m.tool_calls],
        "tool_call_id": m.tool_call_id,
    }


def message_from_json(data: dict[str, Any]) -> ChatMessage:
    return ChatMessage(
        Role(data["role"]),
        data.get("content", ""),
        tuple(ToolCall(c["id"], c["name"], c["arguments"]) for c in data.get("tool_calls", [])),
        data.get("tool_call_id", ""),
    )


def response_json(response: ProviderResponse) -> dict[str, Any]:
    return {
        "text": response.text,
        "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in response.tool_calls],
        "finish_reason": response.finish_reason,
        "response_model": response.response_model,
    }


def response_from_json(data: dict[str, Any], input_tokens: int, output_tokens: int) -> ProviderResponse:
    return ProviderResponse(
        text=data["text"],
        tool_calls=tuple(ToolCall(c["id"], c["name"], c["arguments"]) for c in data["tool_calls"]),
        finish_reason=data["finish_reason"],
        response_model=data["response_model"],
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )
