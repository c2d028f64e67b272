"""Requests for the offline model, built without any HTTP."""

from __future__ import annotations

from typing import Any

from crucible_emulator.config import Provider
from crucible_emulator.conversation import (
    Message,
    ModelRequest,
    OutputVia,
    StructuredOutput,
    ToolCall,
    ToolChoice,
    ToolResult,
    ToolSpec,
)

CODING_TOOLS = (
    ToolSpec(
        "fs_write_file",
        "Write a file in the workspace.",
        {
            "type": "object",
            "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
            "required": ["path", "content"],
        },
    ),
    ToolSpec("fs_read_file", "Read a file.", {"type": "object", "properties": {"path": {"type": "string"}}}),
    ToolSpec("fs_list_dir", "List a directory.", {"type": "object", "properties": {"path": {"type": "string"}}}),
    ToolSpec("run_tests", "Run pytest.", {"type": "object", "properties": {"path": {"type": "string"}}}),
)


def structured(
    name: str,
    schema: dict[str, Any],
    user: str,
    *,
    system: str = "",
    provider: Provider = "openai",
    model: str = "gpt-test",
) -> ModelRequest:
    via: OutputVia = "tool" if provider == "anthropic" else "response_format"
    return ModelRequest(
        provider=provider,
        model=model,
        system=system,
        messages=(Message("user", user),),
        output=StructuredOutput(name, schema, via),
    )


def chat(user: str, *, provider: Provider = "openai", model: str = "gpt-test", system: str = "") -> ModelRequest:
    return ModelRequest(provider=provider, model=model, system=system, messages=(Message("user", user),))


def coding(
    task: str,
    *turns: Message,
    system: str = "You are a coding agent. Use the tools; say VERIFICATION_SUCCESS when the tests pass.",
    provider: Provider = "openai",
    parallel: bool = True,
) -> ModelRequest:
    return ModelRequest(
        provider=provider,
        model="model-test",
        system=system,
        messages=(Message("user", task), *turns),
        tools=CODING_TOOLS,
        tool_choice=ToolChoice("auto", parallel=parallel),
    )


def assistant_calls(*calls: ToolCall) -> Message:
    return Message("assistant", tool_calls=calls)


def results(*items: ToolResult) -> Message:
    return Message("user", tool_results=items)
