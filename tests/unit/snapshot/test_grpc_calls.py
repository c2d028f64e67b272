"""The snapshot service's calls to its neighbours: their errors as CrucibleErrors, their absence as Unavailable."""

from __future__ import annotations

import grpc
import pytest

from crucible_common.errors import RelayedError, Unavailable
from crucible_snapshot.adapters.grpc_calls import translated


def _error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "why")


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED])
def test_a_callee_that_did_not_answer_is_unavailable(code: grpc.StatusCode) -> None:
    error = translated(_error(code))

    assert isinstance(error, Unavailable)
    assert error.message == f"{code.name}: why"


@pytest.mark.parametrize("code", [grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION])
def test_any_other_answer_is_relayed_with_its_code(code: grpc.StatusCode) -> None:
    error = translated(_error(code))

    assert isinstance(error, RelayedError)
    assert not isinstance(error, Unavailable)
    assert error.code is code
