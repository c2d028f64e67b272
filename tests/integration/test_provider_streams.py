"""The provider adapters' streamed calls over real HTTP: the emulator, and servers whose streams break."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from crucible_agent.adapters.providers.anthropic_provider import AnthropicProvider
from crucible_agent.adapters.providers.base import LlmProvider
from crucible_agent.adapters.providers.openai_provider import OpenAIProvider
from crucible_agent.domain.errors import ProviderRateLimited, ProviderTimeout, ProviderUnavailable
from crucible_agent.domain.model import ChatMessage, LlmRequest, Role
from tests.integration.agent_fixtures import CODING_TOOLS, QUESTIONS_SCHEMA, TASK, Emulator, serve_emulator

pytestmark = pytest.mark.integration

KINDS: dict[str, dict[str, Any]] = {
    "text": {},
    "structured": {"json_schema": QUESTIONS_SCHEMA, "schema_name": "planning_questions"},
    "tool calls": {"tools": CODING_TOOLS},
}


class Texts(list[str]):
    async def __call__(self, text: str) -> None:
        self.append(text)


def provider(name: str, base_url: str, timeout: float = 10) -> LlmProvider:
    if name == "openai":
        return OpenAIProvider(api_key="k", base_url=f"{base_url}/openai/v1", timeout=timeout)
    return AnthropicProvider(api_key="k", base_url=f"{base_url}/anthropic", timeout=timeout)


def request(name: str, **kind: Any) -> LlmRequest:
    return LlmRequest(name, "some-model", (ChatMessage(Role.USER, TASK),), **kind)


@pytest.fixture(scope="module")
async def emulator() -> AsyncIterator[Emulator]:
    async with serve_emulator() as running:
        yield running


@pytest.mark.parametrize("name", ["openai", "anthropic"])
@pytest.mark.parametrize("kind", KINDS)
async def test_a_streamed_answer_is_the_answer_complete_gives(emulator: Emulator, name: str, kind: str) -> None:
    await emulator.configure()
    adapter = provider(name, emulator.url)
    try:
        whole = await adapter.complete(request(name, **KINDS[kind]))
        texts = Texts()
        streamed = await adapter.stream(request(name, **KINDS[kind]), texts)
    finally:
        await adapter.close()

    # Text, tool calls, finish reason, model and tokens: what the call log and the cost are made of.
    assert streamed == whole
    assert "".join(texts) == whole.text
    if kind == "tool calls":
        assert texts == []
        assert {c.name for c in streamed.tool_calls} == {"fs_write_file"}
    else:
        assert len(texts) >= 3
    assert streamed.input_tokens > 0
    assert streamed.output_tokens > 0


async def test_a_stream_refused_before_it_starts_is_the_same_error(emulator: Emulator) -> None:
    await emulator.configure(faults=[{"kind": "rate_limit"}])
    for name in ("openai", "anthropic"):
        adapter = provider(name, emulator.url)
        try:
            with pytest.raises(ProviderRateLimited):
                await adapter.complete(request(name))
            with pytest.raises(ProviderRateLimited):
                await adapter.stream(request(name), Texts())
        finally:
            await adapter.close()


# ---------------------------------------------------------------- streams that break


def _sse(data: object, event: str | None = None) -> str:
    line = f"data: {json.dumps(data)}\n\n"
    return f"event: {event}\n{line}" if event else line


OPENING = {
    "openai": [
        _sse({"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [{"index": 0, "delta": d}]})
        for d in ({"role": "assistant", "content": ""}, {"content": "Hello, "})
    ],
    "anthropic": [
        _sse({"type": "message_start", "message": {"id": "m1", "model": "m", "content": []}}, "message_start"),
        _sse(
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            "content_block_start",
        ),
        _sse(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello, "}},
            "content_block_delta",
        ),
    ],
}
FAILURE_EVENT = {
    "openai": {"overloaded": _sse({"error": {"message": "The server is overloaded.", "type": "server_error"}})},
    "anthropic": {
        "overloaded": _sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "error"),
        "rate_limited": _sse({"type": "error", "error": {"type": "rate_limit_error", "message": "Slow down"}}, "error"),
    },
}


@contextlib.asynccontextmanager
async def breaking_server(events: list[str], ending: str) -> AsyncIterator[str]:
    """A server whose stream sends ``events``, then: ``cut`` drops the connection, ``end`` ends the body
    cleanly though the answer is not finished, ``stall`` sends nothing more."""
    released = asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
        await reader.readexactly(int(length.group(1)) if length else 0)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        for event in events:
            data = event.encode()
            writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await writer.drain()
        if ending == "stall":
            await released.wait()
        elif ending == "end":
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        released.set()
        server.close()
        await server.wait_closed()


async def stream_from(
    name: str, events: list[str], ending: str, timeout: float = 10, texts: Texts | None = None
) -> None:
    async with breaking_server(events, ending) as url:
        adapter = provider(name, url, timeout)
        try:
            await adapter.stream(request(name), Texts() if texts is None else texts)
        finally:
            await adapter.close()


@pytest.mark.parametrize("name", ["openai", "anthropic"])
@pytest.mark.parametrize("ending", ["cut", "end"])
async def test_a_stream_that_stops_short_is_an_unavailable_provider(name: str, ending: str) -> None:
    texts = Texts()
    with pytest.raises(ProviderUnavailable) as info:
        await stream_from(name, OPENING[name], ending, texts=texts)
    # Retried by the pool as a new attempt; the text already written is void with this one.
    assert info.value.retryable
    assert texts == ["Hello, "]


@pytest.mark.parametrize("name", ["openai", "anthropic"])
async def test_a_stream_that_stalls_times_out(name: str) -> None:
    with pytest.raises(ProviderTimeout):
        await stream_from(name, OPENING[name], "stall", timeout=0.3)


@pytest.mark.parametrize("name", ["openai", "anthropic"])
async def test_an_error_event_mid_stream_is_an_unavailable_provider(name: str) -> None:
    with pytest.raises(ProviderUnavailable) as info:
        await stream_from(name, [*OPENING[name], FAILURE_EVENT[name]["overloaded"]], "end")
    assert "overloaded" in info.value.message.lower()


async def test_a_rate_limit_event_mid_stream_is_a_rate_limit() -> None:
    with pytest.raises(ProviderRateLimited):
        await stream_from("anthropic", [*OPENING["anthropic"], FAILURE_EVENT["anthropic"]["rate_limited"]], "end")
