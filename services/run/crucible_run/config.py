"""The run service's settings: the shared ones plus the pipeline's models and concurrency."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from crucible_common.settings import Settings

Provider = Literal["openai", "anthropic"]


class RunSettings(Settings):
    # Evaluations in flight at once, per run.
    run_concurrency: int = Field(default=50, ge=1, le=1000)
    # Who designs candidates and scenarios, and who evaluates them.
    run_designer_provider: Provider = "openai"
    run_designer_model: str = "gpt-4o-mini"
    run_evaluator_provider: Provider = "openai"
    run_evaluator_model: str = "gpt-4o-mini"
    # How long one model call may take through the agent service, its retries included: longer than
    # that service's own worst case with its default settings (3 structured attempts x 4 provider
    # attempts x 120 s, and their waits; not a wait for a provider slot), so the run does not give
    # up on a call still being made and, asking again after that call failed, pay for it twice.
    run_call_timeout_seconds: float = Field(default=2_400.0, gt=0)
    # How long a call waits for an agent service that does not answer (restarting) before failing.
    run_agent_wait_seconds: float = Field(default=60.0, ge=0)
