"""The gateway's one mapping from gRPC status to HTTP problem bodies."""

from __future__ import annotations

import json

import grpc
import pytest
from grpc_status import rpc_status

from crucible_common.errors import (
    Conflict,
    CrucibleError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PreconditionViolation,
    ResourceExhausted,
    Unavailable,
    to_status,
)
from crucible_gateway.errors import from_rpc_error


def _rpc_error(error: CrucibleError) -> grpc.aio.AioRpcError:
    status = rpc_status.to_status(to_status(error, "spec.crucible"))
    return grpc.aio.AioRpcError(
        status.code, grpc.aio.Metadata(), grpc.aio.Metadata(*status.trailing_metadata), status.details
    )


@pytest.mark.parametrize(
    ("error", "http_status"),
    [
        (InvalidArgument("bad"), 400),
        (NotFound("gone"), 404),
        (Conflict("stale"), 409),
        (FailedPrecondition("blocked"), 412),
        (ResourceExhausted("slow down"), 429),
        (Unavailable("down"), 503),
    ],
)
def test_canonical_codes_map_to_http(error: CrucibleError, http_status: int) -> None:
    response = from_rpc_error(_rpc_error(error))
    body = json.loads(bytes(response.body))
    assert response.status_code == http_status
    assert response.media_type == "application/problem+json"
    assert body["status"] == http_status
    assert body["reason"] == error.reason
    assert body["detail"] == error.message
    assert body["domain"] == "spec.crucible"


def test_violations_reach_the_body() -> None:
    bad = InvalidArgument("invalid", violations=[FieldViolation("title", "must not be empty")])
    body = json.loads(bytes(from_rpc_error(_rpc_error(bad)).body))
    assert body["field_violations"] == [{"field": "title", "description": "must not be empty"}]

    blocked = FailedPrecondition(
        "not ready",
        violations=[PreconditionViolation("MISSING_WORLD_MODEL", "projects/1", "generate a WorldModel first")],
        reason="RUN_BLOCKED",
    )
    body = json.loads(bytes(from_rpc_error(_rpc_error(blocked)).body))
    assert body["reason"] == "RUN_BLOCKED"
    assert body["precondition_violations"] == [
        {"type": "MISSING_WORLD_MODEL", "subject": "projects/1", "description": "generate a WorldModel first"}
    ]


def test_an_internal_error_hides_its_message() -> None:
    response = from_rpc_error(_rpc_error(CrucibleError("secret stack detail")))
    body = json.loads(bytes(response.body))
    assert response.status_code == 500
    assert "secret" not in body["detail"]


def test_a_plain_status_without_details_still_maps() -> None:
    error = grpc.aio.AioRpcError(
        grpc.StatusCode.DEADLINE_EXCEEDED, grpc.aio.Metadata(), grpc.aio.Metadata(), "Deadline Exceeded"
    )
    response = from_rpc_error(error)
    assert response.status_code == 504
    assert json.loads(bytes(response.body))["reason"] == "DEADLINE_EXCEEDED"
