"""Model calls: validation of structured answers, recording and replay, cost, telemetry.

``LlmService.complete`` does not write to the database itself: it returns an ``LlmOutcome`` with
every attempt as an ``LlmCall``, so the caller stores the calls in the same transaction as
what it makes of the answer (a candidate, a decision, a response). One exception: a caller
cancelled mid-call (a stream closed, work cancelled) is gone, so the attempts it leaves,
the one in flight ``cancelled``, are stored here, in the background.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import jsonschema_rs
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from crucible_agent.domain.codec import message_json, response_from_json, response_json
from crucible_agent.domain.errors import CallAbandoned, ReplayedFailure, ReplayMiss, StructuredOutputInvalid
from crucible_agent.domain.model import (
    CallAllowance,
    ChatMessage,
    Correlation,
    Delta,
    DeltaSink,
    Fence,
    JsonObject,
    LlmCall,
    LlmCallStatus,
    LlmRequest,
    LlmResult,
    ProviderAttempt,
    ProviderResponse,
    Recording,
    RecordingMode,
    Role,
)
from crucible_agent.domain.pricing import PriceTable
from crucible_agent.service_layer import structured
from crucible_agent.service_layer.ports import ModelProviders
from crucible_agent.service_layer.unit_of_work import AbstractUnitOfWork, UowFactory
from crucible_common.database import while_database_unavailable
from crucible_common.errors import CrucibleError
from crucible_common.leases import Lease, LeaseLost

tracer = trace.get_tracer("crucible.agent")
# A rough count, for a re-ask's estimate when the last answer did not report its usage.
CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class PendingRecording:
    key: str
    request_hash: str
    provider: str
    response: ProviderResponse


@dataclass(frozen=True)
class LlmOutcome:
    """The answer (or the error that ended the call) and every attempt to store with it."""

    result: LlmResult | None
    error: CrucibleError | None
    calls: tuple[LlmCall, ...]
    recording: PendingRecording | None = None
    duration_ms: int = 0

    def unwrap(self) -> LlmResult:
        """The answer, or the error that ended the call, carrying what its attempts cost
        (``spent_tokens``, ``spent_usd``: a failed call is paid too, and a caller with a budget
        counts it; an answer whose usage was not reported counts as estimated from its
        characters, when the error was made knowing it, see ``_call``)."""
        if self.error is not None:
            if self.calls:
                self.error.metadata.setdefault(
                    "spent_tokens", str(sum(c.input_tokens + c.output_tokens for c in self.calls))
                )
                self.error.metadata.setdefault("spent_usd", repr(sum(c.usd or 0.0 for c in self.calls)))
            raise self.error
        assert self.result is not None
        return self.result

    @property
    def single_statement(self) -> bool:
        """True when storing it is one INSERT, atomic without a transaction of its own."""
        return self.recording is None

    async def store(self, uow: AbstractUnitOfWork) -> None:
        """Write the calls (and a new recording) inside the caller's open unit of work."""
        await uow.repo.add_llm_calls(list(self.calls))
        if self.recording is not None:
            r = self.recording
            await uow.repo.save_recording(r.key, r.request_hash, r.provider, r.response)


async def store_leased(
    uow_factory: UowFactory,
    lease: Lease,
    outcome: LlmOutcome | None,
    write: Callable[[AbstractUnitOfWork], Awaitable[None]],
) -> None:
    """Store a model call with what leased work made of it, in one transaction fenced by ``lease``.

    When the lease is lost the work's own write is refused (``LeaseLost``), but the calls were
    made and paid for: they are stored on their own before the error goes on.
    """

    async def store() -> None:
        async with uow_factory(lease=lease) as uow:
            if outcome is not None:
                await outcome.store(uow)
            await write(uow)
            await uow.commit()

    try:
        # A database away for a moment delays the write (and the paid answer in it), not drops it.
        await while_database_unavailable(store, what=f"{lease.resource} {lease.id}")
    except LeaseLost:
        if outcome is not None:
            await _store_unfenced(uow_factory, outcome)
        raise


