"""The run context's repository: Core ``select()``s in, domain objects out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, bindparam, case, func, insert, null, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from crucible_common import jsonb
from crucible_common.notify import notify
from crucible_run.adapters import tables as t
from crucible_run.domain.events import EVENT_DATA, NewRunEvent, RunEvent, RunEventType
from crucible_run.domain.model import (
    PHASE_ORDER,
    Candidate,
    CandidateLabel,
    CandidateOrigin,
    ConstraintResult,
    ConstraintViolation,
    Evaluation,
    EvaluationStatus,
    LlmUsage,
    ProblemCopy,
    RankedCandidate,
    Run,
    RunCounts,
    RunMode,
    RunParameters,
    RunPhase,
    RunState,
    RunStatus,
    Scenario,
    Score,
    Trigger,
    TriggerSource,
)
from crucible_run.domain.spans import SpanRef
from crucible_run.service_layer.ports import AbstractRunRepository

# Watchers of a run are woken on this channel, with the run's id as the payload.
RUN_EVENTS_CHANNEL = "crucible_run_events"


# The events after which a run's watchers have nothing more to wait for but its summary.
_ENDINGS = frozenset({RunEventType.RUN_COMPLETED, RunEventType.RUN_FAILED, RunEventType.RUN_CANCELLED})


class SqlRunRepository(AbstractRunRepository):
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        # What this transaction has already notified: one notification each reaches the watchers.
        self._notified: set[tuple[str, bool]] = set()

    # ------------------------------------------------------------ runs

    async def add_run(self, run: Run) -> bool:
        statement = pg_insert(t.runs).values(
            id=run.id,
            project_id=run.project_id,
            mode=run.mode.value,
            parameters=jsonb.dump(RunParameters, run.parameters),
            status=run.status.value,
            phases=[p.value for p in run.phases],
            phases_done=[p.value for p in run.phases_done],
            trigger_id=run.trigger.id,
            trigger_source=run.trigger.source.value,
            trigger_metadata=run.trigger.metadata,
            triggered_at=run.trigger.at,
            chat_session_id=run.chat_session_id,
            recommended_message_id=run.recommended_message_id,
            recommended_config_snapshot=run.recommended_config_snapshot,
            problem=jsonb.dump(ProblemCopy, run.problem) if run.problem else None,
            counts=jsonb.dump(RunCounts, run.counts),
            usage=jsonb.dump(LlmUsage, run.usage),
            failure_reason=run.failure_reason,
            error_summary=run.error_summary,
            run_summary_message_id=run.run_summary_message_id,
            summary_pending=False,
            snapshot_pending=False,
            replay_of_run_id=run.replay_of_run_id,
            snapshot_test_id=run.snapshot_test_id,
            trace_id=run.trace_id,
            trace_context=run.trace_context,
            create_span=jsonb.dump(SpanRef, run.create_span) if run.create_span else None,
            summary_span=jsonb.dump(SpanRef, run.summary_span) if run.summary_span else None,
            lease_owner="",
            lease_expires_at=None,
            created_at=run.created_at,
        )
        inserted = await self._conn.execute(statement.on_conflict_do_nothing(index_elements=["trigger_id"]))
        return bool(inserted.rowcount)

    async def get_run(self, run_id: str, *, for_update: bool = False) -> Run | None:
        query = select(t.runs).where(t.runs.c.id == run_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        return _run(row) if row else None

    async def run_state(self, run_id: str) -> RunState | None:
        c = t.runs.c
        row = (await self._conn.execute(select(c.status, c.summary_pending).where(c.id == run_id))).first()
        return RunState(RunStatus(row.status), row.summary_pending) if row else None

    async def run_by_trigger(self, trigger_id: str) -> Run | None:
        row = (await self._conn.execute(select(t.runs).where(t.runs.c.trigger_id == trigger_id))).first()
        return _run(row) if row else None

    async def list_runs(
        self, project_id: str, status: RunStatus | None, limit: int, after: tuple[datetime, str] | None
    ) -> list[Run]:
        c = t.runs.c
        query = select(t.runs).where(c.project_id == project_id)
        if status is not None:
            query = query.where(c.status == status.value)
        if after is not None:
            at, id_ = after
            query = query.where(or_(c.created_at < at, and_(c.created_at == at, c.id < id_)))
        rows = await self._conn.execute(query.order_by(c.created_at.desc(), c.id.desc()).limit(limit))
        return [_run(row) for row in rows]

    async def start(
        self,
        run_id: str,
        phases: tuple[RunPhase, ...],
        problem: ProblemCopy,
        at: datetime,
        trace_context: dict[str, str],
    ) -> None:
        traceparent = trace_context.get("traceparent", "")
        await self._conn.execute(
            update(t.runs)
            .where(t.runs.c.id == run_id)
            .values(
                status=RunStatus.RUNNING.value,
                phases=[p.value for p in phases],
                problem=jsonb.dump(ProblemCopy, problem),
                started_at=at,
                trace_context=trace_context,
                trace_id=traceparent.split("-")[1] if traceparent.count("-") == 3 else "",
            )
        )

    async def phase_done(self, run_id: str, phase: RunPhase) -> None:
        c = t.runs.c
        # Appends unless already there (a phase finished twice by a resumed run).
        await self._conn.execute(
            update(t.runs)
            .where(c.id == run_id, ~c.phases_done.contains([phase.value]))
            .values(phases_done=c.phases_done + func.jsonb_build_array(phase.value))
        )

    async def finish(
        self,
        run_id: str,
        status: RunStatus,
        *,
        failure_reason: str,
        error_summary: str,
        counts: RunCounts,
        usage: LlmUsage,
        at: datetime,
        summary_pending: bool,
        snapshot_pending: bool = False,
    ) -> None:
        await self._conn.execute(
            update(t.runs)
            .where(t.runs.c.id == run_id)
            .values(
                status=status.value,
                failure_reason=failure_reason,
                error_summary=error_summary,
                counts=jsonb.dump(RunCounts, counts),
                usage=jsonb.dump(LlmUsage, usage),
                ended_at=at,
                summary_pending=summary_pending,
                snapshot_pending=snapshot_pending,
            )
        )

    async def set_usage(self, run_id: str, usage: LlmUsage) -> None:
        await self._conn.execute(update(t.runs).where(t.runs.c.id == run_id).values(usage=jsonb.dump(LlmUsage, usage)))

    async def set_summary(self, run_id: str, message_id: str, span: SpanRef | None) -> None:
        c = t.runs.c
        await self._conn.execute(
            update(t.runs)
            .where(c.id == run_id)
            .values(
                run_summary_message_id=message_id,
                summary_span=jsonb.dump(SpanRef, span) if span else None,
                summary_pending=False,
                lease_expires_at=_released_unless(c.snapshot_pending),
            )
        )

    async def snapshot_done(self, run_id: str) -> None:
        c = t.runs.c
        await self._conn.execute(
            update(t.runs)
            .where(c.id == run_id)
            .values(snapshot_pending=False, lease_expires_at=_released_unless(c.summary_pending))
        )

    async def counts(self, run_id: str) -> RunCounts:
        e = t.evaluations.c
        candidates = await self._conn.scalar(select(func.count()).where(t.candidates.c.run_id == run_id))
        scenarios = await self._conn.scalar(select(func.count()).where(t.scenarios.c.run_id == run_id))
        row = (
            await self._conn.execute(
                select(
                    func.count().filter(e.status == EvaluationStatus.SUCCEEDED.value),
                    func.count().filter(e.status == EvaluationStatus.FAILED.value),
                ).where(e.run_id == run_id)
            )
        ).one()
        return RunCounts(int(candidates or 0), int(scenarios or 0), int(row[0]), int(row[1]))

    # ------------------------------------------------------------ candidates, scenarios, evaluations

    async def add_candidates(self, candidates: Sequence[Candidate]) -> None:
        if not candidates:
            return
        await self._conn.execute(
            insert(t.candidates),
            [
                {
                    "id": x.id,
                    "run_id": x.run_id,
                    "position": x.position,
                    "title": x.title,
                    "description": x.description,
                    "approach": x.approach,
                    "assumptions": list(x.assumptions),
                    "origin": x.origin.value,
                    "source_candidate_id": x.source_candidate_id,
                    "created_at": x.created_at,
                }
                for x in candidates
            ],
        )

    async def candidates(self, run_id: str, limit: int = 100_000, after_position: int = -1) -> list[Candidate]:
        c = t.candidates.c
        rows = await self._conn.execute(
            select(t.candidates)
            .where(c.run_id == run_id, c.position > after_position)
            .order_by(c.position)
            .limit(limit)
        )
        return [_candidate(row) for row in rows]

    async def project_candidates(self, project_id: str, ids: Sequence[str]) -> list[Candidate]:
        if not ids:
            return []
        c = t.candidates.c
        rows = await self._conn.execute(
            select(t.candidates)
            .join(t.runs, t.runs.c.id == c.run_id)
            .where(t.runs.c.project_id == project_id, c.id.in_(list(ids)))
        )
        found = {str(row.id): _candidate(row) for row in rows}
        # In the order asked.
        return [found[i] for i in ids if i in found]

    async def latest_completed_candidates(self, project_id: str) -> list[Candidate]:
        r = t.runs.c
        latest = (
            select(r.id)
            .where(
                r.project_id == project_id,
                r.status == RunStatus.COMPLETED.value,
                # The project's own work: a recorded replay or a snapshot test's run re-runs a past
                # state, and is nobody's latest result.
                r.replay_of_run_id == "",
                r.snapshot_test_id == "",
                select(t.candidates.c.id).where(t.candidates.c.run_id == r.id).exists(),
            )
            # The run that completed last, not the one created last: a later run can finish first.
            .order_by(r.ended_at.desc(), r.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        c = t.candidates.c
        rows = await self._conn.execute(select(t.candidates).where(c.run_id == latest).order_by(c.position))
        return [_candidate(row) for row in rows]

    async def add_scenarios(self, scenarios: Sequence[Scenario]) -> None:
        if not scenarios:
            return
        await self._conn.execute(
            insert(t.scenarios),
            [
                {
                    "id": s.id,
                    "run_id": s.run_id,
                    "position": s.position,
                    "title": s.title,
                    "description": s.description,
                    "conditions": list(s.conditions),
                    "severity": s.severity,
                    "created_at": s.created_at,
                }
                for s in scenarios
            ],
        )

    async def scenarios(self, run_id: str, limit: int = 100_000, after_position: int = -1) -> list[Scenario]:
        c = t.scenarios.c
        rows = await self._conn.execute(
            select(t.scenarios).where(c.run_id == run_id, c.position > after_position).order_by(c.position).limit(limit)
        )
        return [
            Scenario(
                str(row.id),
                str(row.run_id),
                row.title,
                row.description,
                tuple(row.conditions),
                row.severity,
                row.created_at,
                row.position,
            )
            for row in rows
        ]

    async def add_evaluations(self, evaluations: Sequence[Evaluation]) -> None:
        if not evaluations:
            return
        await self._conn.execute(
            insert(t.evaluations),
            [
                {
                    "id": e.id,
                    "run_id": e.run_id,
                    "candidate_id": e.candidate_id,
                    "scenario_id": e.scenario_id,
                    "status": e.status.value,
                    "p": jsonb.dump(Score, e.p) if e.p else None,
                    "r": jsonb.dump(Score, e.r) if e.r else None,
                    "constraint_satisfaction": jsonb.dump(tuple[ConstraintResult, ...], e.constraint_satisfaction),
                    "explanation": e.explanation,
                    "failure_reason": e.failure_reason,
                    "raw_answer": e.raw_answer,
                    "llm_call_id": e.llm_call_id,
                    "created_at": e.created_at,
                }
                for e in evaluations
            ],
        )

    async def set_raw_answers(self, answers: Sequence[tuple[str, str]]) -> None:
        if not answers:
            return
        e = t.evaluations.c
        await self._conn.execute(
            update(t.evaluations).where(e.id == bindparam("evaluation_id")).values(raw_answer=bindparam("answer")),
            [{"evaluation_id": id_, "answer": text} for id_, text in answers],
        )

    async def evaluations(
        self,
        run_id: str,
        candidate_id: str = "",
        limit: int = 100_000,
        after: tuple[datetime, str] | None = None,
        status: EvaluationStatus | None = None,
    ) -> list[Evaluation]:
        c = t.evaluations.c
        query = select(t.evaluations).where(c.run_id == run_id)
        if candidate_id:
            query = query.where(c.candidate_id == candidate_id)
        if status is not None:
            query = query.where(c.status == status.value)
        if after is not None:
            at, id_ = after
            query = query.where(or_(c.created_at < at, and_(c.created_at == at, c.id < id_)))
        rows = await self._conn.execute(query.order_by(c.created_at.desc(), c.id.desc()).limit(limit))
        return [_evaluation(row) for row in rows]

    async def evaluated_pairs(self, run_id: str, status: EvaluationStatus | None = None) -> set[tuple[str, str]]:
        c = t.evaluations.c
        query = select(c.candidate_id, c.scenario_id).where(c.run_id == run_id)
        if status is not None:
            query = query.where(c.status == status.value)
        return {(str(x), str(s)) for x, s in await self._conn.execute(query)}

    async def set_ranking(self, run_id: str, ranking: Sequence[RankedCandidate]) -> None:
        await self._conn.execute(t.rankings.delete().where(t.rankings.c.run_id == run_id))
        if not ranking:
            return
        await self._conn.execute(
            insert(t.rankings),
            [
                {
                    "run_id": run_id,
                    "candidate_id": r.candidate_id,
                    "rank": r.rank,
                    "label": r.label.value,
                    "i": r.i,
                    "p": r.p,
                    "r": r.r,
                    "violated_constraints": jsonb.dump(tuple[ConstraintViolation, ...], r.violated_constraints),
                    "evaluations": r.evaluations,
                    "failed_evaluations": r.failed_evaluations,
                }
                for r in ranking
            ],
        )

    async def ranking(self, run_id: str) -> list[RankedCandidate]:
        k = t.rankings.c
        rows = await self._conn.execute(
            select(t.rankings, t.candidates.c.title)
            .join(t.candidates, t.candidates.c.id == k.candidate_id)
            .where(k.run_id == run_id)
            .order_by(k.rank)
        )
        return [
            RankedCandidate(
                str(row.candidate_id),
                row.title,
                row.rank,
                CandidateLabel(row.label),
                row.i,
                row.p,
                row.r,
                jsonb.load(tuple[ConstraintViolation, ...], row.violated_constraints),
                row.evaluations,
                row.failed_evaluations,
            )
            for row in rows
        ]

    # ------------------------------------------------------------ events

    async def add_events(self, run_id: str, events: Sequence[tuple[NewRunEvent, datetime]]) -> None:
        if not events:
            return
        await self._notify(run_id, any(event.type in _ENDINGS for event, _ in events))
        await self._conn.execute(
            insert(t.run_events),
            [
                {
                    "run_id": run_id,
                    "type": event.type.value,
                    "data": jsonb.dump(EVENT_DATA[event.type], event.data),
                    "created_at": at,
                }
                for event, at in events
            ],
        )

    async def add_event(self, run_id: str, event: NewRunEvent, at: datetime) -> int:
        await self._notify(run_id, event.type in _ENDINGS)
        sequence = await self._conn.scalar(
            insert(t.run_events)
            .values(
                run_id=run_id, type=event.type.value, data=jsonb.dump(EVENT_DATA[event.type], event.data), created_at=at
            )
            .returning(t.run_events.c.sequence)
        )
        return int(sequence or 0)

    async def _notify(self, run_id: str, ending: bool) -> None:
        # Delivered at commit; several in one transaction reach a watcher as one, so each is sent once.
        if (run_id, ending) not in self._notified:
            self._notified.add((run_id, ending))
            await notify(self._conn, RUN_EVENTS_CHANNEL, run_id, ending=ending)

    async def events(self, run_id: str, after_sequence: int, limit: int) -> list[RunEvent]:
        e = t.run_events.c
        rows = await self._conn.execute(
            select(t.run_events)
            .where(e.run_id == run_id, e.sequence > after_sequence)
            .order_by(e.sequence)
            .limit(limit)
        )
        return [_event(row) for row in rows]

    async def phases_started(self, run_id: str) -> set[RunPhase]:
        e = t.run_events.c
        rows = await self._conn.execute(
            select(e.data["phase"].astext)
            .where(e.run_id == run_id, e.type == RunEventType.PHASE_STARTED.value)
            .distinct()
        )
        return {RunPhase(phase) for phase in rows.scalars()}


def _released_unless(pending: ColumnElement[bool]) -> ColumnElement[Any]:
    """The lease's expiry once one step after the end is done: kept while the other is ``pending``.

    Released (NULL) too early, the run would be claimable at once by any process while this one
    still does its other step.
    """
    return case((pending, t.runs.c.lease_expires_at), else_=null())


# ---------------------------------------------------------------- row → domain


def _run(row: Row[Any]) -> Run:
    return Run(
        id=str(row.id),
        project_id=str(row.project_id),
        mode=RunMode(row.mode),
        parameters=jsonb.load(RunParameters, row.parameters),
        status=RunStatus(row.status),
        trigger=Trigger(row.trigger_id, TriggerSource(row.trigger_source), row.trigger_metadata, row.triggered_at),
        chat_session_id=row.chat_session_id,
        recommended_message_id=row.recommended_message_id,
        recommended_config_snapshot=row.recommended_config_snapshot,
        created_at=row.created_at,
        phases=tuple(RunPhase(p) for p in row.phases),
        problem=jsonb.load(ProblemCopy, row.problem) if row.problem is not None else None,
        counts=jsonb.load(RunCounts, row.counts),
        usage=jsonb.load(LlmUsage, row.usage),
        failure_reason=row.failure_reason,
        error_summary=row.error_summary,
        run_summary_message_id=row.run_summary_message_id,
        summary_pending=row.summary_pending,
        snapshot_pending=row.snapshot_pending,
        replay_of_run_id=row.replay_of_run_id,
        snapshot_test_id=row.snapshot_test_id,
        started_at=row.started_at,
        ended_at=row.ended_at,
        trace_id=row.trace_id,
        trace_context=row.trace_context,
        # Stored in the order phases finished (design and scenarios race); read in pipeline order.
        phases_done=tuple(p for p in PHASE_ORDER if p.value in row.phases_done),
        create_span=jsonb.load(SpanRef, row.create_span) if row.create_span is not None else None,
        summary_span=jsonb.load(SpanRef, row.summary_span) if row.summary_span is not None else None,
    )


def _candidate(row: Row[Any]) -> Candidate:
    return Candidate(
        str(row.id),
        str(row.run_id),
        row.title,
        row.description,
        row.approach,
        tuple(row.assumptions),
        CandidateOrigin(row.origin),
        row.created_at,
        row.source_candidate_id,
        row.position,
    )


def _evaluation(row: Row[Any]) -> Evaluation:
    return Evaluation(
        id=str(row.id),
        run_id=str(row.run_id),
        candidate_id=str(row.candidate_id),
        scenario_id=str(row.scenario_id),
        status=EvaluationStatus(row.status),
        created_at=row.created_at,
        p=jsonb.load(Score, row.p) if row.p is not None else None,
        r=jsonb.load(Score, row.r) if row.r is not None else None,
        constraint_satisfaction=jsonb.load(tuple[ConstraintResult, ...], row.constraint_satisfaction),
        explanation=row.explanation,
        failure_reason=row.failure_reason,
        raw_answer=row.raw_answer,
        llm_call_id=row.llm_call_id,
    )


def _event(row: Row[Any]) -> RunEvent:
    kind = RunEventType(row.type)
    return RunEvent(row.sequence, str(row.run_id), kind, jsonb.load(EVENT_DATA[kind], row.data), row.created_at)
