"""Answers on the wire: truncated ones, held ones, and the ``answered`` count, through the real SDKs.

The emulator runs in-process on a loopback port (uvicorn, as ``crucible-emulator`` serves it): a cut
connection is only a cut connection on a real socket.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest

from crucible_emulator.config import EmulatorConfig
from tests.emulator_server import emulator_server
from tests.unit.emulator import task_schemas

HI: Any = [{"role": "user", "content": "How do I water tomatoes in a dry summer without wasting any?"}]
PLANNING: Any = {
    "type": "json_schema",
    "json_schema": {"name": "planning_questions", "schema": task_schemas.PLANNING_QUESTIONS},
}


@pytest.fixture(scope="module")
async def base_url() -> AsyncIterator[str]:
    async with emulator_server() as url:
        yield url


@pytest.fixture
async def admin(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        await client.post("/emulator/reset")
        response = await client.put("/emulator/config", json=EmulatorConfig().model_dump())
        assert response.status_code == 200
        yield client


@pytest.fixture
async def openai_client(base_url: str, admin: httpx.AsyncClient) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=f"{base_url}/openai/v1", api_key="emulator", max_retries=0, timeout=30)
    yield client
    await client.close()


@pytest.fixture
async def anthropic_client(base_url: str, admin: httpx.AsyncClient) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=f"{base_url}/anthropic", api_key="emulator", max_retries=0, timeout=30)
    yield client
    await client.close()


async def configure(admin: httpx.AsyncClient, **changes: Any) -> None:
    response = await admin.put("/emulator/config", json=changes)
    assert response.status_code == 200, response.text


async def stats(admin: httpx.AsyncClient) -> dict[str, Any]:
    response = await admin.get("/emulator/stats")
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


async def openai_stream_text(client: openai.AsyncOpenAI) -> str:
    stream = await client.chat.completions.create(model="gpt-test", messages=HI, stream=True)
    text = ""
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    return text


async def anthropic_stream_text(client: anthropic.AsyncAnthropic) -> str:
    async with client.messages.stream(model="claude-test", max_tokens=200, messages=HI) as stream:
        return "".join([text async for text in stream.text_stream])


# ---- truncated answers


async def test_truncated_openai_answer_is_a_connection_error_then_the_next_succeeds(
    openai_client: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    await configure(admin, faults=[{"match": {"provider": "openai"}, "kind": "truncated", "count": 1}])
    with pytest.raises(openai.APIConnectionError) as caught:
        await openai_client.chat.completions.create(model="gpt-test", messages=HI)
    assert "peer closed connection" in str(caught.value.__cause__)
    completion = await openai_client.chat.completions.create(model="gpt-test", messages=HI)
    assert "tomatoes" in (completion.choices[0].message.content or "")

    await configure(admin, faults=[{"match": {"provider": "openai"}, "kind": "truncated", "count": 1}])
    with pytest.raises(openai.APIConnectionError):
        await openai_stream_text(openai_client)
    assert "tomatoes" in await openai_stream_text(openai_client)
    current = await stats(admin)
    assert current["faults_injected"]["truncated"] == 2
    assert current["answered"] == 2


async def test_truncated_anthropic_answer_and_stream_fail_then_the_next_succeed(
    anthropic_client: anthropic.AsyncAnthropic, admin: httpx.AsyncClient
) -> None:
    await configure(admin, faults=[{"match": {"provider": "anthropic"}, "kind": "truncated", "count": 1}])
    with pytest.raises(anthropic.APIConnectionError):
        await anthropic_client.messages.create(model="claude-test", max_tokens=200, messages=HI)
    message = await anthropic_client.messages.create(model="claude-test", max_tokens=200, messages=HI)
    assert message.content[0].type == "text"
    assert "tomatoes" in message.content[0].text

    await configure(admin, faults=[{"match": {"provider": "anthropic"}, "kind": "truncated", "count": 1}])
    # Unlike openai's, the anthropic SDK lets its transport's errors out of a stream untranslated.
    with pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)):
        await anthropic_stream_text(anthropic_client)
    assert "tomatoes" in await anthropic_stream_text(anthropic_client)
    assert (await stats(admin))["answered"] == 2


async def raw_post(client: httpx.AsyncClient, body: dict[str, Any]) -> tuple[httpx.Headers, bytes, bool]:
    """The answer's headers, the body bytes that came, and whether the connection broke before the end."""
    received = b""
    async with client.stream(
        "POST", "/openai/v1/chat/completions", headers={"authorization": "Bearer k"}, json=body
    ) as response:
        assert response.status_code == 200
        try:
            async for piece in response.aiter_raw():
                received += piece
        except httpx.RemoteProtocolError:
            return response.headers, received, True
        return response.headers, received, False


