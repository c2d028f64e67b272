"""gateway_read: GET a project through the gateway, as a client reads it.

The gateway answers project reads from its copy while the spec service's change feed vouches for
it (crucible_gateway/project_cache.py), so the default read stops at the gateway. The same reads
with `Cache-Control: no-cache` go the whole way, gateway → gRPC → spec service → Postgres, and are
measured too (the `_uncached` lines), since every read of a changed project and every other
resource's read pays that path.

Each way, two phases against one stack: latency with a single client (p50/p99; target p50 ≤ 2 ms
for the default reads), then throughput with 32 concurrent keep-alive clients (target ≥ 1,500
req/s; its latencies are reported too, though with 32 requests in flight they are bounded below by
32 / throughput), with the CPU each process spends per request under that load.
The load comes from a separate process speaking bare HTTP/1.1 through asyncio protocols, so the
client's own cost stays small next to what is measured.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import httpx

from tests.bench.common import CpuMeter, Result, RunningStack, stack

CONCURRENCY = 32
# The stack is measured settled: the agent service imports its provider SDKs just after start.
SETTLE_SECONDS = 5.0
WARMUP_SECONDS = 2.0
MEASURE_SECONDS = 8.0
P50_BOUND_MS = 2.0
RPS_BOUND = 1500.0


def run() -> list[Result]:
    results: list[Result] = []
    with stack() as running:
        project = httpx.post(f"{running.url}/api/projects", json={"title": "bench"}, timeout=10).json()
        path = f"/api/projects/{project['id']}"
        time.sleep(SETTLE_SECONDS)
        for fresh in (False, True):
            results += _measure(running, path, fresh)
    return results


def _measure(running: RunningStack, path: str, fresh: bool) -> list[Result]:
    suffix = "_uncached" if fresh else ""
    # Bounds on the reads as clients make them; the uncached path is reported, not bounded.
    p50_bound, rps_bound = (None, None) if fresh else (P50_BOUND_MS, RPS_BOUND)
    single = _phase(running.url, path, 1, fresh)
    meter = CpuMeter(running)
    before = meter.read()
    loaded = _phase(running.url, path, CONCURRENCY, fresh)
    spent = CpuMeter.spent(before, meter.read())
    # Per request served under load (warm-up included, as the CPU was spent on it too).
    cpu = [
        Result("gateway_read", f"cpu_ms_per_request_{name}{suffix}", spent[name] * 1000 / loaded["responses"], "ms")
        for name in ("gateway", "spec", "postgres")
        if name in spent
    ]
    return [
        Result("gateway_read", f"p50_ms{suffix}", single["p50_ms"], "ms", p50_bound),
        Result("gateway_read", f"p99_ms{suffix}", single["p99_ms"], "ms"),
        Result(
            "gateway_read", f"requests_per_second{suffix}", loaded["rps"], "req/s", rps_bound, higher_is_better=True
        ),
        Result("gateway_read", f"p50_ms_at_{CONCURRENCY}_clients{suffix}", loaded["p50_ms"], "ms"),
        Result("gateway_read", f"p99_ms_at_{CONCURRENCY}_clients{suffix}", loaded["p99_ms"], "ms"),
        Result("gateway_read", f"errors{suffix}", single["errors"] + loaded["errors"], "count"),
        *cpu,
    ]


def _phase(url: str, path: str, clients: int, fresh: bool) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "tests.bench.gateway_read", url, path, str(clients), "fresh" if fresh else "kept"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return json.loads(out)  # type: ignore[no-any-return]


class _Client(asyncio.Protocol):
    """One keep-alive connection sending the same GET back to back, timing each response."""

    def __init__(self, request: bytes, record_from: float, stop_at: float, latencies: list[float]) -> None:
        self.request = request
        self.record_from = record_from
        self.stop_at = stop_at
        self.latencies = latencies
        self.errors = 0
        self.responses = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.buffer = b""
        self.started = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self._send()

    def _send(self) -> None:
        self.started = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = self.buffer[:head_end]
        marker = head.lower().find(b"content-length:")
        length = int(head[marker + 15 : head.find(b"\r\n", marker)]) if marker >= 0 else 0
        if len(self.buffer) < head_end + 4 + length:
            return
        now = time.perf_counter()
        self.buffer = self.buffer[head_end + 4 + length :]
        if not head.startswith(b"HTTP/1.1 200"):
            self.errors += 1
        else:
            self.responses += 1
            if self.started >= self.record_from:
                self.latencies.append(now - self.started)
        if now >= self.stop_at:
            self.transport.close()
        else:
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def _load(url: str, path: str, clients: int, fresh: bool) -> dict[str, float]:
    host, _, port = url.removeprefix("http://").partition(":")
    no_cache = "Cache-Control: no-cache\r\n" if fresh else ""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n{no_cache}\r\n".encode()
    loop = asyncio.get_running_loop()
    record_from = time.perf_counter() + WARMUP_SECONDS
    stop_at = record_from + MEASURE_SECONDS
    latencies: list[float] = []
    protocols = []
    for _ in range(clients):
        _, protocol = await loop.create_connection(
            lambda: _Client(request, record_from, stop_at, latencies), host, int(port)
        )
        protocols.append(protocol)
    await asyncio.gather(*(p.done for p in protocols))
    latencies.sort()
    return {
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "rps": len(latencies) / MEASURE_SECONDS,
        "errors": float(sum(p.errors for p in protocols)),
        "responses": float(sum(p.responses for p in protocols)),
    }


if __name__ == "__main__":
    import uvloop

    print(json.dumps(uvloop.run(_load(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "fresh"))))
