"""``crucible-emulator`` / ``python -m crucible_emulator``: serve the offline LLM emulator."""

from __future__ import annotations

import logging

import uvicorn

from crucible_common.gc_tuning import tune_collector
from crucible_common.logs import configure_logging
from crucible_emulator.app import create_app
from crucible_emulator.config import EmulatorConfig, EmulatorSettings

logger = logging.getLogger(__name__)


def build_server(settings: EmulatorSettings, config: EmulatorConfig | None = None) -> uvicorn.Server:
    """A uvicorn server for the emulator; port 0 binds a free port (read it from ``server.servers``)."""
    app = create_app(config if config is not None else EmulatorConfig.from_env())
    return uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_config=None,
            lifespan="off",
            timeout_graceful_shutdown=5,
            # Callers may hold many keep-alive connections at once (benchmarks run 50 in parallel).
            backlog=2048,
        )
    )


def main() -> None:
    tune_collector()
    settings = EmulatorSettings()
    configure_logging("emulator", settings.log_level)
    logger.info(
        "offline LLM emulator (not a language model) on http://%s:%s: OpenAI at /openai/v1, Anthropic at /anthropic",
        settings.host,
        settings.port,
    )
    # uvicorn stops gracefully on SIGTERM and SIGINT: it stops accepting, lets requests finish, then exits.
    build_server(settings).run()


if __name__ == "__main__":
    main()
