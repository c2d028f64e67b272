"""Trace context crosses gateway → gRPC → service, and each process keeps its spans locally."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest

from tests.system.conftest import Stack

pytestmark = pytest.mark.system

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def _spans(traces: Path, trace_id: str) -> list[dict[str, object]]:
    spans = []
    for file in traces.glob("*.jsonl"):
        for line in file.read_text().splitlines():
            record = json.loads(line)
            if record["trace_id"] == trace_id:
                spans.append(record)
    return spans


async def test_one_trace_from_the_gateway_to_the_spec_service(stack: Stack, http: httpx.AsyncClient) -> None:
    headers = {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}
    response = await http.post("/api/projects", json={"title": "traced"}, headers=headers)
    assert response.status_code == 201

    deadline = time.monotonic() + 15
    spans: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        spans = _spans(stack.state_dir / "traces", TRACE_ID)
        if {s["service"] for s in spans} >= {"crucible-gateway", "crucible-spec"}:
            break
        await asyncio.sleep(0.2)
    by_kind = {(s["service"], s["kind"]): s for s in spans}
    gateway = by_kind[("crucible-gateway", "SERVER")]
    client = by_kind[("crucible-gateway", "CLIENT")]
    server = by_kind[("crucible-spec", "SERVER")]
    assert gateway["parent_span_id"] == "00f067aa0ba902b7"
    assert client["parent_span_id"] == gateway["span_id"]
    assert server["parent_span_id"] == client["span_id"]
    assert server["name"] == "/crucible.spec.v1.SpecService/CreateProject"
