"""Proto ⇄ domain conversions for the snapshot service (translation only; enum names come from the protos)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from google.protobuf import struct_pb2

from crucible.snapshot.v1 import snapshot_service_pb2 as pb
from crucible_common.enums import ProtoEnum
from crucible_common.errors import FieldViolation, ValidationFailed
from crucible_common.protobuf import struct, struct_to_dict, timestamp, value, value_to_python
from crucible_snapshot.domain import snapshot_data
from crucible_snapshot.domain.model import (
    Invariant,
    InvariantResult,
    JsonScalar,
    MetricDelta,
    ReplayMode,
    ReplayMove,
    ReplayOptions,
    ReplayPhases,
    ReplayState,
    ReportStatus,
    ResultStatus,
    RunMetrics,
    Snapshot,
    SnapshotTestResult,
    TestOptions,
    TestReport,
)
from crucible_snapshot.domain.snapshot_data import SnapshotData
from crucible_snapshot.service_layer.handlers import Started

PHASES = ProtoEnum(pb.ReplayPhases, ReplayPhases, unspecified=ReplayPhases.ALL)
MODE = ProtoEnum(pb.ReplayMode, ReplayMode, unspecified=ReplayMode.LIVE)
RESULT_STATUS = ProtoEnum(pb.ResultStatus, ResultStatus)
REPORT_STATUS = ProtoEnum(pb.ReportStatus, ReportStatus)
REPLAY_STATE = ProtoEnum(pb.ReplayState, ReplayState)


# ---------------------------------------------------------------- in


def invariants(items: list[pb.Invariant], field: str = "invariants") -> tuple[Invariant, ...]:
    """The request's invariants; a value that is no JSON scalar (a list, an object) is named here."""
    found: list[Invariant] = []
    problems: list[FieldViolation] = []
    for i, item in enumerate(items):
        raw = value_to_python(item.value)
        if isinstance(raw, list | dict):
            problems.append(FieldViolation(f"{field}[{i}].value", "a number, a string or a boolean"))
            continue
        scalar: JsonScalar = raw
        found.append(Invariant(item.type.strip(), scalar, item.description))
    if problems:
        raise ValidationFailed(problems, "snapshot")
    return tuple(found)


def imported_data(data: struct_pb2.Struct) -> SnapshotData:
    """An import's snapshot_data, of any known version, migrated; what makes it unreadable is named."""
    try:
        return snapshot_data.load(struct_to_dict(data))
    except snapshot_data.UnreadableSnapshotData as exc:
        raise ValidationFailed(list(exc.problems), "snapshot") from exc


def metrics(m: pb.RunMetrics) -> RunMetrics:
    """An import's reference metrics (proto3 ``optional`` fields unset stay unknown)."""
    known = {f.name: v for f, v in m.ListFields()}
    return RunMetrics(**{"run_id": m.run_id, "status": m.status, **known})


def replay_options(o: pb.ReplayOptions) -> ReplayOptions:
    return ReplayOptions(
        phases=PHASES.from_proto(o.phases, "options.phases") or ReplayPhases.ALL,
        num_candidates=o.num_candidates if o.HasField("num_candidates") else None,
        num_scenarios=o.num_scenarios if o.HasField("num_scenarios") else None,
        reuse_project=o.reuse_project,
        mode=MODE.from_proto(o.replay_mode, "options.replay_mode") or ReplayMode.LIVE,
    )


def test_options(o: pb.TestOptions) -> TestOptions:
    return TestOptions(
        max_snapshots=o.max_snapshots,
        phases=PHASES.from_proto(o.phases, "options.phases") or ReplayPhases.ALL,
        num_candidates=o.num_candidates if o.HasField("num_candidates") else None,
        num_scenarios=o.num_scenarios if o.HasField("num_scenarios") else None,
        stop_on_first_failure=o.stop_on_first_failure,
        cost_limit_usd=o.cost_limit_usd if o.HasField("cost_limit_usd") else None,
        concurrency=o.concurrency,
        replay_mode=MODE.from_proto(o.replay_mode, "options.replay_mode") or ReplayMode.LIVE,
        repetitions=o.repetitions,
        min_pass_rate=o.min_pass_rate if o.HasField("min_pass_rate") else 1.0,
    )


