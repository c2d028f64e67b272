"""The agent context's use cases, one evolvable input dataclass each."""

from __future__ import annotations

from dataclasses import dataclass, field

from crucible_agent.domain.model import (
    CallAllowance,
    ChatMessage,
    Correlation,
    JsonObject,
    JudgeConfig,
    ModelRef,
    Recording,
    SubagentConfig,
    ToolSpec,
    UsageDimension,
)
from crucible_agent.domain.sprints import SpecSnapshot


@dataclass(frozen=True)
class Complete:
    provider: str
    model: str
    messages: tuple[ChatMessage, ...]
    json_schema: JsonObject | None = None
    schema_name: str = ""
    tools: tuple[ToolSpec, ...] = ()
    correlation: Correlation = field(default_factory=Correlation)
    max_tokens: int = 0
    # None: the provider's default.
    temperature: float | None = None
    recording: Recording = field(default_factory=Recording)
    # Names the call for the caller: a key whose call succeeded is answered from that call.
    idempotency_key: str = ""
    # What the call may spend, re-asks included; None: no limit.
    allowance: CallAllowance | None = None


@dataclass(frozen=True)
class ExecuteAgentRun:
    message: str
    # Empty: one subagent per configured provider, with its default model.
    subagents: tuple[SubagentConfig, ...] = ()
    # None: the first configured provider's default model judges.
    judge: JudgeConfig | None = None
    history: tuple[ChatMessage, ...] = ()
    workspace_ref: str = ""
    metadata: JsonObject = field(default_factory=dict)
    correlation: Correlation = field(default_factory=Correlation)
    recording: Recording = field(default_factory=Recording)
    # When set, every subagent answers with a JSON object valid against it.
    json_schema: JsonObject | None = None
    schema_name: str = ""
    # Set by in-process callers that must know the run's id before it ends (a sprint phase).
    run_id: str = ""


@dataclass(frozen=True)
class ForkAgentRun:
    agent_run_id: str
    checkpoint_id: str = ""
    checkpoint_label: str = ""
    label: str = ""
    reason: str = ""
    recording: Recording | None = None


@dataclass(frozen=True)
class GetAgentRun:
    agent_run_id: str


@dataclass(frozen=True)
class ListAgentRuns:
    filter: Correlation = field(default_factory=Correlation)
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class ListCheckpoints:
    agent_run_id: str
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class GetUsage:
    filter: Correlation = field(default_factory=Correlation)
    group_by: tuple[UsageDimension, ...] = ()
    # 0: the default.
    group_limit: int = 0


@dataclass(frozen=True)
class GetModelPrices:
    models: tuple[ModelRef, ...]


@dataclass(frozen=True)
class ListLlmCalls:
    filter: Correlation = field(default_factory=Correlation)
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class GetLlmCall:
    llm_call_id: str


# ---------------------------------------------------------------- sprints


@dataclass(frozen=True)
class CreateSprint:
    name: str
    goal: str
    spec: SpecSnapshot


@dataclass(frozen=True)
class StartSprint:
    sprint_id: str
    trigger_id: str
    trigger_source: str


@dataclass(frozen=True)
class CancelSprint:
    sprint_id: str
    reason: str = ""


@dataclass(frozen=True)
class ListSprints:
    spec_id: str = ""
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class WatchSprint:
    sprint_id: str
    after_sequence: int = 0


@dataclass(frozen=True)
class ListArtifacts:
    sprint_id: str
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class GetArtifact:
    sprint_id: str
    path: str
