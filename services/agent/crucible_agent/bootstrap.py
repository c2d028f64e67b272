"""The agent service's composition root."""

from __future__ import annotations

from pathlib import Path

from crucible_common.database import create_engine
from crucible_common.runtime import ServiceProcess
from crucible_common.settings import Settings

SCHEMA = "agent"
MIGRATIONS = Path(__file__).parent / "migrations"


def build(settings: Settings) -> ServiceProcess:
    assert settings.database_url, "checked by the runtime before build()"
    engine = create_engine(settings.database_url, pool_size=settings.db_pool_size, application_name="crucible-agent")
    # Its contract arrives with its own issue; until then it migrates and answers health.
    return ServiceProcess(
        name="agent",
        address=settings.agent_addr,
        definitions=[],
        engine=engine,
        schema=SCHEMA,
        migrations=MIGRATIONS,
    )
