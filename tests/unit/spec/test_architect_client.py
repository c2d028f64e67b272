"""The Architect's adapter: the reply read out of the JSON while it streams, and the answer typed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from crucible.agent.v1 import agent_service_pb2 as pb
from crucible_common.protobuf import struct
from crucible_spec.adapters.architect_client import AgentArchitect
from crucible_spec.domain.architect import ArchitectIntent
from crucible_spec.domain.errors import ArchitectFailed, ArchitectUnavailable
from crucible_spec.domain.model import ChatSessionMode, Constraint, RunMode
from crucible_spec.service_layer.architect import ArchitectRequest

ANSWER = {
    "reply": "Noted: the budget must stay under one million.",
    "intent": "run_request",
    "problem_spec_patch": {"constraints": [{"name": "budget", "description": "under 1M", "weight": 100}], "goals": []},
    "world_model_patch": None,
    "recommended_run_config": {"mode": "seeded", "parameters": {"num_candidates": 4}, "rationale": "try it"},
}
REQUEST = ArchitectRequest(
    project_id="p",
    chat_session_id="s",
    session_mode=ChatSessionMode.SETUP,
    message="The budget must stay under one million. Run it.",
    message_id="m",
    problem_spec=None,
    world_model=None,
    history=(),
    runs=(),
)


class Stream:
    def __init__(self, events: list[pb.StreamCompleteResponse], error: grpc.aio.AioRpcError | None = None) -> None:
        self.events = events
        self.error = error

    def __aiter__(self) -> AsyncIterator[pb.StreamCompleteResponse]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[pb.StreamCompleteResponse]:
        for event in self.events:
            yield event
        if self.error is not None:
            raise self.error


class Stub:
    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.requests: list[pb.StreamCompleteRequest] = []

    def StreamComplete(self, request: pb.StreamCompleteRequest, timeout: float) -> Stream:
        self.requests.append(request)
        return self.stream


def deltas(text: str, attempt: int = 1, size: int = 9) -> list[pb.StreamCompleteResponse]:
    return [
        pb.StreamCompleteResponse(delta=pb.CompleteDelta(text=text[i : i + size], attempt=attempt))
        for i in range(0, len(text), size)
    ]


def final(answer: dict[str, Any]) -> pb.StreamCompleteResponse:
    return pb.StreamCompleteResponse(
        response=pb.CompleteResponse(content=json.dumps(answer), structured=struct(answer), llm_call_id="call-9")
    )


async def ask(stub: Stub) -> tuple[Any, list[tuple[str, bool]]]:
    seen: list[tuple[str, bool]] = []

    async def sink(text: str, restart: bool) -> None:
        seen.append((text, restart))

    architect = AgentArchitect(stub, provider="openai", model="gpt-4o-mini", timeout=5)  # type: ignore[arg-type]
    return await architect.answer(REQUEST, sink), seen


async def test_the_reply_streams_as_the_json_is_written_and_the_answer_is_typed() -> None:
    stub = Stub(Stream([*deltas(json.dumps(ANSWER)), final(ANSWER)]))

    answer, seen = await ask(stub)

    assert len(seen) > 2
    assert not any(restart for _, restart in seen)
    assert "".join(text for text, _ in seen) == ANSWER["reply"]
    assert answer.intent is ArchitectIntent.RUN_REQUEST
    assert answer.spec_patch is not None
    assert answer.spec_patch.constraints == (Constraint("budget", "under 1M", 100),)
    assert answer.world_patch is None
    assert answer.run_wish is not None
    assert (answer.run_wish.mode, answer.run_wish.num_candidates, answer.run_wish.num_scenarios) == (
        RunMode.SEEDED,
        4,
        0,
    )
    assert answer.llm_call_id == "call-9"
    request = stub.requests[0].request
    assert request.schema_name == "architect_reply"
    assert request.idempotency_key == "chat:m:architect"
    assert request.correlation.purpose == "architect"
    # The project's state travels in the last user message, as a JSON object.
    assert '"problem_spec": null' in request.messages[-1].content


async def test_a_retried_attempt_restarts_the_reply() -> None:
    broken = '{"reply": "First try that will be thrown a'
    stub = Stub(Stream([*deltas(broken, attempt=1), *deltas(json.dumps(ANSWER), attempt=2), final(ANSWER)]))

    _, seen = await ask(stub)

    restart = seen.index(("", True))
    assert "".join(text for text, _ in seen[:restart]).startswith("First try")
    assert "".join(text for text, _ in seen[restart + 1 :]) == ANSWER["reply"]


async def test_a_replayed_answer_arrives_whole_with_the_result() -> None:
    _, seen = await ask(Stub(Stream([final(ANSWER)])))

    assert seen == [(ANSWER["reply"], False)]


class RpcError(grpc.aio.AioRpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="boom")


@pytest.mark.parametrize(
    ("code", "error"),
    [(grpc.StatusCode.UNAVAILABLE, ArchitectUnavailable), (grpc.StatusCode.FAILED_PRECONDITION, ArchitectFailed)],
)
async def test_agent_failures_become_the_architects_errors(code: grpc.StatusCode, error: type[Exception]) -> None:
    with pytest.raises(error):
        await ask(Stub(Stream(deltas('{"reply": "half'), RpcError(code))))
