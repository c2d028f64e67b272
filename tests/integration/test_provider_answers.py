"""The provider adapters' plain calls over real HTTP, against a server that answers what a test says."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator

import pytest

from crucible_agent.adapters.providers.anthropic_provider import AnthropicProvider
from crucible_agent.adapters.providers.base import LlmProvider
from crucible_agent.adapters.providers.openai_provider import OpenAIProvider
from crucible_agent.domain.errors import ProviderError, ProviderRejected, ProviderUnavailable
from crucible_agent.domain.model import ChatMessage, LlmRequest, ProviderResponse, Role

pytestmark = pytest.mark.integration

NAMES = ["openai", "anthropic"]


@contextlib.asynccontextmanager
async def answering(status: int, body: bytes) -> AsyncIterator[str]:
    """A server that answers every request with ``status`` and a JSON-typed ``body``."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
        await reader.readexactly(int(length.group(1)) if length else 0)
        writer.write(
            b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (status, len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


async def complete(name: str, status: int, body: bytes) -> ProviderResponse:
    async with answering(status, body) as url:
        adapter: LlmProvider = (
            OpenAIProvider(api_key="k", base_url=f"{url}/openai/v1", timeout=10)
            if name == "openai"
            else AnthropicProvider(api_key="k", base_url=f"{url}/anthropic", timeout=10)
        )
        try:
            return await adapter.complete(LlmRequest(name, "some-model", (ChatMessage(Role.USER, "hi"),)))
        finally:
            await adapter.close()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "body",
    [
        b'{"choices": [',  # cut off: not JSON at all
        b'{"choices": ["not a choice"], "content": ["not a block"]}',  # JSON, not an answer's shape
    ],
    ids=["not-json", "wrong-shape"],
)
async def test_a_broken_answer_is_an_unavailable_provider_to_retry(name: str, body: bytes) -> None:
    # Not an error escaping the retries (and the record of the call's paid attempts) unnamed.
    with pytest.raises(ProviderUnavailable) as info:
        await complete(name, 200, body)
    assert info.value.retryable


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("status", "retryable"), [(408, True), (409, True), (400, False), (422, False)])
async def test_a_client_error_is_retried_only_when_it_says_try_again(name: str, status: int, retryable: bool) -> None:
    error = {"error": {"type": "error", "message": "nope"}}
    with pytest.raises(ProviderError) as info:
        await complete(name, status, json.dumps(error).encode())
    assert info.value.retryable is retryable
    assert isinstance(info.value, ProviderUnavailable if retryable else ProviderRejected)


ANSWERS = {
    "openai": {"model": "m", "choices": [{"message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]},
    "anthropic": {"model": "m", "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn"},
}
USAGE = {
    "openai": {"prompt_tokens": 12, "completion_tokens": 3},
    "anthropic": {"input_tokens": 12, "output_tokens": 3},
}


@pytest.mark.parametrize("name", NAMES)
async def test_an_answer_says_whether_it_reported_its_usage(name: str) -> None:
    reported = await complete(name, 200, json.dumps({**ANSWERS[name], "usage": USAGE[name]}).encode())
    silent = await complete(name, 200, json.dumps(ANSWERS[name]).encode())
    nulls = {key: None for key in USAGE[name]}
    null = await complete(name, 200, json.dumps({**ANSWERS[name], "usage": nulls}).encode())

    assert (reported.text, reported.input_tokens, reported.output_tokens, reported.usage_reported) == (
        "hi",
        12,
        3,
        True,
    )
    assert (silent.text, silent.input_tokens, silent.usage_reported) == ("hi", 0, False)
    assert (null.text, null.input_tokens, null.usage_reported) == ("hi", 0, False)
