"""A provider-neutral view of one model request and its answer, shared by both wire protocols."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from crucible_emulator.config import Provider

JsonObject = dict[str, Any]
Role = Literal["user", "assistant"]
ToolChoiceMode = Literal["auto", "none", "required", "tool"]
# How a structured answer travels: OpenAI `response_format`, a forced tool (either provider), or JSON mode.
OutputVia = Literal["response_format", "tool", "json_object"]


class EmulatorError(Exception):
    """Base of the emulator's own errors."""


class InvalidRequest(EmulatorError):
    """The request does not follow the provider's protocol; answered with HTTP 400."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: JsonObject


@dataclass(frozen=True)
class ToolResult:
    call_id: str
    content: str
    is_error: bool = False


@dataclass(frozen=True)
class Message:
    """A user turn (text and/or tool results) or an assistant turn (text and/or tool calls)."""

    role: Role
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_results: tuple[ToolResult, ...] = ()


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: JsonObject


@dataclass(frozen=True)
class ToolChoice:
    mode: ToolChoiceMode = "auto"
    name: str | None = None
    parallel: bool = True


@dataclass(frozen=True)
class StructuredOutput:
    """The schema a structured answer must follow; ``schema`` is None in JSON mode."""

    name: str
    schema: JsonObject | None
    via: OutputVia


@dataclass(frozen=True)
class ModelRequest:
    provider: Provider
    model: str
    system: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = field(default_factory=ToolChoice)
    output: StructuredOutput | None = None
    max_tokens: int | None = None
    # Answered as server-sent events; ``stream_usage`` adds OpenAI's usage chunk (Anthropic's events always count).
    stream: bool = False
    stream_usage: bool = False

    def tool(self, name: str) -> ToolSpec | None:
        return next((t for t in self.tools if t.name == name), None)

    def last_user_text(self) -> str:
        """The text of the latest user turn that has any, else the system text."""
        for message in reversed(self.messages):
            if message.role == "user" and message.text.strip():
                return message.text
        return self.system

    def all_text(self) -> str:
        parts = [self.system, *(m.text for m in self.messages)]
        for message in self.messages:
            parts.extend(r.content for r in message.tool_results)
        return "\n".join(p for p in parts if p)


@dataclass(frozen=True)
class Modifiers:
    """Faults that change the answer itself rather than the HTTP exchange."""

    malformed: bool = False
    bad_code: bool = False


@dataclass(frozen=True)
class ModelAnswer:
    """What the offline model says: text, tool calls, or a structured value (with its raw form)."""

    text: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    structured: Any = None
    # The structured answer as text on the wire (deliberately broken when a fault says so).
    raw_structured: str | None = None
    truncated: bool = False
