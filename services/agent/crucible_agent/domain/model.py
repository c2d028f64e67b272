"""The agent context's domain: model calls, their cost, agent runs, candidates, decisions."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crucible_agent.domain.errors import ProviderError
from crucible_agent.domain.pricing import Price

JsonObject = dict[str, Any]

PROVIDERS = ("openai", "anthropic")


class Role(enum.StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: JsonObject


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: JsonObject


@dataclass(frozen=True)
class Correlation:
    project_id: str = ""
    run_id: str = ""
    sprint_id: str = ""
    snapshot_test_id: str = ""
    purpose: str = ""
    agent_run_id: str = ""

    def with_purpose(self, purpose: str, agent_run_id: str = "") -> Correlation:
        return Correlation(
            self.project_id,
            self.run_id,
            self.sprint_id,
            self.snapshot_test_id,
            purpose,
            agent_run_id or self.agent_run_id,
        )


class RecordingMode(enum.StrEnum):
    OFF = "off"
    RECORD = "record"
    REPLAY = "replay"


# A recording key of this form names a run: its replay is answered from that run's own call log
# (its calls with the same request), so a run is replayable without having been recorded.
RUN_RECORDING_PREFIX = "run:"


@dataclass(frozen=True)
class Recording:
    mode: RecordingMode = RecordingMode.OFF
    key: str = ""

    @property
    def run_id(self) -> str:
        """The run whose calls answer a replay, for a key ``run:<run id>``; "" for a named recording."""
        return self.key.removeprefix(RUN_RECORDING_PREFIX).strip() if self.key.startswith(RUN_RECORDING_PREFIX) else ""

    @property
    def problem(self) -> str | None:
        """Why a ``run:`` key cannot serve the mode, or None."""
        if self.mode is RecordingMode.OFF or not self.key.startswith(RUN_RECORDING_PREFIX):
            return None
        if not self.run_id:
            return f"{RUN_RECORDING_PREFIX}<run id> names no run"
        if self.mode is RecordingMode.RECORD:
            # A run's calls are stored anyway; recording them again under its name would make a
            # second copy that no replay reads.
            return f"a {RUN_RECORDING_PREFIX}<run id> key is replayed from the run's calls, never recorded"
        return None


@dataclass(frozen=True)
class LlmRequest:
    """One model call as a caller asks for it."""

    provider: str
    model: str
    messages: tuple[ChatMessage, ...]
    json_schema: JsonObject | None = None
    schema_name: str = ""
    tools: tuple[ToolSpec, ...] = ()
    max_tokens: int = 0
    temperature: float | None = None


@dataclass(frozen=True)
class CallAllowance:
    """What one call may spend over all its attempts: a structured re-ask that would take it past
    either limit is not made (None: no limit). Not part of the request: a call asked again under its
    idempotency key with another allowance is the same call."""

    usd: float | None = None
    tokens: int | None = None


@dataclass(frozen=True)
class ProviderResponse:
    """What a provider answered, normalised across SDKs."""

    text: str
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str
    response_model: str
    input_tokens: int
    output_tokens: int
    # False when the answer said nothing of its usage: its cost is unknown, not $0.
    usage_reported: bool = True


# Where a provider streams an answer's text, piece by piece, as the model writes it.
TextSink = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class Delta:
    """A piece of an answer's text as the model writes it.

    ``attempt`` counts every provider attempt of one logical call from 1 (retries after a provider
    error and re-asks after an invalid structured answer alike): a new number means the text of
    the earlier attempts is void.
    """

    text: str
    attempt: int


DeltaSink = Callable[[Delta], Awaitable[None]]

# Asked right before every provider attempt of leased work; raises (``LeaseLost``) when the work
# may no longer spend, e.g. because its sprint was cancelled or another process took it over.
Fence = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class ProviderAttempt:
    """One try at a provider call: its answer or its error, and how long it took."""

    number: int
    latency_ms: int
    response: ProviderResponse | None = None
    error: ProviderError | None = None
    # Its caller was cancelled while it was sent (neither answer nor error): maybe billed.
    cancelled: bool = False


class LlmCallStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INVALID_OUTPUT = "invalid_output"
    REPLAYED = "replayed"
    # Abandoned by its caller mid-answer (a stream closed, work cancelled): the provider may have
    # billed it, so its cost is unknown, not zero.
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class LlmCall:
    """One attempt at a model call, as stored (the row behind usage and cost)."""

    id: str
    provider: str
    model: str
    response_model: str
    correlation: Correlation
    status: LlmCallStatus
    input_tokens: int
    output_tokens: int
    usd: float | None
    latency_ms: int
    request_hash: str
    attempt: int
    error: str
    response: JsonObject | None
    request: JsonObject | None
    created_at: datetime
    # The caller's name for the call (see Complete's idempotency_key); "" when it gave none.
    idempotency_key: str = ""

    @property
    def answered(self) -> bool:
        """It holds an answer to give again: it succeeded, or replayed one (a replayed failure keeps its error)."""
        return self.status in (LlmCallStatus.SUCCEEDED, LlmCallStatus.REPLAYED) and not self.error


@dataclass(frozen=True)
class LlmResult:
    """A successful model call: the answer and every attempt it took."""

    text: str
    structured: JsonObject | None
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str
    response_model: str
    calls: tuple[LlmCall, ...]
    # Answered from the stored call of the same idempotency key: nothing was paid now.
    idempotent_replay: bool = False

    @property
    def final_call(self) -> LlmCall:
        return self.calls[-1]

    @property
    def input_tokens(self) -> int:
        return sum(c.input_tokens for c in self.calls)

    @property
    def output_tokens(self) -> int:
        return sum(c.output_tokens for c in self.calls)

    @property
    def usd(self) -> float | None:
        """None when any attempt was unpriced: a partial sum would understate the cost."""
        costs = [c.usd for c in self.calls]
        return None if any(c is None for c in costs) else sum(c for c in costs if c is not None)


@dataclass(frozen=True)
class ModelRef:
    provider: str
    model: str


@dataclass(frozen=True)
class ModelPrice:
    model: ModelRef
    # None: the table has no price for the model (its cost is unknown, not zero).
    price: Price | None


@dataclass(frozen=True)
class UsageTotals:
    input_tokens: int = 0
    output_tokens: int = 0
    usd: float = 0.0
    calls: int = 0
    unpriced_calls: int = 0
    failed_calls: int = 0
    replayed_calls: int = 0
    cancelled_calls: int = 0


@dataclass(frozen=True)
class ModelUsage:
    provider: str
    model: str
    usage: UsageTotals
    priced: bool


class UsageDimension(enum.StrEnum):
    """What usage can be grouped by besides the model: a correlation id."""

    PROJECT = "project"
    RUN = "run"

    @property
    def correlation(self) -> str:
        """The Correlation field (and call-log column) it groups by."""
        return f"{self.value}_id"


@dataclass(frozen=True)
class UsageGroups:
    dimension: UsageDimension
    # (the project's or run's id, or "" for calls outside any; its usage), the most expensive first.
    groups: tuple[tuple[str, UsageTotals], ...]
    truncated: bool


@dataclass(frozen=True)
class UsageReport:
    total: UsageTotals
    by_model: list[ModelUsage]
    groups: tuple[UsageGroups, ...] = ()
    # The filter's run's keyed calls still being made (0 without a run in the filter).
    calls_in_flight: int = 0


# ---------------------------------------------------------------- agent runs


class AgentRunStatus(enum.StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class SubagentConfig:
    name: str
    provider: str
    model: str
    system_prompt: str = ""


@dataclass(frozen=True)
class JudgeConfig:
    provider: str
    model: str
    instructions: str = ""


@dataclass(frozen=True)
class ForkOrigin:
    run_id: str
    checkpoint_id: str
    checkpoint_label: str
    label: str
    reason: str


@dataclass(frozen=True)
class AgentRun:
    id: str
    status: AgentRunStatus
    message: str
    history: tuple[ChatMessage, ...]
    subagents: tuple[SubagentConfig, ...]
    judge: JudgeConfig | None
    workspace_ref: str
    metadata: JsonObject
    correlation: Correlation
    recording: Recording
    fork_of: ForkOrigin | None
    failure_reason: str
    created_at: datetime
    updated_at: datetime
    # When set, subagents answer with JSON valid against it.
    json_schema: JsonObject | None = None
    schema_name: str = ""


@dataclass(frozen=True)
class CandidateMetrics:
    """What producing one candidate cost."""

    duration_ms: int
    input_tokens: int
    output_tokens: int
    # None when a call was unpriced: the cost is unknown, not zero.
    usd: float | None
    # Model calls it took, retries and re-asks included.
    attempts: int
    # The model that answered last, as the provider reports it.
    response_model: str


@dataclass(frozen=True)
class Candidate:
    id: str
    agent_run_id: str
    name: str
    provider: str
    model: str
    output: str
    metrics: CandidateMetrics
    llm_call_id: str
    created_at: datetime
    structured: JsonObject | None = None


@dataclass(frozen=True)
class SubagentError:
    agent_run_id: str
    name: str
    provider: str
    model: str
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    agent_run_id: str
    candidate_id: str
    candidate_name: str
    provider: str
    model: str
    rationale: str
    fallback: bool
    fallback_reason: str


@dataclass(frozen=True)
class Checkpoint:
    id: str
    agent_run_id: str
    sequence: int
    label: str
    state: JsonObject
    created_at: datetime


@dataclass(frozen=True)
class AgentRunResult:
    run: AgentRun
    candidates: list[Candidate]
    decision: Decision | None
    checkpoints: list[Checkpoint]
    errors: list[SubagentError] = field(default_factory=list)
