"""Bodies over 2 MiB are refused with 413 before the application reads them, declared or chunked."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx

from crucible.spec.v1 import spec_service_pb2 as spec_pb
from crucible_common.protobuf import struct_to_dict
from crucible_gateway.app import MAX_BODY_BYTES
from tests.unit.gateway.conftest import assert_problem
from tests.unit.gateway.fakes import PROJECT_ID, Fakes


async def _chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_a_declared_length_over_the_limit_is_refused(fakes: Fakes, http: httpx.AsyncClient) -> None:
    response = await http.post("/api/projects", content=b"x" * (MAX_BODY_BYTES + 1))

    assert_problem(response, 413, "PAYLOAD_TOO_LARGE")
    assert fakes.calls() == []


async def test_a_chunked_body_over_the_limit_is_refused(fakes: Fakes, http: httpx.AsyncClient) -> None:
    body = b"x" * (MAX_BODY_BYTES + 1)
    request = http.build_request("POST", "/api/projects", content=_chunks(body, 512 * 1024))
    assert "content-length" not in request.headers

    response = await http.send(request)

    assert_problem(response, 413, "PAYLOAD_TOO_LARGE")
    assert fakes.calls() == []


async def test_a_chunked_body_within_the_limit_reaches_the_route_whole(fakes: Fakes, http: httpx.AsyncClient) -> None:
    # A world model's data has no length of its own: only the body's limit bounds it.
    item = "d" * (MAX_BODY_BYTES - 100)
    body = json.dumps({"model_data": {"actors": [item]}}).encode()

    response = await http.put(
        f"/api/projects/{PROJECT_ID}/world-model",
        content=_chunks(body, 64 * 1024),
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 200, response.text
    request = fakes.spec.only_call().request
    assert isinstance(request, spec_pb.UpdateWorldModelRequest)
    assert struct_to_dict(request.world_model.model_data) == {"actors": [item]}


async def test_a_declared_length_within_the_limit_passes(fakes: Fakes, http: httpx.AsyncClient) -> None:
    response = await http.post("/api/projects", json={"title": "Small"})

    assert response.status_code == 201
    assert fakes.spec.only_call().request == spec_pb.CreateProjectRequest(title="Small")
