"""The agent service's core wired to the offline emulator (served over HTTP) and real Postgres."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import uvicorn
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from crucible.agent.v1 import agent_service_pb2_grpc as pb_grpc
from crucible_agent import bootstrap
from crucible_agent.bootstrap import AgentCore
from crucible_agent.config import AgentSettings
from crucible_agent.domain.model import ToolSpec
from crucible_agent.entrypoints.grpc_servicer import AgentServicer
from crucible_common.grpc_server import ServiceDefinition, create_server
from crucible_emulator import create_app
from tests.conftest import free_port

# What the offline emulator answers by task: a structured answer, and the coding agent's tool calls.
TASK = "Create a Python script that prints 'hello world' to stdout."
QUESTIONS_SCHEMA = {
    "type": "object",
    "properties": {
        "questions": {
            "type": "array",
            "minItems": 1,
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {"question": {"type": "string"}, "rationale": {"type": "string"}},
                "required": ["question", "rationale"],
            },
        }
    },
    "required": ["questions"],
}
CODING_TOOLS = (
    ToolSpec(
        "fs_write_file",
        "Write a file in the workspace",
        {
            "type": "object",
            "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
            "required": ["path", "content"],
        },
    ),
    ToolSpec("run_tests", "Run pytest in the workspace", {"type": "object", "properties": {}}),
)


@dataclass
class Emulator:
    url: str

    async def configure(self, **config: Any) -> None:
        """Replace the emulator's behaviour (latency, faults) through its admin API."""
        full = {
            "latency_ms": 0,
            "jitter_ms": 0,
            "error_rate": 0,
            "rate_limit_rate": 0,
            "malformed_rate": 0,
            "stream_chunk_delay_ms": 0,
        }
        async with httpx.AsyncClient() as client:
            (await client.post(f"{self.url}/emulator/reset")).raise_for_status()
            response = await client.put(f"{self.url}/emulator/config", json=full | {"faults": []} | config)
            response.raise_for_status()

    async def requests_served(self) -> int:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{self.url}/emulator/stats")
            response.raise_for_status()
            return int(response.json()["requests_total"])


@contextlib.asynccontextmanager
async def serve_emulator() -> AsyncIterator[Emulator]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
        await asyncio.sleep(0.01)
    try:
        yield Emulator(f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await task


def agent_settings(emulator: Emulator, **overrides: Any) -> AgentSettings:
    values: dict[str, Any] = {
        "openai_api_key": SecretStr("test-key"),
        "anthropic_api_key": SecretStr("test-key"),
        "openai_base_url": f"{emulator.url}/openai/v1",
        "anthropic_base_url": f"{emulator.url}/anthropic",
        "llm_retry_base_seconds": 0.01,
        "llm_max_retries": 2,
        "structured_output_retries": 2,
    }
    values.update(overrides)
    return AgentSettings.model_construct(**{**AgentSettings().model_dump(), **values})


@contextlib.asynccontextmanager
async def agent_stub(core: AgentCore) -> AsyncIterator[pb_grpc.AgentServiceAsyncStub]:
    """The agent service's servicer over ``core``, served as in production, on a free loopback port."""
    servicer = AgentServicer(core.llm, core.runner, core.uow, core.calls)
    definition = ServiceDefinition(
        "crucible.agent.v1.AgentService", lambda server: pb_grpc.add_AgentServiceServicer_to_server(servicer, server)
    )
    server, port, _ = create_server("127.0.0.1:0", [definition], domain="agent.crucible")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield pb_grpc.AgentServiceStub(channel)
    finally:
        await server.stop(None)


@contextlib.asynccontextmanager
async def agent_core(engine: AsyncEngine, settings: AgentSettings) -> AsyncIterator[AgentCore]:
    core = bootstrap.build_core(settings, engine, bootstrap.build_providers(settings))
    try:
        yield core
    finally:
        await core.scheduler.close()
        await core.pool.close()