async def stop_if_fenced(uow_factory: UowFactory, outcome: LlmOutcome) -> None:
    """Raise ``LeaseLost`` when the call's fence refused it, after storing the attempts made before."""
    if isinstance(outcome.error, LeaseLost):
        if outcome.calls:
            await _store_unfenced(uow_factory, outcome)
        raise outcome.error


async def _store_unfenced(uow_factory: UowFactory, outcome: LlmOutcome) -> None:
    # Made and paid for by work that is no longer this process's: kept in the call log all the same.

    async def store() -> None:
        async with uow_factory(single_statement=outcome.single_statement) as uow:
            await outcome.store(uow)
            await uow.commit()

    await while_database_unavailable(store, what="storing model calls")


def lease_fence(uow_factory: UowFactory, lease: Lease) -> Fence:
    """A ``Fence`` for work held by ``lease``: ``LeaseLost`` once the lease was revoked or taken.

    It locks the work's row for a moment, as a fenced write does, so a cancel in flight (which
    holds that row until it commits) is waited for, and then seen.
    """

    async def check() -> None:
        async with uow_factory(lease=lease):
            pass

    return check


class LlmService:
    def __init__(
        self,
        pool: ModelProviders,
        prices: PriceTable,
        uow_factory: UowFactory,
        *,
        structured_retries: int,
        capture_prompts: bool,
    ) -> None:
        self._pool = pool
        self._prices = prices
        self._uow = uow_factory
        self._structured_retries = structured_retries
        self._capture = capture_prompts
        # The stores of calls whose caller was cancelled, held until done (see ``drain``).
        self._abandoned: set[asyncio.Task[None]] = set()

    @property
    def prices(self) -> PriceTable:
        return self._prices

    @property
    def structured_attempts(self) -> int:
        """How many times a structured call is asked at most: once, and once for each re-ask."""
        return self._structured_retries + 1

    def check_provider(self, provider: str, field: str = "provider") -> None:
        self._pool.check(provider, field)

    async def complete(
        self,
        request: LlmRequest,
        correlation: Correlation,
        recording: Recording | None = None,
        *,
        idempotency_key: str = "",
        on_delta: DeltaSink | None = None,
        fence: Fence | None = None,
        allowance: CallAllowance | None = None,
    ) -> LlmOutcome:
        """Call the model (or the recording); ``idempotency_key`` is stamped on every attempt stored.

        With ``allowance``, an invalid structured answer is asked again only while the re-ask fits
        in it (see ``_reask_over``).

        With ``on_delta`` the call is streamed: every attempt's text goes into it as the model writes
        it (a recording's, whole), numbered across provider retries and structured re-asks alike.
        With ``fence`` (leased work), each provider attempt is made only if the fence still lets
        it: otherwise the outcome's error is ``LeaseLost``, with the attempts made before it.
        """
        recording = recording or Recording()
        started = time.monotonic()
        request_hash = structured.hash_request(request)
        validator = (
            structured.validator(json.dumps(request.json_schema, sort_keys=True)) if request.json_schema else None
        )
        with tracer.start_as_current_span(
            f"chat {request.model}",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": request.provider,
                "gen_ai.request.model": request.model,
                **{f"crucible.{k}": v for k, v in correlation.__dict__.items() if v},
                "crucible.llm.streamed": on_delta is not None,
            },
        ) as span:
            if self._capture:
                span.set_attribute("gen_ai.input.messages", json.dumps([message_json(m) for m in request.messages]))
            if recording.mode is RecordingMode.REPLAY:
                outcome = await self._replay(request, request_hash, correlation, recording, on_delta)
            else:
                made: list[LlmCall] = []
                try:
                    outcome = await self._call(
                        request, request_hash, correlation, recording, validator, on_delta, fence, made, allowance
                    )
                except asyncio.CancelledError:
                    self._store_abandoned(made, idempotency_key)
                    raise
            outcome = replace(
                outcome,
                calls=tuple(replace(c, idempotency_key=idempotency_key) for c in outcome.calls),
                duration_ms=int((time.monotonic() - started) * 1000),
            )
            self._annotate(span, outcome)
            return outcome

    async def drain(self) -> None:
        """Wait for the stores of abandoned calls still in flight (at shutdown)."""
        if self._abandoned:
            await asyncio.gather(*self._abandoned, return_exceptions=True)

    def _store_abandoned(self, made: list[LlmCall], idempotency_key: str) -> None:
        """The caller was cancelled mid-call: the attempts it made (paid, some of them; the one in
        flight ``cancelled``, maybe billed) are stored in a task of their own, since the caller's
        cannot await anything now."""
        if not made:
            return  # cancelled before anything was sent (waiting for a slot, or out a backoff)
        calls = tuple(replace(c, idempotency_key=idempotency_key) for c in made)
        task = asyncio.get_running_loop().create_task(_store_unfenced(self._uow, LlmOutcome(None, None, calls)))
        self._abandoned.add(task)
        task.add_done_callback(self._abandoned.discard)

    def replay_stored(self, request: LlmRequest, call: LlmCall) -> LlmResult:
        """The answer of an earlier successful call, as a result; it costs nothing now."""
        assert call.response is not None, "a succeeded call stores its response"
        response = response_from_json(call.response, call.input_tokens, call.output_tokens)
        answer = json.loads(response.text) if request.json_schema is not None else None
        return replace(_result(response, answer, (call,)), idempotent_replay=True)

    async def _replay(
        self,
        request: LlmRequest,
        request_hash: str,
        correlation: Correlation,
        recording: Recording,
        on_delta: DeltaSink | None,
    ) -> LlmOutcome:
        if recording.run_id:
            return await self._replay_run(request, request_hash, correlation, recording, on_delta)
        async with self._uow(read_only=True) as uow:
            response = await uow.repo.get_recording(recording.key, request_hash)
        if response is None:
            return LlmOutcome(None, ReplayMiss(recording.key, request_hash), ())
        return await self._replayed(request, request_hash, correlation, response, on_delta)

    async def _replay_run(
        self,
        request: LlmRequest,
        request_hash: str,
        correlation: Correlation,
        recording: Recording,
        on_delta: DeltaSink | None,
    ) -> LlmOutcome:
        """Answered as the run's own call with this request was: its answer, or its failure; $0 either way."""
        async with self._uow(read_only=True) as uow:
            stored = await uow.repo.run_calls(recording.run_id, request_hash)
        if not stored:
            return LlmOutcome(None, ReplayMiss(recording.key, request_hash, run_id=recording.run_id), ())
        # Any answer wins (a failed attempt then a retry that succeeded is a success); else the
        # last attempt is how the run's call ended.
        source = next((c for c in stored if c.answered), stored[-1])
        if source.answered:
            assert source.response is not None, "an answered call stores its response"
            response = response_from_json(source.response, source.input_tokens, source.output_tokens)
            return await self._replayed(request, request_hash, correlation, response, on_delta)
        if source.status is LlmCallStatus.INVALID_OUTPUT:
            reason, message = StructuredOutputInvalid.default_reason, f"no valid answer; last problem: {source.error}"
        else:
            # FAILED attempts (and replayed failures) store "REASON: message".
            reason, _, message = source.error.partition(": ")
        raw = str(source.response.get("text", "")) if source.response else ""
        error = ReplayedFailure(reason, message, recording_key=recording.key, raw=raw)
        call = self._failed(
            request, request_hash, correlation, 1, 0, error, status=LlmCallStatus.REPLAYED, response=source.response
        )
        error.metadata["llm_call_id"] = call.id
        return LlmOutcome(None, error, (call,))

    async def _replayed(
        self,
        request: LlmRequest,
        request_hash: str,
        correlation: Correlation,
        response: ProviderResponse,
        on_delta: DeltaSink | None,
    ) -> LlmOutcome:
        if on_delta is not None and response.text:
            await on_delta(Delta(response.text, 1))
        call = self._record(request, request_hash, correlation, 1, 0, response, LlmCallStatus.REPLAYED, usd=0.0)
        answer = json.loads(response.text) if request.json_schema else None
        return LlmOutcome(_result(response, answer, (call,)), None, (call,))

    async def _call(
        self,
        request: LlmRequest,
        request_hash: str,
        correlation: Correlation,
        recording: Recording,
        validator: jsonschema_rs.Validator | None,
        on_delta: DeltaSink | None,
        fence: Fence | None,
        calls: list[LlmCall],
        allowance: CallAllowance | None = None,
    ) -> LlmOutcome:
        """The provider's answer, re-asked while it does not validate; each attempt goes into ``calls``
        as it ends, so a caller cancelled meanwhile leaves them known, the one in flight too."""
        attempt_request = request
        spent_tokens, spent_usd = 0, 0.0
        for structured_attempt in range(self._structured_retries + 1):
            made: list[ProviderAttempt] = []
            try:
                attempts = await self._pool.call(
                    attempt_request, _numbered_after(len(calls), on_delta), fence=fence, attempts=made
                )
            except LeaseLost as lost:
                # The attempts made before (an invalid answer re-asked) were paid: they go back
                # with the refusal, for the caller to store.
                return LlmOutcome(None, lost, tuple(calls))
            except asyncio.CancelledError:
                for a in made:
                    calls.append(
                        self._failed(
                            attempt_request,
                            request_hash,
                            correlation,
                            len(calls) + 1,
                            a.latency_ms,
                            a.error or CallAbandoned(),
                            status=LlmCallStatus.CANCELLED if a.cancelled else LlmCallStatus.FAILED,
                            # Cancelled in flight it may be billed, for a cost no one knows: unknown, not 0.
                            usd=None if a.cancelled else 0.0,
                        )
                    )
                raise
            for a in attempts[:-1]:
                assert a.error is not None
                calls.append(
                    self._failed(attempt_request, request_hash, correlation, len(calls) + 1, a.latency_ms, a.error)
                )
            last = attempts[-1]
            if last.error is not None:
                calls.append(
                    self._failed(
                        attempt_request, request_hash, correlation, len(calls) + 1, last.latency_ms, last.error
                    )
                )
                if spent_tokens:
                    # Invalid answers were paid before it: what they cost, as estimated where their
                    # usage was not reported (see the re-asks' end below).
                    last.error.metadata["spent_tokens"] = str(spent_tokens)
                    last.error.metadata["spent_usd"] = repr(spent_usd)
                return LlmOutcome(None, last.error, tuple(calls))
            response = last.response
            assert response is not None
            if validator is None:
                calls.append(
                    self._record(
                        attempt_request,
                        request_hash,
                        correlation,
                        len(calls) + 1,
                        last.latency_ms,
                        response,
                        LlmCallStatus.SUCCEEDED,
                    )
                )
                return self._success(request, request_hash, recording, response, None, calls)
            answer, problem = structured.parse(response.text, validator)
            if problem is None:
                calls.append(
                    self._record(
                        attempt_request,
                        request_hash,
                        correlation,
                        len(calls) + 1,
                        last.latency_ms,
                        response,
                        LlmCallStatus.SUCCEEDED,
                    )
                )
                return self._success(request, request_hash, recording, response, answer, calls)
            calls.append(
                self._record(
                    attempt_request,
                    request_hash,
                    correlation,
                    len(calls) + 1,
                    last.latency_ms,
                    response,
                    LlmCallStatus.INVALID_OUTPUT,
                    error=problem,
                )
            )
            # Tell the model what was wrong and ask again, keeping its previous answer in view.
            note = (
                f"That answer is not valid: {problem}. Answer again with only a JSON object that is valid "
                "against the schema."
            )
            # What the invalid answers cost so far, estimated where an answer did not report it.
            used = _tokens_used(attempt_request, response)
            spent_tokens += sum(used)
            spent_usd += self._prices.cost(request.model, *used) or 0.0
            over = ""
            if structured_attempt < self._structured_retries and allowance is not None:
                over = self._reask_over(allowance, attempt_request, used, note, spent_tokens, spent_usd)
            if structured_attempt == self._structured_retries or over:
                error = StructuredOutputInvalid(
                    f"{request.provider}/{request.model} gave no valid {request.schema_name or 'structured'} answer "
                    f"in {structured_attempt + 1} attempts; last problem: {problem}"
                    + (f"; not asked again: {over}" if over else ""),
                    llm_call_id=calls[-1].id,
                    raw=response.text,
                )
                # What the answers cost, estimated where their usage was not reported (stored, they
                # stay at an unknown cost): a caller's budget counts it rather than $0.
                error.metadata["spent_tokens"] = str(spent_tokens)
                error.metadata["spent_usd"] = repr(spent_usd)
                return LlmOutcome(None, error, tuple(calls))
            attempt_request = replace(
                attempt_request,
                messages=(
                    *attempt_request.messages,
                    ChatMessage(Role.ASSISTANT, response.text),
                    ChatMessage(Role.USER, note),
                ),
            )
        raise AssertionError("unreachable")

    def _reask_over(
        self,
        allowance: CallAllowance,
        request: LlmRequest,
        last: tuple[int, int],
        note: str,
        spent_tokens: int,
        spent_usd: float,
    ) -> str:
        """Why a re-ask would take the call past ``allowance`` ("" when it fits), after ``spent``.

        The re-ask is estimated before it is made: its prompt is the last attempt's (``last``: its
        prompt's and answer's tokens), plus that answer and ``note``; its answer is as long as the
        last (at most ``max_tokens``). It is only an estimate: the provider may answer longer.
        """
        prompt_tokens, answer_tokens = last
        input_tokens = prompt_tokens + answer_tokens + len(note) // CHARS_PER_TOKEN + 1
        output_tokens = min(answer_tokens, request.max_tokens) if request.max_tokens else answer_tokens
        if allowance.tokens is not None and spent_tokens + input_tokens + output_tokens > allowance.tokens:
            return (
                f"the re-ask (about {input_tokens + output_tokens} tokens) would take the call past its "
                f"allowance of {allowance.tokens} tokens ({spent_tokens} spent)"
            )
        cost = self._prices.cost(request.model, input_tokens, output_tokens)
        if allowance.usd is not None and cost is not None and spent_usd + cost > allowance.usd:
            return (
                f"the re-ask (about ${cost:.6f}) would take the call past its allowance of "
                f"${allowance.usd:.6f} (${spent_usd:.6f} spent)"
            )
        return ""

    def _success(
        self,
        request: LlmRequest,
        request_hash: str,
        recording: Recording,
        response: ProviderResponse,
        answer: JsonObject | None,
        calls: list[LlmCall],
    ) -> LlmOutcome:
        pending = None
        if recording.mode is RecordingMode.RECORD:
            pending = PendingRecording(recording.key, request_hash, request.provider, response)
        return LlmOutcome(_result(response, answer, tuple(calls)), None, tuple(calls), pending)

    def _record(
        self,
        request: LlmRequest,
        request_hash: str,
        correlation: Correlation,
        attempt: int,
        latency_ms: int,
        response: ProviderResponse,
        status: LlmCallStatus,
        *,
        usd: float | None = None,
        error: str = "",
    ) -> LlmCall:
        if usd is None and status is not LlmCallStatus.REPLAYED and response.usage_reported:
            # An answer without its usage stays at None: unknown, counted with the unpriced calls.
            usd = self._prices.cost(request.model, response.input_tokens, response.output_tokens)
        return LlmCall(
            id=str(uuid.uuid4()),
            provider=request.provider,
            model=request.model,
            response_model=response.response_model,
            correlation=correlation,
            status=status,
            input_tokens=response.input_tokens,
            output_tokens=response.output_tokens,
            usd=usd,
            latency_ms=latency_ms,
            request_hash=request_hash,
            attempt=attempt,
            error=error,
            response=response_json(response),
            request=self._captured(request),
            created_at=datetime.now(UTC),
        )

    def _failed(
        self,
        request: LlmRequest,
        request_hash: str,
        correlation: Correlation,
        attempt: int,
        latency_ms: int,
        error: CrucibleError,
        *,
        status: LlmCallStatus = LlmCallStatus.FAILED,
        response: JsonObject | None = None,
        usd: float | None = 0.0,
    ) -> LlmCall:
        """A call that gave no answer: a provider's failure, a replayed failure (``status`` REPLAYED),
        or one its caller abandoned (CANCELLED, ``usd`` None: maybe billed, for an unknown cost)."""
        return LlmCall(
            id=str(uuid.uuid4()),
            provider=request.provider,
            model=request.model,
            response_model="",
            correlation=correlation,
            status=status,
            input_tokens=0,
            output_tokens=0,
            # A failed call is not billed; a replayed one costs nothing.
            usd=usd,
            latency_ms=latency_ms,
            request_hash=request_hash,
            attempt=attempt,
            # Replayed as it is stored: "REASON: message".
            error=f"{error.reason}: {error.message}",
            response=response,
            request=self._captured(request),
            created_at=datetime.now(UTC),
        )

    def _captured(self, request: LlmRequest) -> JsonObject | None:
        if not self._capture:
            return None
        return {"messages": [message_json(m) for m in request.messages], "schema_name": request.schema_name}

    def _annotate(self, span: trace.Span, outcome: LlmOutcome) -> None:
        final = outcome.calls[-1] if outcome.calls else None
        if final is not None:
            span.set_attribute("gen_ai.response.model", final.response_model)
            span.set_attribute("gen_ai.usage.input_tokens", sum(c.input_tokens for c in outcome.calls))
            span.set_attribute("gen_ai.usage.output_tokens", sum(c.output_tokens for c in outcome.calls))
            span.set_attribute("crucible.llm.attempts", len(outcome.calls))
            span.set_attribute("crucible.llm.call_id", final.id)
        if outcome.result is not None and self._capture:
            span.set_attribute("gen_ai.output.messages", outcome.result.text)
        if outcome.error is not None:
            span.set_attribute("error.type", outcome.error.reason)
            span.set_status(Status(StatusCode.ERROR, outcome.error.message))


def _tokens_used(request: LlmRequest, response: ProviderResponse) -> tuple[int, int]:
    """The prompt's and the answer's tokens, as the provider reported them, else estimated from
    their characters (the call is then stored at an unknown cost, but an allowance counts it)."""
    if response.usage_reported:
        return response.input_tokens, response.output_tokens
    prompt = sum(len(m.content) for m in request.messages)
    return prompt // CHARS_PER_TOKEN, len(response.text) // CHARS_PER_TOKEN


def _numbered_after(earlier: int, on_delta: DeltaSink | None) -> DeltaSink | None:
    """The pool numbers its attempts from 1; a re-ask's follow the ``earlier`` attempts of the same call."""
    if on_delta is None or earlier == 0:
        return on_delta

    async def write(delta: Delta) -> None:
        await on_delta(Delta(delta.text, earlier + delta.attempt))

    return write


def _result(response: ProviderResponse, structured: JsonObject | None, calls: tuple[LlmCall, ...]) -> LlmResult:
    return LlmResult(
        text=response.text,
        structured=structured,
        tool_calls=response.tool_calls,
        finish_reason=response.finish_reason,
        response_model=response.response_model,
        calls=calls,
    )
