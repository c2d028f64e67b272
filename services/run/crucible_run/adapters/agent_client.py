"""The run service's client of the agent service: model calls (live or replayed), prices, what a run spent."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING

import grpc

from crucible.agent.v1 import agent_service_pb2 as pb
from crucible_common.errors import details_of
from crucible_common.protobuf import schema_struct, struct_to_dict
from crucible_run.adapters.calls import patiently, unanswered
from crucible_run.domain.estimates import STRUCTURED_ATTEMPTS, UNPRICED, ModelPrice, Pricing
from crucible_run.domain.model import LlmUsage
from crucible_run.service_layer.ports import (
    CallNotRecorded,
    ModelAnswer,
    ModelCall,
    ModelCallFailed,
    Models,
    ModelsUnavailable,
)

if TYPE_CHECKING:  # the async stub type exists only in the generated .pyi
    from crucible.agent.v1.agent_service_pb2_grpc import AgentServiceAsyncStub

logger = logging.getLogger(__name__)

# The agent service's recording key that names a run: its replay is answered from that run's calls.
RUN_RECORDING = "run:"
# Its reason for a replayed call it has no answer to.
REPLAY_MISS = "REPLAY_MISS"
# How often a continued run looks again for the calls its runner before left in flight: soon at
# first, then at most every second (a model call takes seconds).
SETTLE_FIRST_LOOK_SECONDS = 0.1
SETTLE_LOOK_AT_MOST_EVERY_SECONDS = 1.0
# How long the run waits for a failed call's whole answer before keeping the part its error carried.
ANSWER_READ_SECONDS = 5.0


class AgentModels(Models):
    def __init__(self, stub: AgentServiceAsyncStub, *, call_timeout: float, wait_seconds: float) -> None:
        self._stub = stub
        self._timeout = call_timeout
        self._wait = wait_seconds

    async def complete(self, call: ModelCall) -> ModelAnswer:
        request = pb.CompleteRequest(
            model=pb.ModelRef(provider=call.provider, model_name=call.model),
            messages=[
                pb.Message(role=pb.ROLE_SYSTEM, content=call.system),
                pb.Message(role=pb.ROLE_USER, content=call.prompt),
            ],
            json_schema=schema_struct(call.schema),
            schema_name=call.schema_name,
            correlation=pb.Correlation(
                project_id=call.project_id,
                run_id=call.run_id,
                snapshot_test_id=call.snapshot_test_id,
                purpose=call.purpose,
            ),
            idempotency_key=call.idempotency_key,
        )
        if call.allowance is not None:
            if call.allowance.usd is not None:
                request.allowance.usd = call.allowance.usd
            if call.allowance.tokens is not None:
                request.allowance.tokens = call.allowance.tokens
        if call.replay_of_run_id:
            request.recording.CopyFrom(
                pb.Recording(mode=pb.RECORDING_MODE_REPLAY, recording_key=f"{RUN_RECORDING}{call.replay_of_run_id}")
            )
        try:
            response = await patiently(
                lambda: self._stub.Complete(request, timeout=self._timeout),
                wait_seconds=self._wait,
                what=f"{call.purpose} call of run {call.run_id}",
            )
        except grpc.aio.AioRpcError as exc:
            details = details_of(exc)
            if unanswered(exc):
                # No answer either way, not a wrong one: a call past its deadline may still be
                # answered and stored by the agent service, to be had again under the same key.
                raise ModelsUnavailable(
                    f"the agent service did not answer the {call.purpose} call ({details.code.name}: {details.message})"
                ) from exc
            if details.reason == REPLAY_MISS and call.replay_of_run_id:
                raise CallNotRecorded(
                    details.reason, details.message, request_hash=details.metadata.get("request_hash", "")
                ) from exc
            tokens, usd = _spent(details.metadata)
            raise ModelCallFailed(
                details.reason or details.code.name,
                details.message or "no details",
                raw_answer=details.metadata.get("raw_answer", ""),
                llm_call_id=details.metadata.get("llm_call_id", ""),
                tokens=tokens,
                usd=usd,
            ) from exc
        usage = response.usage
        return ModelAnswer(
            structured=struct_to_dict(response.structured),
            llm_call_id=response.llm_call_id,
            tokens=usage.input_tokens + usage.output_tokens,
            usd=None if usage.unpriced_calls else usage.usd,
            replayed=response.idempotent_replay,
        )

    async def answer_text(self, llm_call_id: str) -> str | None:
        request = pb.GetLlmCallRequest(llm_call_id=llm_call_id)
        try:
            response = await self._stub.GetLlmCall(request, timeout=ANSWER_READ_SECONDS)
        except grpc.aio.AioRpcError as exc:
            # A nicety (the error carried the answer's start): not worth a wait, nor a failure.
            logger.info("the answer of model call %s is not had: %s", llm_call_id, details_of(exc).message)
            return None
        return response.llm_call.response_text or None

    async def prices(self, models: Sequence[tuple[str, str]]) -> Pricing:
        request = pb.GetModelPricesRequest(models=[pb.ModelRef(provider=p, model_name=m) for p, m in models])
        async with _answered("its model prices"):
            response = await patiently(
                lambda: self._stub.GetModelPrices(request, timeout=10), wait_seconds=self._wait, what="model prices"
            )
        prices = tuple(
            ModelPrice(p.input_usd_per_mtok, p.output_usd_per_mtok) if p.priced else UNPRICED for p in response.prices
        )
        # An agent service from before it said so (0) asks as its default does.
        return Pricing(prices, response.structured_attempts or STRUCTURED_ATTEMPTS)

    async def usage(self, run_id: str) -> LlmUsage:
        return _usage(await self._usage(run_id))

    async def settled_usage(self, run_id: str) -> LlmUsage:
        pause, said = SETTLE_FIRST_LOOK_SECONDS, False
        while True:
            response = await self._usage(run_id)
            if not response.calls_in_flight:
                return _usage(response)
            if not said:
                logger.info(
                    "run %s: %d of its calls are still being made; its spending is read once they end",
                    *(run_id, response.calls_in_flight),
                )
                said = True
            await asyncio.sleep(pause)
            pause = min(pause * 2, SETTLE_LOOK_AT_MOST_EVERY_SECONDS)

    async def _usage(self, run_id: str) -> pb.GetUsageResponse:
        request = pb.GetUsageRequest(filter=pb.Correlation(run_id=run_id))
        async with _answered(f"the usage of run {run_id}"):
            return await patiently(
                lambda: self._stub.GetUsage(request, timeout=10), wait_seconds=self._wait, what=f"usage of run {run_id}"
            )


def _usage(response: pb.GetUsageResponse) -> LlmUsage:
    total = response.total
    return LlmUsage(
        input_tokens=total.input_tokens,
        output_tokens=total.output_tokens,
        usd=total.usd,
        calls=total.calls,
        unpriced_calls=total.unpriced_calls,
        failed_calls=total.failed_calls,
    )


@contextlib.asynccontextmanager
async def _answered(what: str) -> AsyncIterator[None]:
    """No answer from the agent service (away past the wait, or past the deadline) is
    ``ModelsUnavailable``, as for a model call: the run goes on from what it stored once the
    service is back, rather than ending FAILED on an error it does not know."""
    try:
        yield
    except grpc.aio.AioRpcError as exc:
        if unanswered(exc):
            details = details_of(exc)
            raise ModelsUnavailable(
                f"the agent service did not answer for {what} ({details.code.name}: {details.message})"
            ) from exc
        raise


def _spent(metadata: Mapping[str, str]) -> tuple[int, float]:
    """What a failed call's attempts cost, as the agent service put it in the error; 0 when it did not."""
    try:
        return int(metadata.get("spent_tokens") or 0), float(metadata.get("spent_usd") or 0.0)
    except ValueError:
        return 0, 0.0
