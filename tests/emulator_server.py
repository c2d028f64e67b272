"""The offline emulator in this process, on a free port: for tests of its wire and of the SDKs on it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from crucible_emulator.__main__ import build_server
from crucible_emulator.config import EmulatorConfig, EmulatorSettings


@contextlib.asynccontextmanager
async def emulator_server() -> AsyncIterator[str]:
    """The emulator's base URL while it serves."""
    server = build_server(EmulatorSettings(host="127.0.0.1", port=0), EmulatorConfig())
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started, "the emulator did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
