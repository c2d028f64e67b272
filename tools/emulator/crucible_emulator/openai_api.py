"""The OpenAI Chat Completions wire protocol (``POST /openai/v1/chat/completions``)."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse

from crucible_emulator.config import Provider
from crucible_emulator.conversation import (
    InvalidRequest,
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

_ROLES = ("system", "developer", "user", "assistant", "tool")
_EMPTY_PARAMETERS: JsonObject = {"type": "object", "properties": {}}
_ERRORS: dict[ErrorKind, tuple[int, str, str | None]] = {
    "invalid_request": (400, "invalid_request_error", None),
    "authentication": (401, "invalid_request_error", "invalid_api_key"),
    "not_found": (404, "invalid_request_error", "unknown_url"),
    "rate_limit": (429, "requests", "rate_limit_exceeded"),
    "server": (500, "server_error", None),
}


class OpenAIProtocol:
    provider: Provider = "openai"

    def authenticated(self, headers: Headers) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and bool(token.strip())

    def error(self, kind: ErrorKind, message: str, param: str | None = None) -> JSONResponse:
        status, error_type, code = _ERRORS[kind]
        headers = {"x-request-id": new_id("req_")}
        if kind == "rate_limit":
            headers.update({"retry-after": "0", "retry-after-ms": "0"})
        body = {"error": {"message": message, "type": error_type, "param": param, "code": code}}
        return JSONResponse(body, status_code=status, headers=headers)

    def parse(self, body: Any) -> ModelRequest:
        require(isinstance(body, dict), "The request body must be a JSON object.")
        model = body.get("model")
        require(isinstance(model, str) and bool(model.strip()), "You must provide a model parameter.", "model")
        stream = _flag(body, "stream")
        stream_usage = _stream_usage(body.get("stream_options"), stream)
        require(body.get("n") in (None, 1), "The Crucible emulator supports only n=1.", "n")
        optional_number(body, "temperature", 0, 2)
        optional_number(body, "top_p", 0, 1)
        raw_max = body.get("max_completion_tokens", body.get("max_tokens"))
        key = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
        max_tokens = None if raw_max is None else positive_int(raw_max, key)
        system, messages = _messages(body.get("messages"))
        tools = _tools(body.get("tools"))
        tool_choice = _tool_choice(body.get("tool_choice"), tools, body.get("parallel_tool_calls"))
        output = _response_format(body.get("response_format"))
        if tool_choice.mode == "tool":
            forced = next(t for t in tools if t.name == tool_choice.name)
            check_schema(forced.parameters, "tools")
            output = StructuredOutput(forced.name, forced.parameters, "tool")
        return ModelRequest(
            provider="openai",
            model=model,
            system=system,
            messages=messages,
            tools=tools,
            tool_choice=tool_choice,
            output=output,
            max_tokens=max_tokens,
            stream=stream,
            stream_usage=stream_usage,
        )

    def render(self, request: ModelRequest, answer: ModelAnswer, usage: tuple[int, int]) -> JsonObject:
        message: JsonObject = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
        output = request.output
        tool_calls: list[JsonObject] = []
        if output is not None and output.via == "tool":
            arguments = answer.raw_structured if answer.raw_structured is not None else json.dumps(answer.structured)
            tool_calls.append(_tool_call(f"call_{new_id('', 24)}", output.name, arguments))
        elif output is not None:
            content = answer.raw_structured if answer.raw_structured is not None else json.dumps(answer.structured)
            message["content"] = content
        else:
            message["content"] = answer.text
            tool_calls = [_tool_call(f"call_{c.id}", c.name, json.dumps(c.arguments)) for c in answer.tool_calls]
        if tool_calls:
            message["tool_calls"] = tool_calls
        finish = "tool_calls" if tool_calls else "length" if answer.truncated else "stop"
        prompt, completion = usage
        return {
            "id": new_id("chatcmpl-", 29),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
            },
            "service_tier": "default",
            "system_fingerprint": "fp_crucible_emulator",
        }

    def stream(self, request: ModelRequest, rendered: JsonObject) -> list[str]:
        choice = rendered["choices"][0]
        message = choice["message"]
        common = {k: rendered[k] for k in ("id", "created", "model", "service_tier", "system_fingerprint")}
        # With include_usage every chunk says "usage": null but the last, which has only the usage.
        usage: JsonObject = {"usage": None} if request.stream_usage else {}

        def chunk(delta: JsonObject, finish_reason: str | None = None) -> str:
            choices = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
            return event({**common, "object": "chat.completion.chunk", "choices": choices, **usage})

        events = [chunk({"role": "assistant", "content": "", "refusal": None})]
        events += [chunk({"content": piece}) for piece in pieces(message["content"] or "")]
        for index, call in enumerate(message.get("tool_calls") or []):
            function = call["function"]
            opening = {"index": index, "id": call["id"], "type": "function"}
            events.append(chunk({"tool_calls": [{**opening, "function": {"name": function["name"], "arguments": ""}}]}))
            events += [
                chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                for piece in pieces(function["arguments"])
            ]
        events.append(chunk({}, choice["finish_reason"]))
        if request.stream_usage:
            events.append(
                event({**common, "object": "chat.completion.chunk", "choices": [], "usage": rendered["usage"]})
            )
        events.append(event("[DONE]"))
        return events


def _flag(body: JsonObject, key: str) -> bool:
    value = body.get(key)
    require(value is None or isinstance(value, bool), f"Invalid '{key}': expected a boolean, got {value!r}.", key)
    return bool(value)


def _stream_usage(raw: Any, stream: bool) -> bool:
    if raw is None:
        return False
    require(stream, "The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options")
    require(isinstance(raw, dict), "'stream_options' must be an object.", "stream_options")
    return _flag(raw, "include_usage")


def _tool_call(call_id: str, name: str, arguments: str) -> JsonObject:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _text(content: Any, param: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    require(isinstance(content, list), "Content must be a string or an array of content parts.", param)
    parts: list[str] = []
    for i, part in enumerate(content):
        require(isinstance(part, dict) and isinstance(part.get("type"), str), "Invalid content part.", f"{param}[{i}]")
        if part["type"] in ("text", "refusal"):
            value = part.get(part["type"])
            require(isinstance(value, str), f"Content part of type {part['type']} needs a string.", f"{param}[{i}]")
            parts.append(value)
    return "\n".join(parts)


def _messages(raw: Any) -> tuple[str, tuple[Message, ...]]:
    require(isinstance(raw, list) and len(raw) > 0, "'messages' must be a non-empty array.", "messages")
    system: list[str] = []
    messages: list[Message] = []
    pending_results: list[ToolResult] = []

    def flush_results() -> None:
        if pending_results:
            messages.append(Message(role="user", tool_results=tuple(pending_results)))
            pending_results.clear()

    for i, item in enumerate(raw):
        param = f"messages[{i}]"
        require(isinstance(item, dict), "Each message must be an object.", param)
        role = item.get("role")
        require(role in _ROLES, f"Invalid value for '{param}.role': {role!r}.", f"{param}.role")
        text = _text(item.get("content"), f"{param}.content")
        if role == "tool":
            call_id = item.get("tool_call_id")
            require(isinstance(call_id, str) and bool(call_id), "Tool messages need a tool_call_id.", param)
            pending_results.append(ToolResult(call_id=call_id, content=text))
            continue
        flush_results()
        if role in ("system", "developer"):
            system.append(text)
        elif role == "user":
            messages.append(Message(role="user", text=text))
        else:
            messages.append(Message(role="assistant", text=text, tool_calls=_assistant_calls(item, param)))
    flush_results()
    return "\n\n".join(s for s in system if s), tuple(messages)


def _assistant_calls(item: JsonObject, param: str) -> tuple[ToolCall, ...]:
    raw = item.get("tool_calls") or []
    require(isinstance(raw, list), "'tool_calls' must be an array.", f"{param}.tool_calls")
    calls: list[ToolCall] = []
    for j, call in enumerate(raw):
        where = f"{param}.tool_calls[{j}]"
        require(isinstance(call, dict) and isinstance(call.get("function"), dict), "Invalid tool call.", where)
        function = call["function"]
        require(isinstance(call.get("id"), str), "A tool call needs an id.", f"{where}.id")
        require(isinstance(function.get("name"), str), "A tool call needs a function name.", f"{where}.function.name")
        arguments = function.get("arguments", "{}")
        try:
            parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
        except ValueError:
            parsed = {"__unparsed__": arguments}
        calls.append(ToolCall(call["id"], function["name"], parsed if isinstance(parsed, dict) else {"value": parsed}))
    return tuple(calls)


def _tools(raw: Any) -> tuple[ToolSpec, ...]:
    if raw is None:
        return ()
    require(isinstance(raw, list), "'tools' must be an array.", "tools")
    tools: list[ToolSpec] = []
    for i, item in enumerate(raw):
        where = f"tools[{i}]"
        require(isinstance(item, dict) and item.get("type") == "function", "Only function tools are supported.", where)
        function = item.get("function")
        require(isinstance(function, dict), "A function tool needs a 'function' object.", f"{where}.function")
        name = function.get("name")
        require(isinstance(name, str) and bool(name), "A function tool needs a name.", f"{where}.function.name")
        parameters = function.get("parameters") or _EMPTY_PARAMETERS
        require(isinstance(parameters, dict), "'parameters' must be an object.", f"{where}.function.parameters")
        tools.append(ToolSpec(name, str(function.get("description") or ""), parameters))
    return tuple(tools)


def _tool_choice(raw: Any, tools: tuple[ToolSpec, ...], parallel: Any) -> ToolChoice:
    parallel_calls = parallel is not False
    if raw is None:
        return ToolChoice("auto", parallel=parallel_calls)
    if raw in ("auto", "none", "required"):
        require(raw == "none" or raw == "auto" or bool(tools), "tool_choice 'required' needs tools.", "tool_choice")
        return ToolChoice(raw, parallel=parallel_calls)
    require(isinstance(raw, dict) and raw.get("type") == "function", "Invalid tool_choice.", "tool_choice")
    function = raw.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    require(any(t.name == name for t in tools), f"tool_choice names an unknown function: {name!r}.", "tool_choice")
    return ToolChoice("tool", name=name, parallel=parallel_calls)


def _response_format(raw: Any) -> StructuredOutput | None:
    if raw is None:
        return None
    require(isinstance(raw, dict), "'response_format' must be an object.", "response_format")
    kind = raw.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return StructuredOutput("json_object", None, "json_object")
    if kind == "json_schema":
        spec = raw.get("json_schema")
        require(isinstance(spec, dict), "'json_schema' must be an object.", "response_format.json_schema")
        name = spec.get("name")
        require(
            isinstance(name, str) and bool(name), "'json_schema.name' is required.", "response_format.json_schema.name"
        )
        schema = spec.get("schema", {})
        check_schema(schema, "response_format.json_schema.schema")
        return StructuredOutput(name, schema, "response_format")
    raise InvalidRequest(f"Invalid response_format type: {kind!r}.", "response_format.type")
