"""The spec service's settings: the shared ones plus the models of the planning interview."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from crucible_common.settings import Settings


class SpecSettings(Settings):
    # The two subagents of a dual_subagent interview (the first also answers a single one) ...
    planning_openai_model: str = "gpt-4o-mini"
    planning_anthropic_model: str = "claude-haiku-4-5"
    # ... and the judge that picks one of their question sets.
    planning_judge_provider: Literal["openai", "anthropic"] = "openai"
    planning_judge_model: str = "gpt-4o-mini"
    # How long one interview may take, all retries included, before the call fails.
    planning_timeout_seconds: float = Field(default=600.0, gt=0)
    # How long the agent service may take to create a sprint (no model is called).
    sprint_timeout_seconds: float = Field(default=10.0, gt=0)
    # The Architect: the model behind the chat ...
    architect_provider: Literal["openai", "anthropic"] = "openai"
    architect_model: str = "gpt-4o-mini"
    # ... how long one of its answers may take, retries included ...
    architect_timeout_seconds: float = Field(default=300.0, gt=0)
    # ... and how long a preflight or a read of the run service may take.
    run_timeout_seconds: float = Field(default=30.0, gt=0)
