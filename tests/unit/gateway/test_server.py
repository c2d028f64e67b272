"""The gateway as uvicorn serves it (``main.server_config``): what only a real server enforces."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from crucible_common.settings import Settings
from crucible_gateway.app import MAX_BODY_BYTES
from crucible_gateway.main import server_config
from tests.unit.gateway.conftest import build_app
from tests.unit.gateway.fakes import SESSION_ID, Fakes

CHAT = f"/api/ws/chat-sessions/{SESSION_ID}"


@contextlib.asynccontextmanager
async def served(fakes: Fakes) -> AsyncIterator[str]:
    """The app behind a real uvicorn on a free port; yields its ws:// base URL."""
    app, _ = build_app(fakes)
    server = uvicorn.Server(server_config(app, Settings(gateway_port=0)))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            # uvicorn says it has started by a flag alone; a server that failed to start says it by ending.
            while not server.started:
                if task.done():
                    task.result()
                    raise AssertionError("uvicorn ended before it started")
                await asyncio.sleep(0.01)
            yield f"ws://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            await task


async def test_a_websocket_frame_larger_than_a_request_body_may_be_closes_the_socket_with_1009(fakes: Fakes) -> None:
    async with served(fakes) as base, connect(base + CHAT, max_size=None) as ws:
        # Under the cap, a frame is read and answered: this one's content is too long for a turn.
        await ws.send(json.dumps({"content": "x" * (MAX_BODY_BYTES - 100)}))
        refused = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert refused["type"] == "error"
        assert refused["problem"]["status"] == 400

        # The server may close while the frame is still being written.
        with contextlib.suppress(ConnectionClosed):
            await ws.send("x" * (MAX_BODY_BYTES + 1))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)

    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
