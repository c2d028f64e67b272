"""The agent context's request/response use cases (agent runs live in ``agent_runs``)."""

from __future__ import annotations

from dataclasses import replace

from crucible_agent.domain.errors import AgentRunNotFound, IdempotencyKeyReused, LlmCallNotFound
from crucible_agent.domain.limits import size_violations
from crucible_agent.domain.model import (
    AgentRun,
    Checkpoint,
    DeltaSink,
    LlmCall,
    LlmRequest,
    LlmResult,
    ModelPrice,
    Role,
    UsageReport,
)
from crucible_agent.domain.pricing import PriceTable
from crucible_agent.service_layer import commands as c
from crucible_agent.service_layer.call_log import CallLog, Claim
from crucible_agent.service_layer.llm import LlmService
from crucible_agent.service_layer.structured import check_schema, hash_request
from crucible_agent.service_layer.unit_of_work import UowFactory
from crucible_common.errors import FieldViolation, ValidationFailed
from crucible_common.ids import parse_id
from crucible_common.pagination import Cursor, page_request, split_page, time_cursor

MAX_MESSAGES = 1_000
MAX_IDEMPOTENCY_KEY = 200
MAX_PRICE_LOOKUPS = 100
# Groups of a usage report per dimension (projects, runs), the most expensive first.
DEFAULT_USAGE_GROUPS = 50
MAX_USAGE_GROUPS = 1_000
MAX_PROMPT_CHARS = 2_000_000


async def complete(cmd: c.Complete, llm: LlmService, log: CallLog, on_delta: DeltaSink | None = None) -> LlmResult:
    """One model call; its attempts are stored whether it succeeds or not.

    With ``on_delta`` the call is streamed into it (see ``LlmService.complete``); an answer replayed
    for its idempotency key was written before, and streams nothing.
    """
    problems: list[FieldViolation] = []
    if not cmd.model.strip():
        problems.append(FieldViolation("model.model_name", "must not be empty"))
    if not cmd.messages:
        problems.append(FieldViolation("messages", "at least one message"))
    if len(cmd.messages) > MAX_MESSAGES:
        problems.append(FieldViolation("messages", f"at most {MAX_MESSAGES} messages"))
    if sum(len(m.content) for m in cmd.messages) > MAX_PROMPT_CHARS:
        problems.append(FieldViolation("messages", f"at most {MAX_PROMPT_CHARS} characters in all"))
    for i, m in enumerate(cmd.messages):
        if m.role is Role.TOOL and not m.tool_call_id:
            problems.append(FieldViolation(f"messages[{i}].tool_call_id", "required on tool messages"))
    if cmd.json_schema is not None:
        problem = check_schema(cmd.json_schema)
        if problem:
            problems.append(FieldViolation("json_schema", problem))
    if len(cmd.idempotency_key) > MAX_IDEMPOTENCY_KEY:
        problems.append(FieldViolation("idempotency_key", f"at most {MAX_IDEMPOTENCY_KEY} characters"))
    if cmd.allowance is not None:
        if cmd.allowance.usd is not None and not cmd.allowance.usd >= 0:  # NaN is refused too
            problems.append(FieldViolation("allowance.usd", "must not be negative"))
        if cmd.allowance.tokens is not None and cmd.allowance.tokens < 0:
            problems.append(FieldViolation("allowance.tokens", "must not be negative"))
    problems += size_violations(
        correlation=cmd.correlation,
        recording=cmd.recording,
        models={"model.model_name": cmd.model},
        schema_name=cmd.schema_name,
    )
    if cmd.recording.mode.value != "off" and not cmd.recording.key.strip():
        problems.append(FieldViolation("recording.recording_key", "required with a recording mode"))
    if problems:
        raise ValidationFailed(problems, "completion request")
    llm.check_provider(cmd.provider, "model.provider")
    request = LlmRequest(
        cmd.provider,
        cmd.model,
        cmd.messages,
        cmd.json_schema,
        cmd.schema_name,
        cmd.tools,
        cmd.max_tokens,
        cmd.temperature,
    )
    if not cmd.idempotency_key:
        return await _complete(cmd, request, llm, log, on_delta)
    if on_delta is not None:
        # A stream lives and dies with its caller.
        return await _complete_once(cmd, request, llm, log, on_delta)
    # A keyed call goes on (and its answer is stored) even if its caller leaves, and a retry of the
    # key that arrives meanwhile waits for it: an answer bought is never dropped and bought again.
    return await log.in_flight.run(cmd.idempotency_key, lambda: _complete_once(cmd, request, llm, log, None))


