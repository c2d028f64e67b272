"""The emulator's settings: where it listens (fixed at start) and how it behaves (changeable at run time)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Provider = Literal["openai", "anthropic"]
FaultKind = Literal["error", "rate_limit", "malformed", "bad_code", "timeout", "truncated"]
FAULT_KINDS: tuple[FaultKind, ...] = ("error", "rate_limit", "malformed", "bad_code", "timeout", "truncated")


class FaultMatch(BaseModel):
    """Which requests a fault rule applies to; an unset field matches everything."""

    model_config = ConfigDict(extra="forbid")

    provider: Provider | None = None
    task: str | None = None
    model: str | None = None


class FaultRule(BaseModel):
    """A targeted fault: the first matching rule with ``count`` left fires and uses one count."""

    model_config = ConfigDict(extra="forbid")

    match: FaultMatch = Field(default_factory=FaultMatch)
    kind: FaultKind
    # Remaining firings; None fires forever.
    count: int | None = Field(default=None, ge=0)


class EmulatorConfig(BaseModel):
    """Latency and fault injection; replaced as a whole by ``PUT /emulator/config``."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    latency_ms: float = Field(default=0.0, ge=0, le=600_000)
    jitter_ms: float = Field(default=0.0, ge=0, le=600_000)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    rate_limit_rate: float = Field(default=0.0, ge=0, le=1)
    malformed_rate: float = Field(default=0.0, ge=0, le=1)
    # A `timeout` fault: the request is held `timeout_seconds`, then answered normally.
    timeout_rate: float = Field(default=0.0, ge=0, le=1)
    # A `truncated` fault: a 200 answer whose connection closes part-way through the body (or the stream).
    truncated_rate: float = Field(default=0.0, ge=0, le=1)
    seed: int = 0
    # How long a `timeout` fault holds the request before answering normally.
    timeout_seconds: float = Field(default=60.0, ge=0, le=3_600)
    # Between two events of a streamed answer (the latency comes before the first).
    stream_chunk_delay_ms: float = Field(default=0.0, ge=0, le=60_000)
    faults: list[FaultRule] = Field(default_factory=list)

    @classmethod
    def from_env(cls) -> EmulatorConfig:
        settings = EmulatorSettings()
        return cls(
            latency_ms=settings.latency_ms,
            jitter_ms=settings.jitter_ms,
            error_rate=settings.error_rate,
            rate_limit_rate=settings.rate_limit_rate,
            malformed_rate=settings.malformed_rate,
            timeout_rate=settings.timeout_rate,
            truncated_rate=settings.truncated_rate,
            seed=settings.seed,
            timeout_seconds=settings.timeout_seconds,
            stream_chunk_delay_ms=settings.stream_chunk_delay_ms,
        )


class EmulatorSettings(BaseSettings):
    """Everything read from ``CRUCIBLE_EMULATOR_*`` at start-up."""

    model_config = SettingsConfigDict(env_prefix="CRUCIBLE_EMULATOR_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)
    log_level: str = "INFO"
    latency_ms: float = Field(default=0.0, ge=0)
    jitter_ms: float = Field(default=0.0, ge=0)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    rate_limit_rate: float = Field(default=0.0, ge=0, le=1)
    malformed_rate: float = Field(default=0.0, ge=0, le=1)
    timeout_rate: float = Field(default=0.0, ge=0, le=1)
    truncated_rate: float = Field(default=0.0, ge=0, le=1)
    seed: int = 0
    timeout_seconds: float = Field(default=60.0, ge=0, le=3_600)
    stream_chunk_delay_ms: float = Field(default=0.0, ge=0)

    @field_validator("log_level")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()
