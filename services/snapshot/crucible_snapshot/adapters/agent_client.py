"""The snapshot service's client of the agent service: what model calls cost, by correlation id."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crucible.agent.v1 import agent_service_pb2 as pb
from crucible_snapshot.adapters.grpc_calls import call
from crucible_snapshot.service_layer.ports import Usage

if TYPE_CHECKING:  # the async stub type exists only in the generated .pyi
    from crucible.agent.v1.agent_service_pb2_grpc import AgentServiceAsyncStub


class AgentUsage(Usage):
    def __init__(self, stub: AgentServiceAsyncStub, *, timeout: float) -> None:
        self._stub = stub
        self._timeout = timeout

    async def spent_usd(self, *, run_id: str = "", snapshot_test_id: str = "") -> float:
        assert run_id or snapshot_test_id, "usage of everything is not what a suite spent"
        request = pb.GetUsageRequest(filter=pb.Correlation(run_id=run_id, snapshot_test_id=snapshot_test_id))
        answer = await call(lambda: self._stub.GetUsage(request, timeout=self._timeout, wait_for_ready=True))
        return answer.total.usd
