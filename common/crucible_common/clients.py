"""Channels and stubs for calling other Crucible services (traced, size-limited)."""

from __future__ import annotations

import grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors


def open_channel(address: str, *, max_message_bytes: int = 8 * 1024 * 1024) -> grpc.aio.Channel:
    """An insecure loopback/cluster channel that propagates trace context to the callee."""
    return grpc.aio.insecure_channel(
        address,
        interceptors=aio_client_interceptors(),
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            # Reconnect quickly when a service restarts under `crucible up`.
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 2000),
        ],
    )
