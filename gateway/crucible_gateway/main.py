"""``crucible-gateway``: serve the REST API and the web UI (default http://127.0.0.1:8080)."""

from __future__ import annotations

import logging

import uvicorn

from crucible_common.gc_tuning import tune_collector
from crucible_common.logs import configure_logging
from crucible_common.settings import Settings
from crucible_common.telemetry import setup_tracing
from crucible_gateway.app import create_app
from crucible_gateway.slow_clients import http_protocol

logger = logging.getLogger(__name__)


def main() -> None:
    tune_collector()
    settings = Settings()
    configure_logging("gateway", settings.log_level)
    tracer = setup_tracing("gateway", settings.state_dir, read_ratio=settings.trace_read_ratio)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        loop="uvloop",
        # httptools, with a time limit on a request's headers (uvicorn has none): slow_clients.
        http=http_protocol(settings.gateway_header_timeout_seconds),
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) or None,
    )
    try:
        uvicorn.Server(config).run()
    finally:
        tracer.shutdown()


if __name__ == "__main__":
    main()
