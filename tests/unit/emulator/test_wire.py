"""Both wire protocols, parsed and rendered without HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest

from crucible_emulator.anthropic_api import AnthropicProtocol
from crucible_emulator.conversation import InvalidRequest, ModelAnswer, ToolCall
from crucible_emulator.openai_api import OpenAIProtocol

OPENAI = OpenAIProtocol()
ANTHROPIC = AnthropicProtocol()
WRITE_TOOL = {
    "name": "fs_write_file",
    "description": "Write a file.",
    "parameters": {"type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}}},
}


def openai_body(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], **extra}


def anthropic_body(**extra: Any) -> dict[str, Any]:
    return {"model": "claude-test", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], **extra}


def test_openai_conversation_with_tools_is_normalised() -> None:
    request = OPENAI.parse(
        openai_body(
            messages=[
                {"role": "system", "content": "sys"},
                {"role": "developer", "content": [{"type": "text", "text": "dev"}]},
                {"role": "user", "content": [{"type": "text", "text": "task"}, {"type": "image_url", "image_url": {}}]},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "fs_write_file", "arguments": '{"a": 1}'},
                        },
                        {"id": "c2", "type": "function", "function": {"name": "run_tests", "arguments": "{}"}},
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "ok"},
                {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "1 passed"}]},
            ],
            tools=[{"type": "function", "function": WRITE_TOOL}],
            max_completion_tokens=50,
        )
    )
    assert request.system == "sys\n\ndev"
    assert [m.role for m in request.messages] == ["user", "assistant", "user"]
    assert request.messages[1].tool_calls[0] == ToolCall("c1", "fs_write_file", {"a": 1})
    assert [r.content for r in request.messages[2].tool_results] == ["ok", "1 passed"]
    assert request.max_tokens == 50
    assert request.tools[0].name == "fs_write_file"


def test_openai_structured_output_and_forced_function() -> None:
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}}
    request = OPENAI.parse(
        openai_body(response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": schema}})
    )
    assert request.output is not None
    assert (request.output.name, request.output.via) == ("n", "response_format")
    forced = OPENAI.parse(
        openai_body(
            tools=[{"type": "function", "function": WRITE_TOOL}],
            tool_choice={"type": "function", "function": {"name": "fs_write_file"}},
        )
    )
    assert forced.output is not None
    assert forced.output.via == "tool"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"stream": "yes"}, "stream"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"stream": True, "stream_options": {"include_usage": 1}}, "include_usage"),
        ({"n": 2}, "n"),
        ({"model": ""}, "model"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"temperature": 3}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": 5}}}},
            "response_format.json_schema.schema",
        ),
        ({"response_format": {"type": "yaml"}}, "response_format.type"),
    ],
)
def test_openai_bad_requests_name_the_parameter(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        OPENAI.parse(openai_body(**extra))
    assert caught.value.param == param


def test_openai_render_matches_the_api_shape() -> None:
    request = OPENAI.parse(openai_body(tools=[{"type": "function", "function": WRITE_TOOL}]))
    body = OPENAI.render(request, ModelAnswer(tool_calls=(ToolCall("abc", "fs_write_file", {"path": "a"}),)), (3, 4))
    choice = body["choices"][0]
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["id"] == "call_abc"
    assert json.loads(call["function"]["arguments"]) == {"path": "a"}
    assert body["usage"]["total_tokens"] == 7
    text = OPENAI.render(OPENAI.parse(openai_body()), ModelAnswer(text="hello"), (1, 1))
    assert text["choices"][0]["message"]["content"] == "hello"
    assert text["choices"][0]["finish_reason"] == "stop"
    assert "tool_calls" not in text["choices"][0]["message"]


def test_openai_error_shape_and_rate_limit_headers() -> None:
    response = OPENAI.error("rate_limit", "slow down")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "0"
    assert response.headers["retry-after-ms"] == "0"
    assert json.loads(bytes(response.body))["error"]["code"] == "rate_limit_exceeded"


def test_anthropic_conversation_with_tool_blocks_is_normalised() -> None:
    request = ANTHROPIC.parse(
        anthropic_body(
            system=[{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
            messages=[
                {"role": "user", "content": "task"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "writing"},
                        {"type": "tool_use", "id": "t1", "name": "fs_write_file", "input": {"path": "a"}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "done"}]},
                        {"type": "tool_result", "tool_use_id": "t2", "content": "denied", "is_error": True},
                    ],
                },
            ],
            tools=[{"name": "fs_write_file", "input_schema": WRITE_TOOL["parameters"]}],
            tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        )
    )
    assert request.system == "sys"
    assert request.messages[1].tool_calls == (ToolCall("t1", "fs_write_file", {"path": "a"}),)
    assert [(r.content, r.is_error) for r in request.messages[2].tool_results] == [("done", False), ("denied", True)]
    assert request.tool_choice.parallel is False


def test_anthropic_forced_tool_is_structured_output() -> None:
    request = ANTHROPIC.parse(
        anthropic_body(
            tools=[{"name": "judge_decision", "input_schema": {"type": "object"}}],
            tool_choice={"type": "tool", "name": "judge_decision"},
        )
    )
    assert request.output is not None
    assert request.output.name == "judge_decision"
    body = ANTHROPIC.render(request, ModelAnswer(structured={"choice": "a"}), (5, 6))
    assert body["stop_reason"] == "tool_use"
    assert body["content"][0]["type"] == "tool_use"
    assert body["content"][0]["input"] == {"choice": "a"}
    assert body["usage"]["input_tokens"] == 5
    assert body["usage"]["output_tokens"] == 6


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        (anthropic_body(stream="yes"), "stream"),
        (anthropic_body(temperature=1.5), "temperature"),
        (anthropic_body(messages=[{"role": "system", "content": "x"}]), "messages.0.role"),
        (anthropic_body(tool_choice={"type": "tool", "name": "nope"}), "tool_choice.name"),
    ],
)
def test_anthropic_bad_requests_name_the_parameter(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        ANTHROPIC.parse(body)
    assert caught.value.param == param


def test_anthropic_error_shape() -> None:
    response = ANTHROPIC.error("server", "boom")
    payload = json.loads(bytes(response.body))
    assert response.status_code == 500
    assert payload["type"] == "error"
    assert payload["error"]["type"] == "api_error"


def test_anthropic_text_render_and_truncation() -> None:
    request = ANTHROPIC.parse(anthropic_body())
    body = ANTHROPIC.render(request, ModelAnswer(text="partial", truncated=True), (1, 1))
    assert body["content"] == [{"type": "text", "text": "partial"}]
    assert body["stop_reason"] == "max_tokens"
    assert body["type"] == "message"
