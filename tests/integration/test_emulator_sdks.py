"""The emulator on a loopback port, driven by the real ``openai`` and ``anthropic`` SDKs."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import jsonschema
import openai
import pytest
from pydantic import BaseModel

from crucible_emulator.config import EmulatorConfig
from tests.emulator_server import emulator_server
from tests.unit.emulator import task_schemas

pytestmark = pytest.mark.integration

HELLO_TASK = "Write a Python program that prints 'hello world'."
SYSTEM = "You are a coding agent working in a workspace. Use the tools. Say VERIFICATION_SUCCESS when tests pass."
_PATH = {"type": "string", "description": "A path relative to the workspace."}
TOOLS: list[dict[str, Any]] = [
    {
        "name": "fs_write_file",
        "description": "Write a text file in the workspace.",
        "parameters": {
            "type": "object",
            "properties": {"path": _PATH, "content": {"type": "string"}},
            "required": ["path", "content"],
        },
    },
    {
        "name": "fs_read_file",
        "description": "Read a text file.",
        "parameters": {"type": "object", "properties": {"path": _PATH}, "required": ["path"]},
    },
    {
        "name": "fs_list_dir",
        "description": "List a directory.",
        "parameters": {"type": "object", "properties": {"path": _PATH}},
    },
    {
        "name": "run_tests",
        "description": "Run pytest in the workspace.",
        "parameters": {"type": "object", "properties": {"path": _PATH}},
    },
]
OPENAI_TOOLS: Any = [{"type": "function", "function": tool} for tool in TOOLS]
ANTHROPIC_TOOLS: Any = [
    {"name": t["name"], "description": t["description"], "input_schema": t["parameters"]} for t in TOOLS
]


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
def openai_client(base_url: str, admin: httpx.AsyncClient) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{base_url}/openai/v1", api_key="emulator", max_retries=0, timeout=30)


@pytest.fixture
def anthropic_client(base_url: str, admin: httpx.AsyncClient) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=f"{base_url}/anthropic", api_key="emulator", max_retries=0, timeout=30)


async def configure(admin: httpx.AsyncClient, **changes: Any) -> None:
    response = await admin.put("/emulator/config", json=changes)
    assert response.status_code == 200, response.text


# ---- plain and structured completions


async def test_plain_completion_openai(openai_client: openai.AsyncOpenAI) -> None:
    completion = await openai_client.chat.completions.create(
        model="gpt-4.1", messages=[{"role": "user", "content": "How do I water tomatoes?"}], temperature=0.2
    )
    message = completion.choices[0].message
    assert message.content is not None
    assert "tomatoes" in message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.completion_tokens > 0
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


async def test_plain_completion_anthropic(anthropic_client: anthropic.AsyncAnthropic) -> None:
    message = await anthropic_client.messages.create(
        model="claude-sonnet",
        max_tokens=512,
        system="Be brief.",
        messages=[{"role": "user", "content": "How do I water tomatoes?"}],
    )
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text"
    assert "tomatoes" in message.content[0].text
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens > 0


async def test_structured_output_openai_json_schema(openai_client: openai.AsyncOpenAI) -> None:
    completion = await openai_client.chat.completions.create(
        model="gpt-4.1",
        messages=[{"role": "user", "content": HELLO_TASK}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "planning_questions", "schema": task_schemas.PLANNING_QUESTIONS, "strict": True},
        },
    )
    content = completion.choices[0].message.content
    assert content is not None
    value = json.loads(content)
    jsonschema.validate(value, task_schemas.PLANNING_QUESTIONS)
    assert "hello world" in value["questions"][0]["question"]


class Question(BaseModel):
    question: str
    rationale: str


class PlanningQuestions(BaseModel):
    questions: list[Question]


async def test_structured_output_openai_parse_helper(openai_client: openai.AsyncOpenAI) -> None:
    completion = await openai_client.chat.completions.parse(
        model="gpt-4.1",
        messages=[{"role": "user", "content": f"max_questions: 4\n{HELLO_TASK}"}],
        response_format=PlanningQuestions,
    )
    parsed = completion.choices[0].message.parsed
    assert parsed is not None
    assert len(parsed.questions) == 4


async def test_structured_output_anthropic_forced_tool(anthropic_client: anthropic.AsyncAnthropic) -> None:
    message = await anthropic_client.messages.create(
        model="claude-sonnet",
        max_tokens=2048,
        messages=[{"role": "user", "content": HELLO_TASK}],
        tools=[{"name": "planning_questions", "input_schema": task_schemas.PLANNING_QUESTIONS}],
        tool_choice={"type": "tool", "name": "planning_questions"},
    )
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert block.type == "tool_use"
    assert block.name == "planning_questions"
    jsonschema.validate(block.input, task_schemas.PLANNING_QUESTIONS)


async def test_two_providers_give_two_distinct_candidates(
    openai_client: openai.AsyncOpenAI, anthropic_client: anthropic.AsyncAnthropic
) -> None:
    from_openai = await openai_client.chat.completions.create(
        model="gpt-4.1",
        messages=[{"role": "user", "content": HELLO_TASK}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "planning_questions", "schema": task_schemas.PLANNING_QUESTIONS},
        },
    )
    from_anthropic = await anthropic_client.messages.create(
        model="claude-sonnet",
        max_tokens=2048,
        messages=[{"role": "user", "content": HELLO_TASK}],
        tools=[{"name": "planning_questions", "input_schema": task_schemas.PLANNING_QUESTIONS}],
        tool_choice={"type": "tool", "name": "planning_questions"},
    )
    first = json.loads(from_openai.choices[0].message.content or "")
    block = from_anthropic.content[0]
    assert block.type == "tool_use"
    assert first != block.input


# ---- streaming: the same answers, in pieces, through the SDKs' stream parsers

PLANNING_FORMAT: Any = {
    "type": "json_schema",
    "json_schema": {"name": "planning_questions", "schema": task_schemas.PLANNING_QUESTIONS},
}
PLANNING_TOOL: Any = {
    "tools": [{"name": "planning_questions", "input_schema": task_schemas.PLANNING_QUESTIONS}],
    "tool_choice": {"type": "tool", "name": "planning_questions"},
}
TOMATOES: Any = [{"role": "user", "content": "How do I water tomatoes in a hot and dry summer?"}]


async def test_openai_streams_the_answer_in_chunks_with_usage(openai_client: openai.AsyncOpenAI) -> None:
    whole = await openai_client.chat.completions.create(model="gpt-4.1", messages=TOMATOES)
    stream = await openai_client.chat.completions.create(
        model="gpt-4.1", messages=TOMATOES, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]

    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) >= 3
    assert "".join(texts) == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert {c.id for c in chunks} == {chunks[0].id}
    assert chunks[-1].usage is not None
    assert whole.usage is not None
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


async def test_openai_stream_helper_parses_a_structured_answer(openai_client: openai.AsyncOpenAI) -> None:
    messages: Any = [{"role": "user", "content": f"max_questions: 3\n{HELLO_TASK}"}]
    whole = await openai_client.chat.completions.parse(
        model="gpt-4.1", messages=messages, response_format=PlanningQuestions
    )
    deltas: list[str] = []
    async with openai_client.chat.completions.stream(
        model="gpt-4.1", messages=messages, response_format=PlanningQuestions
    ) as stream:
        async for event in stream:
            if event.type == "content.delta":
                deltas.append(event.delta)
        final = await stream.get_final_completion()

    assert len(deltas) >= 3
    assert "".join(deltas) == whole.choices[0].message.content
    assert final.choices[0].message.parsed == whole.choices[0].message.parsed
    assert final.choices[0].message.parsed is not None
    assert len(final.choices[0].message.parsed.questions) == 3


async def test_openai_stream_helper_puts_tool_calls_back_together(openai_client: openai.AsyncOpenAI) -> None:
    messages: Any = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": HELLO_TASK}]
    whole = await openai_client.chat.completions.create(model="gpt-4.1", messages=messages, tools=OPENAI_TOOLS)
    argument_deltas = 0
    async with openai_client.chat.completions.stream(model="gpt-4.1", messages=messages, tools=OPENAI_TOOLS) as stream:
        async for event in stream:
            argument_deltas += event.type == "tool_calls.function.arguments.delta"
        final = await stream.get_final_completion()

    expected = whole.choices[0].message.tool_calls or []
    calls = final.choices[0].message.tool_calls or []
    assert argument_deltas > len(calls)
    assert final.choices[0].finish_reason == "tool_calls"
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls if c.type == "function"] == [
        (c.function.name, json.loads(c.function.arguments)) for c in expected if c.type == "function"
    ]


async def test_anthropic_streams_the_messages_events(anthropic_client: anthropic.AsyncAnthropic) -> None:
    whole = await anthropic_client.messages.create(model="claude-sonnet", max_tokens=512, messages=TOMATOES)
    stream = await anthropic_client.messages.create(
        model="claude-sonnet", max_tokens=512, messages=TOMATOES, stream=True
    )
    events = [event async for event in stream]

    assert [e.type for e in events[:2]] == ["message_start", "content_block_start"]
    assert [e.type for e in events[-3:]] == ["content_block_stop", "message_delta", "message_stop"]
    texts = [e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta"]
    assert len(texts) >= 3
    assert whole.content[0].type == "text"
    assert "".join(texts) == whole.content[0].text
    start, end = events[0], events[-2]
    assert start.type == "message_start"
    assert end.type == "message_delta"
    assert start.message.usage.input_tokens == whole.usage.input_tokens
    assert end.usage.output_tokens == whole.usage.output_tokens
    assert end.delta.stop_reason == "end_turn"


async def test_anthropic_stream_helper_gives_the_same_message(anthropic_client: anthropic.AsyncAnthropic) -> None:
    whole = await anthropic_client.messages.create(model="claude-sonnet", max_tokens=512, messages=TOMATOES)
    async with anthropic_client.messages.stream(model="claude-sonnet", max_tokens=512, messages=TOMATOES) as stream:
        texts = [text async for text in stream.text_stream]
        final = await stream.get_final_message()

    assert len(texts) >= 3
    assert [b.model_dump() for b in final.content] == [b.model_dump() for b in whole.content]
    assert (final.stop_reason, final.usage.output_tokens) == (whole.stop_reason, whole.usage.output_tokens)


async def test_anthropic_stream_helper_streams_a_forced_tools_input(
    anthropic_client: anthropic.AsyncAnthropic,
) -> None:
    messages: Any = [{"role": "user", "content": HELLO_TASK}]
    whole = await anthropic_client.messages.create(
        model="claude-sonnet", max_tokens=2048, messages=messages, **PLANNING_TOOL
    )
    partial: list[str] = []
    async with anthropic_client.messages.stream(
        model="claude-sonnet", max_tokens=2048, messages=messages, **PLANNING_TOOL
    ) as stream:
        async for event in stream:
            if event.type == "input_json":
                partial.append(event.partial_json)
        final = await stream.get_final_message()

    assert len(partial) >= 3
    block, expected = final.content[0], whole.content[0]
    assert block.type == expected.type == "tool_use"
    assert json.loads("".join(partial)) == block.input == expected.input
    assert final.stop_reason == "tool_use"


async def test_faults_come_before_a_stream_starts(
    openai_client: openai.AsyncOpenAI, anthropic_client: anthropic.AsyncAnthropic, admin: httpx.AsyncClient
) -> None:
    await configure(
        admin,
        faults=[
            {"match": {"provider": "openai"}, "kind": "error", "count": 1},
            {"match": {"provider": "anthropic"}, "kind": "rate_limit", "count": 1},
        ],
    )
    with pytest.raises(openai.InternalServerError):
        await openai_client.chat.completions.create(model="m", messages=TOMATOES, stream=True)
    with pytest.raises(anthropic.RateLimitError):
        await anthropic_client.messages.create(model="m", max_tokens=64, messages=TOMATOES, stream=True)


async def test_a_malformed_answer_streams_its_spoiled_text(
    openai_client: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    await configure(admin, faults=[{"match": {"task": "planning_questions"}, "kind": "malformed", "count": 2}])
    messages: Any = [{"role": "user", "content": HELLO_TASK}]
    whole = await openai_client.chat.completions.create(
        model="gpt-4.1", messages=messages, response_format=PLANNING_FORMAT
    )
    stream = await openai_client.chat.completions.create(
        model="gpt-4.1", messages=messages, response_format=PLANNING_FORMAT, stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert text == whole.choices[0].message.content
    with pytest.raises((ValueError, jsonschema.ValidationError)):
        jsonschema.validate(json.loads(text), task_schemas.PLANNING_QUESTIONS)
    stats = (await admin.get("/emulator/stats")).json()
    assert stats["faults_injected"]["malformed"] == 2


async def test_latency_comes_first_then_the_delay_between_chunks(
    openai_client: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    await configure(admin, latency_ms=200, stream_chunk_delay_ms=40)
    started = time.monotonic()
    stream = await openai_client.chat.completions.create(model="m", messages=TOMATOES, stream=True)
    arrivals = [time.monotonic() async for _ in stream]

    assert arrivals[0] - started >= 0.2
    assert len(arrivals) >= 5
    # Every chunk was sent at least 40 ms after the one before; read as they came, not all at once.
    assert arrivals[-1] - arrivals[0] >= 0.04 * (len(arrivals) - 1) * 0.9


# ---- the coding agent over tool calls, with the tools really executed


async def execute_tool(name: str, arguments: dict[str, Any], workspace: Path) -> str:
    if name == "run_tests":
        target = arguments.get("path") or "."
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(target),
            cwd=workspace,
            env={"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
        return f"{output.decode()}\nexit code: {process.returncode}"
    return await asyncio.to_thread(file_tool, name, arguments, workspace)


def file_tool(name: str, arguments: dict[str, Any], workspace: Path) -> str:
    path = workspace / str(arguments.get("path", "."))
    assert path.resolve() == workspace.resolve() or workspace.resolve() in path.resolve().parents
    if name == "fs_write_file":
        path.write_text(arguments["content"])
        return f"wrote {arguments['path']} ({len(arguments['content'])} bytes)"
    if name == "fs_read_file":
        return path.read_text()
    return "\n".join(sorted(p.name for p in path.iterdir()))


def python_files(workspace: Path) -> set[str]:
    return {p.name for p in workspace.glob("*.py")}


async def openai_agent(client: openai.AsyncOpenAI, task: str, workspace: Path) -> tuple[str, list[str]]:
    messages: list[Any] = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": task}]
    called: list[str] = []
    for _ in range(10):
        completion = await client.chat.completions.create(model="gpt-4.1", messages=messages, tools=OPENAI_TOOLS)
        message = completion.choices[0].message
        if not message.tool_calls:
            return message.content or "", called
        assert completion.choices[0].finish_reason == "tool_calls"
        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls:
            assert call.type == "function"
            called.append(call.function.name)
            output = await execute_tool(call.function.name, json.loads(call.function.arguments), workspace)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": output})
    raise AssertionError("the agent did not finish")


async def anthropic_agent(client: anthropic.AsyncAnthropic, task: str, workspace: Path) -> tuple[str, list[str]]:
    messages: list[Any] = [{"role": "user", "content": task}]
    called: list[str] = []
    for _ in range(10):
        response = await client.messages.create(
            model="claude-sonnet", max_tokens=4096, system=SYSTEM, messages=messages, tools=ANTHROPIC_TOOLS
        )
        uses = [block for block in response.content if block.type == "tool_use"]
        if not uses:
            return "".join(block.text for block in response.content if block.type == "text"), called
        assert response.stop_reason == "tool_use"
        messages.append({"role": "assistant", "content": [block.model_dump() for block in response.content]})
        results = []
        for use in uses:
            called.append(use.name)
            output = await execute_tool(use.name, dict(use.input), workspace)
            results.append({"type": "tool_result", "tool_use_id": use.id, "content": output})
        messages.append({"role": "user", "content": results})
    raise AssertionError("the agent did not finish")


async def run_program(path: Path) -> str:
    process = await asyncio.create_subprocess_exec(sys.executable, str(path), stdout=asyncio.subprocess.PIPE)
    output, _ = await process.communicate()
    return output.decode()


async def test_coding_agent_openai_hello_world(openai_client: openai.AsyncOpenAI, tmp_path: Path) -> None:
    final, called = await openai_agent(openai_client, HELLO_TASK, tmp_path)
    assert "VERIFICATION_SUCCESS" in final
    assert called == ["fs_write_file", "fs_write_file", "run_tests"]
    assert await asyncio.to_thread((tmp_path / "hello.py").read_text) == 'print("hello world")\n'
    assert await run_program(tmp_path / "hello.py") == "hello world\n"


async def test_coding_agent_anthropic_function(anthropic_client: anthropic.AsyncAnthropic, tmp_path: Path) -> None:
    final, _ = await anthropic_agent(anthropic_client, "Write a function `is_prime(n)` with pytest tests.", tmp_path)
    assert "VERIFICATION_SUCCESS" in final
    assert await asyncio.to_thread(python_files, tmp_path) == {"is_prime.py", "test_is_prime.py"}


async def test_bad_code_fault_fails_the_first_run_then_recovers(
    openai_client: openai.AsyncOpenAI, admin: httpx.AsyncClient, tmp_path: Path
) -> None:
    await configure(admin, faults=[{"match": {"task": "coding_agent"}, "kind": "bad_code", "count": 1}])
    final, called = await openai_agent(openai_client, "Write a function that adds two numbers.", tmp_path)
    assert called == ["fs_write_file", "fs_write_file", "run_tests", "fs_write_file", "run_tests"]
    assert "VERIFICATION_SUCCESS" in final
    stats = (await admin.get("/emulator/stats")).json()
    assert stats["faults_injected"]["bad_code"] == 1
    assert stats["requests_by_task"]["coding_agent"] == 5


async def test_bad_code_for_ever_ends_in_verification_failed(
    anthropic_client: anthropic.AsyncAnthropic, admin: httpx.AsyncClient, tmp_path: Path
) -> None:
    await configure(admin, faults=[{"kind": "bad_code"}])
    final, _ = await anthropic_agent(anthropic_client, "Compute the factorial of n.", tmp_path)
    assert "VERIFICATION_FAILED" in final


# ---- faults, latency, errors


async def test_rate_limit_surfaces_as_rate_limit_error(
    openai_client: openai.AsyncOpenAI, anthropic_client: anthropic.AsyncAnthropic, admin: httpx.AsyncClient
) -> None:
    await configure(admin, rate_limit_rate=1.0)
    with pytest.raises(openai.RateLimitError) as openai_caught:
        await openai_client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert openai_caught.value.response.headers["retry-after"] == "0"
    with pytest.raises(anthropic.RateLimitError):
        await anthropic_client.messages.create(model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}])


async def test_server_error_surfaces_as_internal_server_error(
    openai_client: openai.AsyncOpenAI, anthropic_client: anthropic.AsyncAnthropic, admin: httpx.AsyncClient
) -> None:
    await configure(admin, faults=[{"match": {"provider": "openai"}, "kind": "error", "count": 1}], error_rate=0)
    with pytest.raises(openai.InternalServerError):
        await openai_client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    await openai_client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    await configure(admin, error_rate=1.0)
    with pytest.raises(anthropic.InternalServerError):
        await anthropic_client.messages.create(model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}])


async def test_sdk_retries_recover_from_an_injected_rate_limit(base_url: str, admin: httpx.AsyncClient) -> None:
    await configure(admin, faults=[{"kind": "rate_limit", "count": 1}])
    client = openai.AsyncOpenAI(base_url=f"{base_url}/openai/v1", api_key="emulator", max_retries=2)
    completion = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert completion.choices[0].message.content


async def test_malformed_structured_output_is_visibly_invalid(
    openai_client: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    await configure(admin, malformed_rate=1.0)
    for i in range(4):
        completion = await openai_client.chat.completions.create(
            model="gpt-4.1",
            messages=[{"role": "user", "content": f"Question set {i}: {HELLO_TASK}"}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "planning_questions", "schema": task_schemas.PLANNING_QUESTIONS},
            },
        )
        content = completion.choices[0].message.content or ""
        try:
            value = json.loads(content)
        except ValueError:
            continue
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(value, task_schemas.PLANNING_QUESTIONS)


async def test_latency_is_honoured(
    openai_client: openai.AsyncOpenAI, anthropic_client: anthropic.AsyncAnthropic, admin: httpx.AsyncClient
) -> None:
    await configure(admin, latency_ms=300)
    started = time.monotonic()
    await openai_client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    await anthropic_client.messages.create(model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert time.monotonic() - started >= 0.3


async def test_timeout_fault_holds_the_request(openai_client: openai.AsyncOpenAI, admin: httpx.AsyncClient) -> None:
    await configure(admin, timeout_seconds=0.5, faults=[{"kind": "timeout", "count": 1}])
    short = openai_client.with_options(timeout=0.2)
    with pytest.raises(openai.APITimeoutError):
        await short.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])


async def test_concurrent_requests_overlap_their_latency(base_url: str, admin: httpx.AsyncClient) -> None:
    await configure(admin, latency_ms=200)
    client = openai.AsyncOpenAI(base_url=f"{base_url}/openai/v1", api_key="emulator", max_retries=0)
    limit = asyncio.Semaphore(50)

    async def one(i: int) -> None:
        async with limit:
            await client.chat.completions.create(
                model="gpt-4.1",
                messages=[{"role": "user", "content": f"Evaluation {i}"}],
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "evaluation", "schema": task_schemas.EVALUATION},
                },
            )

    started = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(150)))
    # 150 calls x 0.2 s take 30 s one after the other and 0.6 s fully overlapped; the bound only proves overlap.
    assert time.monotonic() - started < 5.0


# ---- protocol errors and the admin API


async def test_missing_key_is_401_in_each_provider_shape(base_url: str, admin: httpx.AsyncClient) -> None:
    response = await admin.post(
        "/openai/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    response = await admin.post(
        "/anthropic/v1/messages", json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    )
    assert response.status_code == 401
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "authentication_error"


async def test_bad_requests_are_400(base_url: str, admin: httpx.AsyncClient) -> None:
    headers = {"x-api-key": "k"}
    response = await admin.post("/anthropic/v1/messages", headers=headers, json={"model": "m", "messages": []})
    assert response.status_code == 400
    assert "max_tokens" in response.json()["error"]["message"]
    response = await admin.post("/openai/v1/chat/completions", headers={"authorization": "Bearer k"}, content=b"{")
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    response = await admin.post("/openai/v1/nothing-here", headers={"authorization": "Bearer k"}, json={})
    assert response.status_code == 404
    assert "error" in response.json()


async def test_admin_config_validation_and_stats(admin: httpx.AsyncClient) -> None:
    assert (await admin.get("/healthz")).json() == {"status": "ok"}
    for bad in ({"error_rate": 2}, {"no_such_field": 1}, {"faults": [{"kind": "explode"}]}, ["not", "an", "object"]):
        response = await admin.put("/emulator/config", json=bad)
        assert response.status_code == 400, bad
        assert response.json()["error"]["message"]
    response = await admin.put("/emulator/config", json={"latency_ms": 5, "faults": [{"kind": "error", "count": 0}]})
    assert response.status_code == 200
    config = (await admin.get("/emulator/config")).json()
    assert config["latency_ms"] == 5
    assert config["faults"][0]["count"] == 0
    assert config["error_rate"] == 0
    stats = (await admin.post("/emulator/reset")).json()
    assert stats["requests_total"] == 0
    assert (await admin.get("/emulator/config")).json()["faults"] == []