# ---------------------------------------------------------------- out


def metrics_pb(m: RunMetrics) -> pb.RunMetrics:
    fields = asdict(m)
    return pb.RunMetrics(**{k: v for k, v in fields.items() if v is not None})


def snapshot_pb(s: Snapshot, reference_results: Sequence[InvariantResult] = ()) -> pb.Snapshot:
    message = pb.Snapshot(
        id=s.id,
        name=s.name,
        description=s.description,
        tags=list(s.tags),
        project_id=s.project_id,
        run_id=s.run_id,
        invariants=[pb.Invariant(type=i.type, value=value(i.value), description=i.description) for i in s.invariants],
        version=s.data.version if s.data is not None else s.stored_version,
        parent_id=s.parent_id,
        create_time=timestamp(s.created_at),
        update_time=timestamp(s.updated_at),
        reference_results=[invariant_result_pb(r) for r in reference_results],
    )
    if s.data is not None:
        message.snapshot_data.CopyFrom(struct(snapshot_data.dump(s.data)))
    if s.reference_metrics is not None:
        message.reference_metrics.CopyFrom(metrics_pb(s.reference_metrics))
    return message


def invariant_result_pb(r: InvariantResult) -> pb.InvariantResult:
    return pb.InvariantResult(
        type=r.type,
        description=r.description,
        status=RESULT_STATUS.to_proto(r.status),
        expected=value(r.expected),
        actual=value(r.actual),
        pass_rate=r.pass_rate,
        message=r.message,
    )


def delta_pb(d: MetricDelta) -> pb.MetricDelta:
    return pb.MetricDelta(**{k: v for k, v in asdict(d).items() if v is not None})


def result_pb(r: SnapshotTestResult) -> pb.SnapshotTestResult:
    return pb.SnapshotTestResult(
        snapshot_id=r.snapshot_id,
        snapshot_name=r.snapshot_name,
        status=RESULT_STATUS.to_proto(r.status),
        replay_run_id=r.replay_run_id,
        replay_run_ids=list(r.replay_run_ids),
        invariants=[invariant_result_pb(i) for i in r.invariants],
        metrics_delta={k: delta_pb(d) for k, d in r.metrics_delta.items()},
        cost_usd=r.cost_usd,
        reason=r.reason,
        repetitions=r.repetitions,
    )


def test_options_pb(o: TestOptions) -> pb.TestOptions:
    message = pb.TestOptions(
        max_snapshots=o.max_snapshots,
        phases=PHASES.to_proto(o.phases),
        stop_on_first_failure=o.stop_on_first_failure,
        concurrency=o.concurrency,
        replay_mode=MODE.to_proto(o.replay_mode),
        repetitions=o.repetitions,
        min_pass_rate=o.min_pass_rate,
    )
    if o.num_candidates is not None:
        message.num_candidates = o.num_candidates
    if o.num_scenarios is not None:
        message.num_scenarios = o.num_scenarios
    if o.cost_limit_usd is not None:
        message.cost_limit_usd = o.cost_limit_usd
    return message


def report_pb(r: TestReport) -> pb.TestReport:
    message = pb.TestReport(
        id=r.id,
        status=REPORT_STATUS.to_proto(r.status),
        summary=pb.TestSummary(**asdict(r.summary)),
        results=[result_pb(x) for x in r.results],
        total_cost_usd=r.total_cost_usd,
        options=test_options_pb(r.options),
        snapshot_ids=list(r.snapshot_ids),
        error=r.error,
        create_time=timestamp(r.created_at),
        snapshot_test_id=r.snapshot_test_id,
    )
    if r.ended_at is not None:
        message.end_time.CopyFrom(timestamp(r.ended_at))
    return message


def started_pb(s: Started) -> pb.TestReportStarted:
    return pb.TestReportStarted(report_id=s.report_id, snapshot_ids=list(s.snapshot_ids), repetitions=s.repetitions)


def replay_move_pb(move: ReplayMove) -> pb.ReplayProgress:
    return pb.ReplayProgress(
        snapshot_id=move.snapshot_id,
        repetition=move.repetition + 1,
        state=REPLAY_STATE.to_proto(move.state),
        run_id=move.run_id,
        snapshot_name=move.snapshot_name,
    )
