"""Channels and stubs for calling other Crucible services (traced, size-limited)."""

from __future__ import annotations

import grpc

from crucible_common.grpc_tracing import TracedChannel
from crucible_common.settings import Settings
from crucible_common.tls import Tls


def open_channel(address: str, *, max_message_bytes: int = 8 * 1024 * 1024, tls: Tls | None = None) -> grpc.aio.Channel:
    """A channel to another service that propagates trace context to the callee; over TLS when ``tls``
    is given (``Tls.from_settings``), else plaintext on the loopback or cluster network."""
    options = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        # Reconnect quickly when a service restarts under `crucible up`.
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 2000),
    ]
    if tls is not None:
        return TracedChannel(grpc.aio.secure_channel(address, tls.channel_credentials(), options=options))
    return TracedChannel(grpc.aio.insecure_channel(address, options=options))


def service_channel(address: str, settings: Settings) -> grpc.aio.Channel:
    """A channel to another Crucible service as the settings configure it (message size, TLS)."""
    return open_channel(address, max_message_bytes=settings.grpc_max_message_bytes, tls=Tls.from_settings(settings))