async def _complete_once(
    cmd: c.Complete, request: LlmRequest, llm: LlmService, log: CallLog, on_delta: DeltaSink | None
) -> LlmResult:
    # Waits while another call (here or in another replica) has the key in flight.
    done = await log.claim(cmd.idempotency_key, cmd.correlation.run_id)
    if isinstance(done, LlmCall):
        if done.request_hash != hash_request(request):
            raise IdempotencyKeyReused(cmd.idempotency_key)
        return llm.replay_stored(request, done)
    return await _complete(cmd, request, llm, log, on_delta, done)


async def _complete(
    cmd: c.Complete,
    request: LlmRequest,
    llm: LlmService,
    log: CallLog,
    on_delta: DeltaSink | None,
    claim: Claim | None = None,
) -> LlmResult:
    try:
        outcome = await llm.complete(
            request,
            cmd.correlation,
            cmd.recording,
            idempotency_key=cmd.idempotency_key,
            on_delta=on_delta,
            allowance=cmd.allowance,
        )
    except BaseException:
        if claim is not None:
            # Cancelled (what it paid is stored apart: LlmService._store_abandoned), or failed
            # without an outcome to store: the next ask of the key need not wait for the claim.
            log.release(claim)
        raise
    await log.store(outcome, claim)
    return outcome.unwrap()


async def list_agent_runs(cmd: c.ListAgentRuns, uow: UowFactory) -> tuple[list[AgentRun], str]:
    page = page_request(cmd.page_size, cmd.page_token, scope="agent_runs")
    async with uow(read_only=True) as unit:
        rows = await unit.repo.list_runs(
            cmd.filter, page.size + 1, (page.after.time, page.after.id) if page.after else None
        )
    return split_page(rows, page, time_cursor, scope="agent_runs")


async def list_checkpoints(cmd: c.ListCheckpoints, uow: UowFactory) -> tuple[list[Checkpoint], str]:
    run_id = parse_id(cmd.agent_run_id, "agent_run_id")
    scope = f"checkpoints:{run_id}"
    page = page_request(cmd.page_size, cmd.page_token, scope=scope, key="position")
    async with uow(read_only=True) as unit:
        if await unit.repo.get_run(run_id) is None:
            raise AgentRunNotFound(run_id)
        rows = await unit.repo.checkpoints(run_id, page.size + 1, int(page.after.key) if page.after else 0)
    return split_page(rows, page, lambda x: Cursor(str(x.sequence), x.id), scope=scope)


async def get_usage(cmd: c.GetUsage, uow: UowFactory) -> UsageReport:
    if not 0 <= cmd.group_limit <= MAX_USAGE_GROUPS:
        raise ValidationFailed(
            [FieldViolation("group_limit", f"0 (the default, {DEFAULT_USAGE_GROUPS}) to {MAX_USAGE_GROUPS}")],
            "usage request",
        )
    group_by = tuple(dict.fromkeys(cmd.group_by))
    async with uow(read_only=True) as unit:
        # Counted before the totals are read (each read sees what was committed when it began): a
        # call no longer in flight then was stored already, so the totals hold it.
        in_flight = await unit.repo.calls_in_flight(cmd.filter.run_id) if cmd.filter.run_id else 0
        report = await unit.repo.usage(cmd.filter, group_by, cmd.group_limit or DEFAULT_USAGE_GROUPS)
    return replace(report, calls_in_flight=in_flight)


async def list_llm_calls(cmd: c.ListLlmCalls, uow: UowFactory) -> tuple[list[LlmCall], str]:
    page = page_request(cmd.page_size, cmd.page_token, scope="llm_calls")
    async with uow(read_only=True) as unit:
        rows = await unit.repo.list_llm_calls(
            cmd.filter, page.size + 1, (page.after.time, page.after.id) if page.after else None
        )
    return split_page(rows, page, time_cursor, scope="llm_calls")


async def get_llm_call(cmd: c.GetLlmCall, uow: UowFactory) -> LlmCall:
    """One attempt with its answer whole (an error carries it cut short)."""
    call_id = parse_id(cmd.llm_call_id, "llm_call_id")
    async with uow(read_only=True) as unit:
        call = await unit.repo.get_llm_call(call_id)
    if call is None:
        raise LlmCallNotFound(call_id)
    return call


def model_prices(cmd: c.GetModelPrices, prices: PriceTable) -> list[ModelPrice]:
    """What the price table says each model costs; a model it does not know is unpriced."""
    problems = [
        FieldViolation(f"models[{i}].model_name", "must not be empty")
        for i, m in enumerate(cmd.models)
        if not m.model.strip()
    ]
    if len(cmd.models) > MAX_PRICE_LOOKUPS:
        problems.append(FieldViolation("models", f"at most {MAX_PRICE_LOOKUPS}"))
    if problems:
        raise ValidationFailed(problems, "price request")
    return [ModelPrice(m, prices.price(m.model)) for m in cmd.models]
