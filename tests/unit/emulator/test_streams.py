"""Streamed answers, rendered without HTTP: the non-streamed answer, as each provider's server-sent events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from crucible_emulator.anthropic_api import AnthropicProtocol
from crucible_emulator.conversation import ModelAnswer, ToolCall
from crucible_emulator.openai_api import OpenAIProtocol
from crucible_emulator.wire import pieces

OPENAI = OpenAIProtocol()
ANTHROPIC = AnthropicProtocol()
TEXT = "You asked about watering tomatoes. Key terms: water, soil, morning. (Answered by the emulator.)"
WRITE_TOOL = {"type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}}}


def parsed(events: list[str]) -> list[tuple[str | None, Any]]:
    """Each event's name and data (JSON, or the raw text that is not)."""
    result: list[tuple[str | None, Any]] = []
    for frame in events:
        assert frame.endswith("\n\n")
        fields = dict(line.split(": ", 1) for line in frame.strip().split("\n"))
        data = fields["data"]
        result.append((fields.get("event"), data if data == "[DONE]" else json.loads(data)))
    return result


@pytest.mark.parametrize(
    "text", ["", "one", "  leading and trailing  ", "line one\nline two\n\n  indented", TEXT, "x" * 100]
)
def test_pieces_put_back_together_are_the_text(text: str) -> None:
    assert "".join(pieces(text)) == text
    assert all(pieces(text))


def test_an_answer_of_a_few_words_comes_in_several_pieces() -> None:
    assert len(pieces(TEXT)) >= 5


def test_openai_text_streams_as_chunks_then_usage_then_done() -> None:
    request = OPENAI.parse(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )
    rendered = OPENAI.render(request, ModelAnswer(text=TEXT), (11, 22))

    events = parsed(OPENAI.stream(request, rendered))

    assert events[-1] == (None, "[DONE]")
    chunks = [data for _, data in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert {c["id"] for c in chunks} == {rendered["id"]}
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    content = [c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]]
    assert len([x for x in content if x]) >= 5
    assert "".join(content) == TEXT
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    # Only the last chunk has the usage, and no choices.
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == rendered["usage"]
    assert all(c["usage"] is None for c in chunks[:-1])


def test_openai_without_include_usage_sends_no_usage() -> None:
    request = OPENAI.parse({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True})
    events = parsed(OPENAI.stream(request, OPENAI.render(request, ModelAnswer(text=TEXT), (1, 2))))
    assert all("usage" not in data for _, data in events[:-1])
    assert all(data["choices"] for _, data in events[:-1])


def test_openai_tool_calls_stream_their_arguments() -> None:
    tools = [{"type": "function", "function": {"name": "fs_write_file", "parameters": WRITE_TOOL}}]
    request = OPENAI.parse(
        {"model": "m", "messages": [{"role": "user", "content": "go"}], "tools": tools, "stream": True}
    )
    arguments = {"path": "hello.py", "content": "print('hello world')\nprint('and again, once more')\n"}
    rendered = OPENAI.render(request, ModelAnswer(tool_calls=(ToolCall("a1", "fs_write_file", arguments),)), (1, 2))

    chunks = [data for _, data in parsed(OPENAI.stream(request, rendered))[:-1]]

    calls = [c for chunk in chunks for c in chunk["choices"][0]["delta"].get("tool_calls") or []]
    assert calls[0]["id"] == "call_a1"
    assert calls[0]["function"]["name"] == "fs_write_file"
    assert len(calls) > 2
    assert json.loads("".join(c["function"]["arguments"] for c in calls)) == arguments
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_anthropic_text_streams_as_the_messages_events() -> None:
    request = ANTHROPIC.parse(
        {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    )
    rendered = ANTHROPIC.render(request, ModelAnswer(text=TEXT), (11, 22))

    events = parsed(ANTHROPIC.stream(request, rendered))

    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert all(name == data["type"] for name, data in events)
    start = events[0][1]["message"]
    assert (start["id"], start["content"], start["stop_reason"]) == (rendered["id"], [], None)
    assert start["usage"]["input_tokens"] == 11
    texts = [data["delta"]["text"] for name, data in events if name == "content_block_delta"]
    assert len(texts) >= 5
    assert "".join(texts) == TEXT
    end = events[-2][1]
    assert end["delta"]["stop_reason"] == "end_turn"
    assert end["usage"]["output_tokens"] == 22


def test_anthropic_structured_answer_streams_its_json() -> None:
    request = ANTHROPIC.parse(
        {
            "model": "m",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"name": "judge_decision", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "tool", "name": "judge_decision"},
            "stream": True,
        }
    )
    value = {"choice": "openai", "rationale": "It answers the question that was asked, and briefly."}
    rendered = ANTHROPIC.render(request, ModelAnswer(structured=value), (1, 2))

    events = parsed(ANTHROPIC.stream(request, rendered))

    [start] = [data["content_block"] for name, data in events if name == "content_block_start"]
    deltas = [data["delta"] for name, data in events if name == "content_block_delta"]
    assert (start["type"], start["name"], start["input"]) == ("tool_use", "judge_decision", {})
    assert {d["type"] for d in deltas} == {"input_json_delta"}
    assert len(deltas) > 2
    assert json.loads("".join(d["partial_json"] for d in deltas)) == value
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
