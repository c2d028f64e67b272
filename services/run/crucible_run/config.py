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
    # the agent service's own worst case by default (3 structured attempts x 4 provider attempts x
    # 120 s, and their waits), so the run does not give up on a call the agent service is still
    # making and, asking again after that call failed, pay for its attempts a second time.
    run_call_timeout_seconds: float = Field(default=2_400.0, gt=0)
    # How long a call waits for an agent service that does not answer (restarting) before failing.
    run_agent_wait_seconds: float = Field(default=60.0, ge=0)
