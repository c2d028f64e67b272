"""The Anthropic Messages wire protocol (``POST /anthropic/v1/messages``)."""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse

from crucible_emulator.config import Provider
from crucible_emulator.conversation import (
    JsonObject,
    Message,
    ModelAnswer,
    ModelRequest,
    StructuredOutput,
    ToolCall,
    ToolChoice,
    ToolResult,
    ToolSpec,
)
from crucible_emulator.schemas import check_schema
from crucible_emulator.wire import ErrorKind, event, new_id, optional_number, pieces, positive_int, require

_ERRORS: dict[ErrorKind, tuple[int, str]] = {
    "invalid_request": (400, "invalid_request_error"),
    "authentication": (401, "authentication_error"),
    "not_found": (404, "not_found_error"),
    "rate_limit": (429, "rate_limit_error"),
    "server": (500, "api_error"),
}
# Block types a real request may carry that say nothing the offline model uses.
_IGNORED_BLOCKS = frozenset(
    {"image", "document", "thinking", "redacted_thinking", "search_result", "server_tool_use", "web_search_tool_result"}
)


class AnthropicProtocol:
    provider: Provider = "anthropic"

    def authenticated(self, headers: Headers) -> bool:
        if headers.get("x-api-key", "").strip():
            return True
        scheme, _, token = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and bool(token.strip())

    def error(self, kind: ErrorKind, message: str, param: str | None = None) -> JSONResponse:
        status, error_type = _ERRORS[kind]
        request_id = new_id("req_")
        headers = {"request-id": request_id}
        if kind == "rate_limit":
            headers.update({"retry-after": "0", "retry-after-ms": "0"})
        text = f"{param}: {message}" if param else message
        body = {"type": "error", "error": {"type": error_type, "message": text}, "request_id": request_id}
        return JSONResponse(body, status_code=status, headers=headers)

    def parse(self, body: Any) -> ModelRequest:
        require(isinstance(body, dict), "The request body must be a JSON object.")
        model = body.get("model")
        require(isinstance(model, str) and bool(model.strip()), "Field required.", "model")
        require("max_tokens" in body, "Field required.", "max_tokens")
        max_tokens = positive_int(body["max_tokens"], "max_tokens")
        stream = body.get("stream")
        require(stream is None or isinstance(stream, bool), "Input should be a valid boolean.", "stream")
        optional_number(body, "temperature", 0, 1)
        optional_number(body, "top_p", 0, 1)
        system = _system(body.get("system"))
        messages = _messages(body.get("messages"))
        tools = _tools(body.get("tools"))
        tool_choice = _tool_choice(body.get("tool_choice"), tools)
        output = None
        if tool_choice.mode == "tool":
            forced = next(t for t in tools if t.name == tool_choice.name)
            output = StructuredOutput(forced.name, forced.parameters, "tool")
        return ModelRequest(
            provider="anthropic",
            model=model,
            system=system,
            messages=messages,
            tools=tools,
            tool_choice=tool_choice,
            output=output,
            max_tokens=max_tokens,
            stream=bool(stream),
        )

    def render(self, request: ModelRequest, answer: ModelAnswer, usage: tuple[int, int]) -> JsonObject:
        content: list[JsonObject] = []
        if request.output is not None:
            content.append(_tool_use(new_id("toolu_", 24), request.output.name, answer.structured))
        else:
            if answer.text:
                content.append({"type": "text", "text": answer.text})
            content.extend(_tool_use(f"toolu_{c.id}", c.name, c.arguments) for c in answer.tool_calls)
        uses_tool = any(block["type"] == "tool_use" for block in content)
        stop_reason = "tool_use" if uses_tool else "max_tokens" if answer.truncated else "end_turn"
        prompt, completion = usage
        return {
            "id": new_id("msg_", 24),
            "type": "message",
            "role": "assistant",
            "model": request.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": prompt,
                "output_tokens": completion,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }

    def stream(self, request: ModelRequest, rendered: JsonObject) -> list[str]:
        usage = rendered["usage"]
        # As the API does: the message opens empty, one token written; the final count comes with the stop reason.
        opening = {**rendered, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
        ending = {"stop_reason": rendered["stop_reason"], "stop_sequence": None}
        return [
            _event({"type": "message_start", "message": opening}),
            _event({"type": "ping"}),
            *(e for index, block in enumerate(rendered["content"]) for e in _block_events(index, block)),
            _event({"type": "message_delta", "delta": ending, "usage": {"output_tokens": usage["output_tokens"]}}),
            _event({"type": "message_stop"}),
        ]


def _block_events(index: int, block: JsonObject) -> list[str]:
    if block["type"] == "text":
        start: JsonObject = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": piece} for piece in pieces(block["text"])]
    else:
        start = {**block, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in pieces(json.dumps(block["input"]))]
    return [
        _event({"type": "content_block_start", "index": index, "content_block": start}),
        *(_event({"type": "content_block_delta", "index": index, "delta": delta}) for delta in deltas),
        _event({"type": "content_block_stop", "index": index}),
    ]


def _event(data: JsonObject) -> str:
    return event(data, data["type"])


def _tool_use(block_id: str, name: str, arguments: Any) -> JsonObject:
    return {"type": "tool_use", "id": block_id, "name": name, "input": arguments}


def _block_text(blocks: Any, param: str) -> str:
    if isinstance(blocks, str):
        return blocks
    require(isinstance(blocks, list), "Content must be a string or an array of blocks.", param)
    parts: list[str] = []
    for i, block in enumerate(blocks):
        require(isinstance(block, dict), "Each content block must be an object.", f"{param}.{i}")
        if block.get("type") == "text":
            require(isinstance(block.get("text"), str), "A text block needs text.", f"{param}.{i}.text")
            parts.append(block["text"])
    return "\n".join(parts)


def _system(raw: Any) -> str:
    if raw is None:
        return ""
    return _block_text(raw, "system")


def _messages(raw: Any) -> tuple[Message, ...]:
    require(isinstance(raw, list) and len(raw) > 0, "At least one message is required.", "messages")
    messages: list[Message] = []
    for i, item in enumerate(raw):
        param = f"messages.{i}"
        require(isinstance(item, dict), "Each message must be an object.", param)
        role = item.get("role")
        require(role in ("user", "assistant"), f"Unexpected role {role!r}; use 'user' or 'assistant'.", f"{param}.role")
        content = item.get("content")
        if isinstance(content, str):
            messages.append(Message(role=role, text=content))
            continue
        require(isinstance(content, list), "Content must be a string or an array of blocks.", f"{param}.content")
        texts: list[str] = []
        calls: list[ToolCall] = []
        results: list[ToolResult] = []
        for j, block in enumerate(content):
            where = f"{param}.content.{j}"
            require(isinstance(block, dict) and isinstance(block.get("type"), str), "Invalid content block.", where)
            kind = block["type"]
            if kind == "text":
                require(isinstance(block.get("text"), str), "A text block needs text.", f"{where}.text")
                texts.append(block["text"])
            elif kind == "tool_use":
                require(role == "assistant", "tool_use blocks belong to assistant messages.", where)
                require(
                    isinstance(block.get("id"), str) and isinstance(block.get("name"), str), "Invalid tool_use.", where
                )
                arguments = block.get("input")
                calls.append(ToolCall(block["id"], block["name"], arguments if isinstance(arguments, dict) else {}))
            elif kind == "tool_result":
                require(role == "user", "tool_result blocks belong to user messages.", where)
                require(isinstance(block.get("tool_use_id"), str), "A tool_result needs tool_use_id.", where)
                result_content = block.get("content", "")
                text = _block_text(result_content, f"{where}.content") if result_content else ""
                results.append(ToolResult(block["tool_use_id"], text, bool(block.get("is_error", False))))
            else:
                require(kind in _IGNORED_BLOCKS, f"Unsupported content block type {kind!r}.", f"{where}.type")
        messages.append(Message(role=role, text="\n".join(texts), tool_calls=tuple(calls), tool_results=tuple(results)))
    return tuple(messages)


def _tools(raw: Any) -> tuple[ToolSpec, ...]:
    if raw is None:
        return ()
    require(isinstance(raw, list), "'tools' must be an array.", "tools")
    tools: list[ToolSpec] = []
    for i, item in enumerate(raw):
        where = f"tools.{i}"
        require(isinstance(item, dict), "Each tool must be an object.", where)
        if item.get("type") not in (None, "custom"):
            continue  # server tools run on the provider's side; the emulator has none
        name = item.get("name")
        require(isinstance(name, str) and bool(name), "A tool needs a name.", f"{where}.name")
        schema = item.get("input_schema")
        require(isinstance(schema, dict), "A tool needs an input_schema object.", f"{where}.input_schema")
        check_schema(schema, f"{where}.input_schema")
        tools.append(ToolSpec(name, str(item.get("description") or ""), schema))
    return tuple(tools)


def _tool_choice(raw: Any, tools: tuple[ToolSpec, ...]) -> ToolChoice:
    if raw is None:
        return ToolChoice("auto")
    require(isinstance(raw, dict), "tool_choice must be an object.", "tool_choice")
    kind = raw.get("type")
    parallel = not raw.get("disable_parallel_tool_use", False)
    if kind in ("auto", "none"):
        return ToolChoice(kind, parallel=parallel)
    if kind == "any":
        require(bool(tools), "tool_choice 'any' needs tools.", "tool_choice")
        return ToolChoice("required", parallel=parallel)
    require(kind == "tool", f"Invalid tool_choice type {kind!r}.", "tool_choice.type")
    name = raw.get("name")
    require(any(t.name == name for t in tools), f"tool_choice names an unknown tool: {name!r}.", "tool_choice.name")
    return ToolChoice("tool", name=str(name), parallel=parallel)
