"""Typed settings from the environment (prefix ``CRUCIBLE_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a Crucible process can be configured with; each reads what it needs."""

    model_config = SettingsConfigDict(env_prefix="CRUCIBLE_", extra="ignore", frozen=True)

    # When unset, `crucible up` starts an embedded Postgres and passes its URL to the services.
    database_url: str | None = None
    state_dir: Path = Path(".state")
    log_level: str = "INFO"

    spec_addr: str = "127.0.0.1:50051"
    run_addr: str = "127.0.0.1:50052"
    snapshot_addr: str = "127.0.0.1:50053"
    agent_addr: str = "127.0.0.1:50054"
    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(default=8080, ge=0, le=65535)
    # Slow clients: a request whose headers (or body) have not all arrived this long after its
    # first byte (or its headers) is answered 408 and its connection closed, so a few clients that
    # trickle bytes cannot hold the gateway's connections.
    gateway_header_timeout_seconds: float = Field(default=10.0, gt=0)
    gateway_body_timeout_seconds: float = Field(default=30.0, gt=0)
    # The offline LLM emulator `crucible up` starts when a provider has no API key.
    emulator_host: str = "127.0.0.1"
    emulator_port: int = Field(default=8090, ge=0, le=65535)

    db_pool_size: int = Field(default=10, ge=1, le=200)
    grpc_max_message_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    shutdown_grace_seconds: float = Field(default=5.0, ge=0)
    # Leased work (runs, sprints, agent runs, suites; crucible_common.leases): its process renews
    # the lease every heartbeat, and work whose process died passes to a live one once the lease
    # lapses. Shorter means a faster takeover and more renewals; keep a few heartbeats per lease.
    lease_seconds: float = Field(default=15.0, ge=1, le=3600)
    lease_heartbeat_seconds: float = Field(default=5.0, gt=0, le=1200)
    # The share of HTTP reads (GET, HEAD) that start a trace (crucible_common.telemetry): the UI
    # polls, and a trace of each poll costs more than the read. Writes and everything they lead to
    # (runs, summaries, sprints) are always traced; a traced caller's reads are traced too.
    trace_read_ratio: float = Field(default=0.1, ge=0, le=1)
    # The gateway requires `Authorization: Bearer <token>` when this is set.
    api_token: SecretStr | None = None
    # TLS between the processes (crucible_common.tls): off unless these name PEM files.
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_require_client_cert: bool = False

    @field_validator("log_level")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> Settings:
        if self.lease_heartbeat_seconds * 2 > self.lease_seconds:
            raise ValueError("lease_heartbeat_seconds must be at most half of lease_seconds")
        return self

    @property
    def gateway_url(self) -> str:
        return f"http://{self.gateway_host}:{self.gateway_port}"

    @property
    def emulator_url(self) -> str:
        return f"http://{self.emulator_host}:{self.emulator_port}"

    def service_addresses(self) -> dict[str, str]:
        return {
            "spec": self.spec_addr,
            "run": self.run_addr,
            "snapshot": self.snapshot_addr,
            "agent": self.agent_addr,
        }
