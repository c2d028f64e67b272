"""The snapshot context's repository: Core ``select()``s in, domain objects out."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, delete, exists, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from crucible_common import jsonb
from crucible_common.notify import notify
from crucible_snapshot.adapters import tables as t
from crucible_snapshot.domain import snapshot_data
from crucible_snapshot.domain.errors import SnapshotDataUnreadable
from crucible_snapshot.domain.model import (
    Invariant,
    Replay,
    ReplayChange,
    ReplayMove,
    ReplayState,
    ReportStatus,
    RunMetrics,
    Snapshot,
    SnapshotTestResult,
    TestOptions,
    TestReport,
)
from crucible_snapshot.service_layer.ports import AbstractSnapshotRepository

# Watchers of a test report are woken on this channel, with the report's id as the payload.
REPORT_EVENTS_CHANNEL = "crucible_snapshot_reports"

Invariants = tuple[Invariant, ...]


def _like(text: str) -> str:
    """A substring pattern that matches ``text`` literally (its % and _ are not wildcards)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class SqlSnapshotRepository(AbstractSnapshotRepository):
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    # ------------------------------------------------------------ snapshots

    async def add_snapshot(self, snapshot: Snapshot) -> bool:
        assert snapshot.data is not None, "a snapshot is stored with its data"
        statement = pg_insert(t.snapshots).values(
            id=snapshot.id,
            name=snapshot.name,
            description=snapshot.description,
            tags=list(snapshot.tags),
            project_id=snapshot.project_id or None,
            run_id=snapshot.run_id or None,
            parent_id=snapshot.parent_id or None,
            snapshot_data=snapshot_data.dump(snapshot.data),
            reference_metrics=jsonb.dump(RunMetrics, snapshot.reference_metrics)
            if snapshot.reference_metrics
            else None,
            invariants=jsonb.dump(Invariants, snapshot.invariants),
            version=snapshot.stored_version,
            created_at=snapshot.created_at,
            updated_at=snapshot.updated_at,
        )
        inserted = await self._conn.execute(statement.on_conflict_do_nothing(index_elements=["name"]))
        return bool(inserted.rowcount)

    async def get_snapshot(self, snapshot_id: str) -> Snapshot | None:
        row = (await self._conn.execute(select(t.snapshots).where(t.snapshots.c.id == snapshot_id))).first()
        return _snapshot(row, with_data=True) if row else None

    async def list_snapshots(
        self,
        *,
        tags: Sequence[str],
        project_id: str,
        name: str,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> list[Snapshot]:
        c = t.snapshots.c
        columns = [column for column in t.snapshots.c if column.name != "snapshot_data"]
        query = select(*columns)
        if tags:
            # ``@>``: every tag asked for is among the snapshot's (the GIN index answers it).
            query = query.where(c.tags.contains(list(tags)))
        if project_id:
            query = query.where(c.project_id == project_id)
        if name:
            query = query.where(c.name.ilike(_like(name), escape="\\"))
        if after is not None:
            at, id_ = after
            query = query.where(or_(c.created_at < at, and_(c.created_at == at, c.id < id_)))
        rows = await self._conn.execute(query.order_by(c.created_at.desc(), c.id.desc()).limit(limit))
        return [_snapshot(row, with_data=False) for row in rows]

    async def names_containing(self, part: str) -> set[str]:
        c = t.snapshots.c
        rows = await self._conn.execute(select(c.name).where(c.name.ilike(_like(part), escape="\\")))
        return {name for (name,) in rows}

    async def snapshot_ids(self) -> list[str]:
        c = t.snapshots.c
        rows = await self._conn.execute(select(c.id).order_by(c.created_at, c.id))
        return [str(id_) for (id_,) in rows]

    async def delete_snapshot(self, snapshot_id: str) -> bool:
        result = await self._conn.execute(delete(t.snapshots).where(t.snapshots.c.id == snapshot_id))
        return bool(result.rowcount)

    # ------------------------------------------------------------ test reports

    async def add_report(self, report: TestReport) -> bool:
        statement = pg_insert(t.test_reports).values(
            id=report.id,
            trigger_id=report.trigger_id,
            status=report.status.value,
            options=jsonb.dump(TestOptions, report.options),
            snapshot_ids=list(report.snapshot_ids),
            error=report.error,
            total_cost_usd=report.total_cost_usd,
            lease_owner="",
            lease_expires_at=None,
            created_at=report.created_at,
            ended_at=report.ended_at,
        )
        inserted = await self._conn.execute(statement.on_conflict_do_nothing(index_elements=["trigger_id"]))
        return bool(inserted.rowcount)

    async def get_report(self, report_id: str) -> TestReport | None:
        row = (await self._conn.execute(select(t.test_reports).where(t.test_reports.c.id == report_id))).first()
        if row is None:
            return None
        return _report(row, await self._results([report_id]))

    async def report_status(self, report_id: str) -> ReportStatus | None:
        found = await self._conn.scalar(select(t.test_reports.c.status).where(t.test_reports.c.id == report_id))
        return ReportStatus(found) if found is not None else None

    async def report_by_trigger(self, trigger_id: str) -> TestReport | None:
        query = select(t.test_reports).where(t.test_reports.c.trigger_id == trigger_id)
        row = (await self._conn.execute(query)).first()
        if row is None:
            return None
        return _report(row, await self._results([str(row.id)]))

    async def list_reports(self, limit: int, after: tuple[datetime, str] | None) -> list[TestReport]:
        c = t.test_reports.c
        query = select(t.test_reports)
        if after is not None:
            at, id_ = after
            query = query.where(or_(c.created_at < at, and_(c.created_at == at, c.id < id_)))
        rows = list(await self._conn.execute(query.order_by(c.created_at.desc(), c.id.desc()).limit(limit)))
        results = await self._results([str(row.id) for row in rows])
        return [_report(row, results) for row in rows]

    async def _results(self, report_ids: Sequence[str]) -> dict[str, list[SnapshotTestResult]]:
        """The results of each report, in the order of its snapshots."""
        found: dict[str, list[SnapshotTestResult]] = defaultdict(list)
        if not report_ids:
            return found
        r = t.test_results.c
        rows = await self._conn.execute(
            select(r.report_id, r.result).where(r.report_id.in_(report_ids)).order_by(r.report_id, r.position)
        )
        for report_id, result in rows:
            found[str(report_id)].append(jsonb.load(SnapshotTestResult, result))
        return found

    async def add_result(self, report_id: str, position: int, result: SnapshotTestResult, at: datetime) -> None:
        # Delivered at commit, with the result.
        await notify(self._conn, REPORT_EVENTS_CHANNEL, report_id)
        await self._conn.execute(
            insert(t.test_results).values(
                report_id=report_id,
                position=position,
                snapshot_id=result.snapshot_id,
                status=result.status.value,
                result=jsonb.dump(SnapshotTestResult, result),
                created_at=at,
            )
        )

    async def results_by_position(self, report_id: str) -> dict[int, SnapshotTestResult]:
        r = t.test_results.c
        rows = await self._conn.execute(select(r.position, r.result).where(r.report_id == report_id))
        return {position: jsonb.load(SnapshotTestResult, result) for position, result in rows}

    async def results_except(self, report_id: str, positions: Collection[int]) -> list[tuple[int, SnapshotTestResult]]:
        r = t.test_results.c
        query = select(r.position, r.result).where(r.report_id == report_id).order_by(r.sequence)
        if positions:
            query = query.where(r.position.not_in(sorted(positions)))
        rows = await self._conn.execute(query)
        return [(int(position), jsonb.load(SnapshotTestResult, result)) for position, result in rows]

    async def finish_report(
        self, report_id: str, status: ReportStatus, *, error: str, total_cost_usd: float, at: datetime
    ) -> None:
        await notify(self._conn, REPORT_EVENTS_CHANNEL, report_id)
        await self._conn.execute(
            update(t.test_reports)
            .where(t.test_reports.c.id == report_id)
            .values(status=status.value, error=error, total_cost_usd=total_cost_usd, ended_at=at)
        )

    # ------------------------------------------------------------ replays

    async def add_replays(self, replays: Sequence[Replay]) -> bool:
        statement = pg_insert(t.replays).values(
            [
                {
                    "trigger_id": r.trigger_id,
                    "snapshot_id": r.snapshot_id,
                    "report_id": r.report_id or None,
                    "position": r.position,
                    "repetition": r.repetition,
                    "project_id": r.project_id,
                    "run_id": r.run_id or None,
                    "state": r.state.value,
                    "reserved_usd": r.reserved_usd,
                    "metrics": jsonb.dump(RunMetrics, r.metrics) if r.metrics else None,
                    "reason": r.reason,
                    "created_at": r.created_at,
                }
                for r in replays
            ]
        )
        inserted = await self._conn.execute(statement.on_conflict_do_nothing(index_elements=["trigger_id"]))
        return inserted.rowcount == len(replays)

    async def get_replay(self, trigger_id: str) -> Replay | None:
        row = (await self._conn.execute(select(t.replays).where(t.replays.c.trigger_id == trigger_id))).first()
        return _replay(row) if row else None

    async def replays_of(self, report_id: str) -> list[Replay]:
        c = t.replays.c
        rows = await self._conn.execute(
            select(t.replays).where(c.report_id == report_id).order_by(c.position, c.repetition)
        )
        return [_replay(row) for row in rows]

    async def replay_moves(self, report_id: str) -> list[ReplayMove]:
        c, done = t.replays.c, t.test_results.c
        rows = await self._conn.execute(
            select(c.position, c.repetition, c.snapshot_id, c.state, c.run_id, t.snapshots.c.name)
            .outerjoin(t.snapshots, t.snapshots.c.id == c.snapshot_id)
            .where(
                c.report_id == report_id, ~exists().where(done.report_id == c.report_id, done.position == c.position)
            )
            .order_by(c.position, c.repetition)
        )
        return [
            ReplayMove(
                row.position,
                row.repetition,
                str(row.snapshot_id),
                ReplayState(row.state),
                str(row.run_id or ""),
                row.name or "",
            )
            for row in rows
        ]

    async def update_replay(self, trigger_id: str, change: ReplayChange) -> None:
        values = change.changed()
        values["state"] = change.state.value
        if change.metrics is not None:
            values["metrics"] = jsonb.dump(RunMetrics, change.metrics)
        statement = update(t.replays).where(t.replays.c.trigger_id == trigger_id).values(**values)
        report_id = (await self._conn.execute(statement.returning(t.replays.c.report_id))).scalar_one_or_none()
        if report_id is not None:
            # Delivered at commit: the suite's watchers tell the move.
            await notify(self._conn, REPORT_EVENTS_CHANNEL, str(report_id))


# ---------------------------------------------------------------- row → domain


def _snapshot(row: Row[Any], *, with_data: bool) -> Snapshot:
    data = None
    if with_data:
        try:
            data = snapshot_data.load(row.snapshot_data)
        except snapshot_data.UnreadableSnapshotData as exc:
            raise SnapshotDataUnreadable(str(row.id), str(exc)) from exc
    return Snapshot(
        id=str(row.id),
        name=row.name,
        description=row.description,
        tags=tuple(row.tags),
        project_id=str(row.project_id) if row.project_id else "",
        run_id=str(row.run_id) if row.run_id else "",
        data=data,
        reference_metrics=jsonb.load(RunMetrics, row.reference_metrics) if row.reference_metrics else None,
        invariants=jsonb.load(Invariants, row.invariants),
        stored_version=row.version,
        parent_id=str(row.parent_id) if row.parent_id else "",
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _report(row: Row[Any], results: dict[str, list[SnapshotTestResult]]) -> TestReport:
    return TestReport(
        id=str(row.id),
        trigger_id=row.trigger_id,
        status=ReportStatus(row.status),
        options=jsonb.load(TestOptions, row.options),
        snapshot_ids=tuple(row.snapshot_ids),
        created_at=row.created_at,
        results=tuple(results.get(str(row.id), ())),
        total_cost_usd=row.total_cost_usd,
        error=row.error,
        ended_at=row.ended_at,
    )


def _replay(row: Row[Any]) -> Replay:
    return Replay(
        trigger_id=row.trigger_id,
        snapshot_id=str(row.snapshot_id),
        project_id=str(row.project_id),
        created_at=row.created_at,
        report_id=str(row.report_id) if row.report_id else "",
        position=row.position,
        repetition=row.repetition,
        state=ReplayState(row.state),
        run_id=str(row.run_id) if row.run_id else "",
        reserved_usd=row.reserved_usd,
        metrics=jsonb.load(RunMetrics, row.metrics) if row.metrics else None,
        reason=row.reason,
    )
