"""Repositories of the agent context: Core ``select()``s in, domain objects out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Row,
    String,
    and_,
    any_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from crucible_agent.adapters import tables as t
from crucible_agent.domain.codec import message_from_json, message_json, response_from_json, response_json
from crucible_agent.domain.model import (
    AgentRun,
    AgentRunStatus,
    Candidate,
    CandidateMetrics,
    Checkpoint,
    Correlation,
    Decision,
    ForkOrigin,
    JudgeConfig,
    LlmCall,
    LlmCallStatus,
    ModelUsage,
    ProviderResponse,
    Recording,
    RecordingMode,
    SubagentConfig,
    SubagentError,
    UsageDimension,
    UsageGroups,
    UsageReport,
    UsageTotals,
)
from crucible_agent.service_layer.ports import AbstractAgentRepository, Claims
from crucible_common.leases import expires_in


class SqlAgentRepository(AbstractAgentRepository):
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    # ------------------------------------------------------------ model calls

    async def add_llm_calls(self, calls: list[LlmCall]) -> None:
        if not calls:
            return
        await self._conn.execute(
            insert(t.llm_calls),
            [
                {
                    "id": c.id,
                    "provider": c.provider,
                    "model": c.model,
                    "response_model": c.response_model,
                    **_correlation_values(c.correlation),
                    "status": c.status.value,
                    "input_tokens": c.input_tokens,
                    "output_tokens": c.output_tokens,
                    "usd": c.usd,
                    "latency_ms": c.latency_ms,
                    "request_hash": c.request_hash,
                    "attempt": c.attempt,
                    "error": c.error,
                    "response": c.response,
                    "request": c.request,
                    "created_at": c.created_at,
                    "idempotency_key": c.idempotency_key,
                }
                for c in calls
            ],
        )

    async def list_llm_calls(
        self, filter_: Correlation, limit: int, after: tuple[datetime, str] | None
    ) -> list[LlmCall]:
        c = t.llm_calls.c
        query = select(t.llm_calls).where(*_matches(t.llm_calls, filter_))
        if after is not None:
            at, id_ = after
            query = query.where(or_(c.created_at < at, and_(c.created_at == at, c.id < id_)))
        query = query.order_by(c.created_at.desc(), c.id.desc()).limit(limit)
        return [_llm_call(row) for row in await self._conn.execute(query)]

    async def get_llm_call(self, llm_call_id: str) -> LlmCall | None:
        row = (await self._conn.execute(select(t.llm_calls).where(t.llm_calls.c.id == llm_call_id))).first()
        return _llm_call(row) if row is not None else None

    async def claim_unanswered(
        self, idempotency_keys: Sequence[str], tokens: Sequence[str], run_ids: Sequence[str], seconds: float
    ) -> Claims:
        rows = await self._conn.execute(
            _CLAIM,
            {"keys": list(idempotency_keys), "tokens": list(tokens), "run_ids": list(run_ids), "seconds": seconds},
        )
        won: set[str] = set()
        answered: dict[str, LlmCall] = {}
        for row in rows:
            if row.won:
                won.add(row.token)
            if row.id is not None:
                answered[row.idempotency_key] = _llm_call(row)
        return Claims(frozenset(won), answered)

    async def calls_in_flight(self, run_id: str) -> int:
        c = t.llm_call_claims.c
        calls = t.llm_calls.c
        answered = select(calls.id).where(
            calls.idempotency_key == c.idempotency_key, calls.idempotency_key != literal_column("''"), _answered(calls)
        )
        found = await self._conn.scalar(
            select(func.count())
            .select_from(t.llm_call_claims)
            # An answered call's claim is left to lapse (see claim_unanswered): it is not in flight.
            .where(c.run_id == run_id, c.expires_at >= func.now(), ~answered.exists())
        )
        return int(found or 0)

    async def renew_claims(self, idempotency_keys: Sequence[str], tokens: Sequence[str], seconds: float) -> set[str]:
        c = t.llm_call_claims.c
        # Tokens are unique to a claim, so keys and tokens need not be matched pair by pair. An
        # update, not an upsert: a claim whose call ended while this ran must not come back.
        rows = await self._conn.execute(
            update(t.llm_call_claims)
            .where(
                c.idempotency_key == any_(_strings("keys", idempotency_keys)),
                c.owner == any_(_strings("tokens", tokens)),
            )
            .values(expires_at=expires_in(seconds))
            .returning(c.owner)
        )
        return set(rows.scalars())

    async def drop_lapsed_claims(self) -> None:
        c = t.llm_call_claims.c
        await self._conn.execute(delete(t.llm_call_claims).where(c.expires_at < func.now()))

    async def release_claims(self, idempotency_keys: Sequence[str], tokens: Sequence[str]) -> None:
        c = t.llm_call_claims.c
        await self._conn.execute(
            delete(t.llm_call_claims).where(
                c.idempotency_key == any_(_strings("keys", idempotency_keys)),
                c.owner == any_(_strings("tokens", tokens)),
            )
        )

    async def run_calls(self, run_id: str, request_hash: str) -> list[LlmCall]:
        c = t.llm_calls.c
        rows = await self._conn.execute(
            select(t.llm_calls)
            # The index's own predicate, spelt as a literal: a bound '' would not let the planner
            # prove it, and a generic plan would then scan the table.
            .where(c.run_id == run_id, c.run_id != literal_column("''"), c.request_hash == request_hash)
            .order_by(c.created_at, c.attempt)
        )
        return [_llm_call(row) for row in rows]

    async def usage(
        self, filter_: Correlation, group_by: tuple[UsageDimension, ...] = (), group_limit: int = 50
    ) -> UsageReport:
        c = t.llm_calls.c
        query = (
            select(c.provider, c.model, *_usage_sums())
            .where(*_matches(t.llm_calls, filter_))
            .group_by(c.provider, c.model)
            .order_by(c.provider, c.model)
        )
        by_model = []
        for provider, model, *sums in await self._conn.execute(query):
            totals = _usage_totals(sums)
            by_model.append(ModelUsage(provider, model, totals, priced=totals.unpriced_calls == 0))
        groups = []
        for dimension in group_by:
            key = c[dimension.correlation]
            usd = func.coalesce(func.sum(c.usd), 0)
            # One more than asked for: it says whether the list was cut.
            rows = list(
                await self._conn.execute(
                    select(key, *_usage_sums())
                    .where(*_matches(t.llm_calls, filter_))
                    .group_by(key)
                    .order_by(usd.desc(), func.count().desc(), key)
                    .limit(group_limit + 1)
                )
            )
            found = tuple((k, _usage_totals(sums)) for k, *sums in rows[:group_limit])
            groups.append(UsageGroups(dimension, found, truncated=len(rows) > group_limit))
        total = UsageTotals(
            sum(m.usage.input_tokens for m in by_model),
            sum(m.usage.output_tokens for m in by_model),
            sum(m.usage.usd for m in by_model),
            sum(m.usage.calls for m in by_model),
            sum(m.usage.unpriced_calls for m in by_model),
            sum(m.usage.failed_calls for m in by_model),
            sum(m.usage.replayed_calls for m in by_model),
            sum(m.usage.cancelled_calls for m in by_model),
        )
        return UsageReport(total, by_model, tuple(groups))

    async def get_recording(self, key: str, request_hash: str) -> ProviderResponse | None:
        r = t.recordings.c
        row = (
            await self._conn.execute(select(t.recordings).where(r.recording_key == key, r.request_hash == request_hash))
        ).first()
        if row is None:
            return None
        return response_from_json(row.response, row.input_tokens, row.output_tokens)

    async def save_recording(self, key: str, request_hash: str, provider: str, response: ProviderResponse) -> None:
        statement = pg_insert(t.recordings).values(
            recording_key=key,
            request_hash=request_hash,
            provider=provider,
            model=response.response_model,
            response=response_json(response),
            input_tokens=response.input_tokens,
            output_tokens=response.output_tokens,
            created_at=func.now(),
        )
        # Recording the same request twice keeps the first answer: replays stay stable.
        await self._conn.execute(statement.on_conflict_do_nothing())

    # ------------------------------------------------------------ agent runs

    async def add_run(self, run: AgentRun, driver: str) -> None:
        await self._conn.execute(
            insert(t.agent_runs).values(
                id=run.id,
                status=run.status.value,
                message=run.message,
                history=[message_json(m) for m in run.history],
                subagents=[asdict(s) for s in run.subagents],
                judge=asdict(run.judge) if run.judge else None,
                workspace_ref=run.workspace_ref,
                metadata=run.metadata,
                **_correlation_values(run.correlation),
                recording={"mode": run.recording.mode.value, "key": run.recording.key},
                fork_of=asdict(run.fork_of) if run.fork_of else None,
                failure_reason=run.failure_reason,
                json_schema=run.json_schema,
                schema_name=run.schema_name,
                driver=driver,
                lease_owner="",
                lease_expires_at=None,
                created_at=run.created_at,
                updated_at=run.updated_at,
            )
        )

    async def get_run(self, run_id: str, *, for_update: bool = False) -> AgentRun | None:
        query = select(t.agent_runs).where(t.agent_runs.c.id == run_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        return _run(row) if row else None

    async def list_runs(self, filter_: Correlation, limit: int, after: tuple[datetime, str] | None) -> list[AgentRun]:
        c = t.agent_runs.c
        query = select(t.agent_runs).where(*_matches(t.agent_runs, filter_))
        if after is not None:
            at, id_ = after
            query = query.where(or_(c.created_at < at, and_(c.created_at == at, c.id < id_)))
        query = query.order_by(c.created_at.desc(), c.id.desc()).limit(limit)
        return [_run(row) for row in await self._conn.execute(query)]

    async def finish_run(self, run_id: str, status: AgentRunStatus, failure_reason: str, at: datetime) -> None:
        await self._conn.execute(
            update(t.agent_runs)
            .where(t.agent_runs.c.id == run_id)
            .values(status=status.value, failure_reason=failure_reason, updated_at=at, lease_expires_at=None)
        )

    async def add_candidate(self, candidate: Candidate) -> None:
        await self._conn.execute(
            insert(t.agent_candidates).values(
                id=candidate.id,
                agent_run_id=candidate.agent_run_id,
                name=candidate.name,
                provider=candidate.provider,
                model=candidate.model,
                output=candidate.output,
                structured=candidate.structured,
                metrics=asdict(candidate.metrics),
                llm_call_id=candidate.llm_call_id,
                created_at=candidate.created_at,
            )
        )

    async def add_subagent_error(self, error: SubagentError, at: datetime) -> None:
        await self._conn.execute(
            insert(t.agent_subagent_errors).values(
                id=func.gen_random_uuid(),
                agent_run_id=error.agent_run_id,
                name=error.name,
                provider=error.provider,
                model=error.model,
                reason=error.reason,
                message=error.message,
                created_at=at,
            )
        )

    async def set_decision(self, decision: Decision, at: datetime) -> None:
        await self._conn.execute(
            insert(t.agent_decisions).values(
                agent_run_id=decision.agent_run_id,
                candidate_id=decision.candidate_id,
                candidate_name=decision.candidate_name,
                provider=decision.provider,
                model=decision.model,
                rationale=decision.rationale,
                fallback=decision.fallback,
                fallback_reason=decision.fallback_reason,
                created_at=at,
            )
        )

    async def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        await self._conn.execute(
            insert(t.agent_checkpoints).values(
                id=checkpoint.id,
                agent_run_id=checkpoint.agent_run_id,
                sequence=checkpoint.sequence,
                label=checkpoint.label,
                state=checkpoint.state,
                created_at=checkpoint.created_at,
            )
        )

    async def next_checkpoint_sequence(self, run_id: str) -> int:
        # Callers hold the run row's lock (get_run(for_update=True)), so this cannot race.
        c = t.agent_checkpoints.c
        current = await self._conn.scalar(select(func.max(c.sequence)).where(c.agent_run_id == run_id))
        return int(current or 0) + 1

    async def candidates(self, run_id: str) -> list[Candidate]:
        c = t.agent_candidates.c
        rows = await self._conn.execute(
            select(t.agent_candidates).where(c.agent_run_id == run_id).order_by(c.created_at, c.name)
        )
        return [
            Candidate(
                str(r.id),
                str(r.agent_run_id),
                r.name,
                r.provider,
                r.model,
                r.output,
                CandidateMetrics(**r.metrics),
                r.llm_call_id,
                r.created_at,
                r.structured,
            )
            for r in rows
        ]

    async def subagent_errors(self, run_id: str) -> list[SubagentError]:
        c = t.agent_subagent_errors.c
        rows = await self._conn.execute(
            select(t.agent_subagent_errors).where(c.agent_run_id == run_id).order_by(c.created_at, c.name)
        )
        return [SubagentError(str(r.agent_run_id), r.name, r.provider, r.model, r.reason, r.message) for r in rows]

    async def decision(self, run_id: str) -> Decision | None:
        row = (
            await self._conn.execute(select(t.agent_decisions).where(t.agent_decisions.c.agent_run_id == run_id))
        ).first()
        if row is None:
            return None
        return Decision(
            str(row.agent_run_id),
            row.candidate_id,
            row.candidate_name,
            row.provider,
            row.model,
            row.rationale,
            row.fallback,
            row.fallback_reason,
        )

    async def checkpoints(self, run_id: str, limit: int = 10_000, after_sequence: int = 0) -> list[Checkpoint]:
        c = t.agent_checkpoints.c
        rows = await self._conn.execute(
            select(t.agent_checkpoints)
            .where(c.agent_run_id == run_id, c.sequence > after_sequence)
            .order_by(c.sequence)
            .limit(limit)
        )
        return [Checkpoint(str(r.id), str(r.agent_run_id), r.sequence, r.label, r.state, r.created_at) for r in rows]


# ---------------------------------------------------------------- row ⇄ domain


def _answered(c: Any) -> ColumnElement[bool]:
    """``LlmCall.answered`` in SQL."""
    return and_(c.status.in_([LlmCallStatus.SUCCEEDED.value, LlmCallStatus.REPLAYED.value]), c.error == "")


def _correlation_values(c: Correlation) -> dict[str, str]:
    return {name: getattr(c, name) for name in t.CORRELATION_COLUMNS}


def _usage_sums() -> list[ColumnElement[Any]]:
    """Tokens, USD, calls, then the calls that were billed without a price, failed, replayed, or
    abandoned by their caller."""
    c = t.llm_calls.c
    billed = c.status.in_([LlmCallStatus.SUCCEEDED.value, LlmCallStatus.INVALID_OUTPUT.value])
    return [
        func.coalesce(func.sum(c.input_tokens), 0),
        func.coalesce(func.sum(c.output_tokens), 0),
        func.coalesce(func.sum(c.usd), 0),
        func.count(),
        func.count().filter(and_(billed, c.usd.is_(None))),
        func.count().filter(c.status == LlmCallStatus.FAILED.value),
        func.count().filter(c.status == LlmCallStatus.REPLAYED.value),
        func.count().filter(c.status == LlmCallStatus.CANCELLED.value),
    ]


def _usage_totals(sums: Sequence[Any]) -> UsageTotals:
    tin, tout, usd, calls, unpriced, failed, replayed, cancelled = sums
    return UsageTotals(int(tin), int(tout), float(usd), calls, unpriced, failed, replayed, cancelled)


def _matches(table: Any, filter_: Correlation) -> list[ColumnElement[bool]]:
    return [table.c[name] == value for name, value in _correlation_values(filter_).items() if value]


def _correlation(row: Row[Any]) -> Correlation:
    return Correlation(**{name: getattr(row, name) for name in t.CORRELATION_COLUMNS})


def _llm_call(row: Row[Any]) -> LlmCall:
    return LlmCall(
        id=str(row.id),
        provider=row.provider,
        model=row.model,
        response_model=row.response_model,
        correlation=_correlation(row),
        status=LlmCallStatus(row.status),
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        usd=float(row.usd) if row.usd is not None else None,
        latency_ms=row.latency_ms,
        request_hash=row.request_hash,
        attempt=row.attempt,
        error=row.error,
        response=row.response,
        request=row.request,
        created_at=row.created_at,
        idempotency_key=row.idempotency_key,
    )


def _run(row: Row[Any]) -> AgentRun:
    return AgentRun(
        id=str(row.id),
        status=AgentRunStatus(row.status),
        message=row.message,
        history=tuple(message_from_json(m) for m in row.history),
        subagents=tuple(SubagentConfig(**s) for s in row.subagents),
        judge=JudgeConfig(**row.judge) if row.judge else None,
        workspace_ref=row.workspace_ref,
        metadata=row.metadata,
        correlation=_correlation(row),
        recording=Recording(RecordingMode(row.recording["mode"]), row.recording["key"]),
        fork_of=ForkOrigin(**row.fork_of) if row.fork_of else None,
        failure_reason=row.failure_reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
        json_schema=row.json_schema,
        schema_name=row.schema_name,
    )


__all__ = ["AbstractAgentRepository", "SqlAgentRepository"]


def _strings(name: str, values: Sequence[str]) -> Any:
    # = ANY(array) and unnest(array), not IN (...) or VALUES: one statement text whatever the number
    # of values, so the database prepares it once.
    return bindparam(name, list(values), type_=ARRAY(String))


# The statements of every keyed call, built once: a statement object memoizes its cache key, which
# SQLAlchemy otherwise works out anew on each execution of a newly built one.
def _asked() -> Any:
    return select(
        func.unnest(bindparam("keys", type_=ARRAY(String))).label("key"),
        # Two arrays unnested side by side: pairs, whatever their number, in one statement text.
        func.unnest(bindparam("tokens", type_=ARRAY(String))).label("token"),
        func.unnest(bindparam("run_ids", type_=ARRAY(String))).label("run_id"),
    ).cte("asked")


def _claim() -> Any:
    claims = t.llm_call_claims
    asked = _asked()
    claim = pg_insert(claims).from_select(
        ["idempotency_key", "owner", "run_id", "expires_at"],
        # In the keys' order, so that two rounds lock the rows of the keys they share in one order.
        select(asked.c.key, asked.c.token, asked.c.run_id, expires_in(bindparam("seconds", type_=Float))).order_by(
            asked.c.key
        ),
    )
    claimed = (
        claim.on_conflict_do_update(
            index_elements=[claims.c.idempotency_key],
            set_={
                "owner": claim.excluded.owner,
                "run_id": claim.excluded.run_id,
                "expires_at": claim.excluded.expires_at,
            },
            # A claim whose process stopped renewing it (it died, or its call was answered) is free.
            where=claims.c.expires_at < func.now(),
        )
        .returning(claims.c.owner)
        .cte("claimed")
    )
    c = t.llm_calls.c
    answered = (
        select(t.llm_calls)
        # The key index's own predicate, spelt as a literal so that the planner can use it.
        .where(
            c.idempotency_key == any_(bindparam("keys", type_=ARRAY(String))),
            c.idempotency_key != literal_column("''"),
            _answered(c),
        )
        .order_by(c.idempotency_key, c.created_at)
        .ext(distinct_on(c.idempotency_key))
        .cte("answered")
    )
    return select(asked.c.token, asked.c.token.in_(select(claimed.c.owner)).label("won"), *answered.c).select_from(
        asked.outerjoin(answered, answered.c.idempotency_key == asked.c.key)
    )


_CLAIM = _claim()
