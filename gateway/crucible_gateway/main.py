"""``crucible-gateway``: serve the REST API and the web UI (default http://127.0.0.1:8080)."""

from __future__ import annotations

import logging

import uvicorn
from starlette.types import ASGIApp

from crucible_common.gc_tuning import tune_collector
from crucible_common.logs import configure_logging
from crucible_common.settings import Settings
from crucible_common.telemetry import setup_tracing
from crucible_gateway.app import MAX_BODY_BYTES, create_app
from crucible_gateway.slow_clients import http_protocol

logger = logging.getLogger(__name__)


def server_config(app: ASGIApp, settings: Settings) -> uvicorn.Config:
    """How uvicorn serves the gateway's app."""
    return uvicorn.Config(
        app,
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
        # A WebSocket frame is capped as a request body is (uvicorn's own cap is 16 MiB): a larger
        # one closes the socket with 1009. The largest a client has reason to send, a chat turn
        # of 100,000 characters, is at most 600 KB of JSON.
        ws_max_size=MAX_BODY_BYTES,
    )


def main() -> None:
    tune_collector()
    settings = Settings()
    configure_logging("gateway", settings.log_level)
    tracer = setup_tracing("gateway", settings.state_dir, read_ratio=settings.trace_read_ratio)
    try:
        uvicorn.Server(server_config(create_app(settings), settings)).run()
    finally:
        tracer.shutdown()


if __name__ == "__main__":
    main()