async def test_truncated_answer_has_its_full_length_and_half_its_body(admin: httpx.AsyncClient) -> None:
    body: dict[str, Any] = {"model": "gpt-test", "messages": HI}
    _, whole, cut = await raw_post(admin, body)
    assert not cut
    await configure(admin, faults=[{"kind": "truncated", "count": 2}])
    headers, received, cut = await raw_post(admin, body)
    assert cut
    # The same answer but for its id, which has the same length.
    assert int(headers["content-length"]) == len(whole)
    assert len(received) == len(whole) // 2
    assert received.startswith(b'{"id":"chatcmpl-')

    headers, received, cut = await raw_post(admin, {**body, "stream": True})
    assert cut
    assert headers["content-type"].startswith("text/event-stream")
    events = [line for line in received.decode().split("\n\n") if line.startswith("data: ")]
    assert events
    assert not any(line.startswith("data: [DONE]") for line in events)


async def test_a_cut_answer_is_not_logged_as_a_server_error(
    openai_client: openai.AsyncOpenAI, admin: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    await configure(admin, faults=[{"kind": "truncated", "count": 1}])
    with caplog.at_level(logging.INFO):
        with pytest.raises(openai.APIConnectionError):
            await openai_client.chat.completions.create(model="gpt-test", messages=HI)
        await openai_client.chat.completions.create(model="gpt-test", messages=HI)
    assert "injecting truncated" in caplog.text
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


# ---- held answers


async def test_timeout_rate_holds_the_request_then_answers(
    openai_client: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    await configure(admin, timeout_rate=1, timeout_seconds=0.3)
    started = time.monotonic()
    completion = await openai_client.chat.completions.create(model="gpt-test", messages=HI)
    assert time.monotonic() - started >= 0.3
    assert "tomatoes" in (completion.choices[0].message.content or "")
    current = await stats(admin)
    assert current["faults_injected"]["timeout"] == 1
    assert current["answered"] == 1

    short = openai_client.with_options(timeout=0.1)
    with pytest.raises(openai.APITimeoutError):
        await short.chat.completions.create(model="gpt-test", messages=HI)


# ---- the answered count


async def test_answered_counts_only_answers_delivered_in_full(
    openai_client: openai.AsyncOpenAI, anthropic_client: anthropic.AsyncAnthropic, admin: httpx.AsyncClient
) -> None:
    # Counted: a plain answer, a streamed one, and a malformed structured one (a 200 the provider is paid for).
    await openai_client.chat.completions.create(model="gpt-test", messages=HI)
    assert "tomatoes" in await anthropic_stream_text(anthropic_client)
    await configure(admin, faults=[{"kind": "malformed", "count": 1}])
    await openai_client.chat.completions.create(model="gpt-test", messages=HI, response_format=PLANNING)
    assert (await stats(admin))["faults_injected"]["malformed"] == 1

    # Not counted: a 500, a 429, a truncated answer, and a held one whose caller gave up.
    await configure(admin, faults=[{"kind": "error", "count": 1}])
    with pytest.raises(openai.InternalServerError):
        await openai_client.chat.completions.create(model="gpt-test", messages=HI)
    await configure(admin, faults=[{"kind": "rate_limit", "count": 1}])
    with pytest.raises(anthropic.RateLimitError):
        await anthropic_client.messages.create(model="claude-test", max_tokens=200, messages=HI)
    await configure(admin, faults=[{"kind": "truncated", "count": 1}])
    with pytest.raises(openai.APIConnectionError):
        await openai_client.chat.completions.create(model="gpt-test", messages=HI, response_format=PLANNING)
    await configure(admin, timeout_seconds=0.4, faults=[{"kind": "timeout", "count": 1}])
    with pytest.raises(openai.APITimeoutError):
        await openai_client.with_options(timeout=0.1).chat.completions.create(model="gpt-test", messages=HI)
    await asyncio.sleep(0.6)  # past the hold: the held request would have been answered by now

    current = await stats(admin)
    assert current["requests_total"] == 7
    assert current["answered"] == 3
    assert current["answered_by_task"] == {"chat": 2, "planning_questions": 1}
    assert (await admin.post("/emulator/reset")).json()["answered"] == 0
    assert (await stats(admin))["answered_by_task"] == {}


async def test_a_caller_that_leaves_mid_stream_is_not_answered(
    base_url: str, openai_client: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    await configure(admin, stream_chunk_delay_ms=40)
    stream = await openai_client.chat.completions.create(model="gpt-test", messages=HI, stream=True)
    async for _ in stream:
        break
    await stream.close()
    # Long enough for the whole stream to have been sent, had the caller stayed.
    await asyncio.sleep(1.0)
    assert (await stats(admin))["answered"] == 0
    assert "tomatoes" in await openai_stream_text(openai_client)
    assert (await stats(admin))["answered"] == 1
