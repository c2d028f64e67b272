"""gateway_read: GET a project through gateway → gRPC → Postgres, 32 concurrent keep-alive clients.

The load comes from a separate process speaking bare HTTP/1.1 over asyncio streams, so the
client's own cost stays small next to what is measured.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import httpx

from tests.bench.common import Result, stack

CLIENTS = 32
WARMUP_SECONDS = 2.0
MEASURE_SECONDS = 8.0
P50_BOUND_MS = 2.0
RPS_BOUND = 1500.0


def run() -> list[Result]:
    with stack() as running:
        project = httpx.post(f"{running.url}/api/projects", json={"title": "bench"}, timeout=10).json()
        path = f"/api/projects/{project['id']}"
        out = subprocess.run(
            [sys.executable, "-m", "tests.bench.gateway_read", running.url, path],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
    stats = json.loads(out)
    return [
        Result("gateway_read", "p50_ms", stats["p50_ms"], "ms", P50_BOUND_MS),
        Result("gateway_read", "p99_ms", stats["p99_ms"], "ms"),
        Result("gateway_read", "requests_per_second", stats["rps"], "req/s", RPS_BOUND, higher_is_better=True),
        Result("gateway_read", "errors", stats["errors"], "count"),
    ]


async def _client(host: str, port: int, request: bytes, stop_at: float, record_from: float, out: list[float]) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    errors = 0
    try:
        while True:
            start = time.perf_counter()
            if start >= stop_at:
                return errors
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            end = time.perf_counter()
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
            elif start >= record_from:
                out.append(end - start)
    finally:
        writer.close()


async def _load(url: str, path: str) -> dict[str, float]:
    host, _, port = url.removeprefix("http://").partition(":")
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n".encode()
    now = time.perf_counter()
    record_from = now + WARMUP_SECONDS
    stop_at = record_from + MEASURE_SECONDS
    latencies: list[float] = []
    errors = await asyncio.gather(
        *(_client(host, int(port), request, stop_at, record_from, latencies) for _ in range(CLIENTS))
    )
    latencies.sort()
    return {
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "rps": len(latencies) / MEASURE_SECONDS,
        "errors": float(sum(errors)),
    }


if __name__ == "__main__":
    import uvloop

    print(json.dumps(uvloop.run(_load(sys.argv[1], sys.argv[2]))))
