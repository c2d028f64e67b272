"""llm_fanout: 1,000 structured completions through the agent service's gRPC API.

Against the offline emulator at 200 ms latency, 50 calls in flight. The lower bound is
calls * latency / concurrency; the ratio says how close the service comes to it.
"""

from __future__ import annotations

import asyncio
import time

import grpc

from crucible.agent.v1 import agent_service_pb2 as pb
from crucible.agent.v1 import agent_service_pb2_grpc as pb_grpc
from crucible_common.protobuf import struct
from tests.bench.common import Result, stack

CALLS = 1_000
CONCURRENCY = 50
LATENCY_SECONDS = 0.2
SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    },
    "required": ["title", "score", "tags"],
}


def run() -> list[Result]:
    env = {
        "CRUCIBLE_EMULATOR_LATENCY_MS": str(int(LATENCY_SECONDS * 1000)),
        # The provider limit must not be what throttles a concurrency of 50.
        "CRUCIBLE_LLM_CONCURRENCY": str(CONCURRENCY),
    }
    with stack(extra_env=env) as running:
        seconds, failures = asyncio.run(_fan_out(running.env["CRUCIBLE_AGENT_ADDR"]))
    bound = CALLS * LATENCY_SECONDS / CONCURRENCY
    return [
        Result("llm_fanout", "wall_seconds", seconds, "s", bound),
        Result("llm_fanout", "failed_calls", failures, "count"),
    ]


async def _fan_out(address: str) -> tuple[float, int]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.AgentServiceStub(channel)

        def request(i: int) -> pb.CompleteRequest:
            return pb.CompleteRequest(
                model=pb.ModelRef(
                    provider="openai" if i % 2 else "anthropic",
                    model_name="gpt-4o-mini" if i % 2 else "claude-haiku-4-5",
                ),
                messages=[pb.Message(role=pb.ROLE_USER, content=f"Summarise item {i} as a title, a score and tags.")],
                json_schema=struct(SCHEMA),
                schema_name="bench_item",
                correlation=pb.Correlation(purpose="bench"),
            )

        # Warm: both SDKs imported (the service loads them after it reports healthy), connections open.
        await asyncio.gather(stub.Complete(request(-1)), stub.Complete(request(-2)))
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(CALLS):
            queue.put_nowait(i)
        failures = 0

        async def worker() -> None:
            nonlocal failures
            while not queue.empty():
                i = queue.get_nowait()
                try:
                    await stub.Complete(request(i), timeout=60)
                except grpc.aio.AioRpcError:
                    failures += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return time.perf_counter() - started, failures
