"""The agent service's settings: the shared ones plus providers, limits and prices."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr

from crucible_common.settings import Settings


class AgentSettings(Settings):
    # The providers' own variable names, as their SDKs and users expect them.
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "CRUCIBLE_OPENAI_API_KEY")
    )
    anthropic_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ANTHROPIC_API_KEY", "CRUCIBLE_ANTHROPIC_API_KEY")
    )
    # Any OpenAI-compatible server (and the offline emulator) is reached by its base URL.
    openai_base_url: str | None = None
    anthropic_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    anthropic_model: str = "claude-haiku-4-5"

    # A pipeline run evaluates 50 pairs at a time by default; the providers' own rate limits are
    # met by the retries on 429.
    llm_concurrency: int = Field(default=64, ge=1, le=1000, description="concurrent calls per provider")
    llm_timeout_seconds: float = Field(default=120.0, gt=0)
    llm_max_retries: int = Field(default=3, ge=0, le=10, description="retries on 429 / 5xx / timeouts")
    llm_retry_base_seconds: float = Field(default=0.5, ge=0)
    structured_output_retries: int = Field(default=2, ge=0, le=5)
    # Prompt and completion text go into spans only when this is set.
    capture_prompts: bool = False
    # A JSON file {"model": {"input_per_mtok": USD, "output_per_mtok": USD}} extending the built-in table.
    llm_prices_file: Path | None = None
    # Sprint workspaces live here, one directory per sprint; default: <state_dir>/artifacts.
    artifacts_dir: Path | None = None
    sandbox_timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
