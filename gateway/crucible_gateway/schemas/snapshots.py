"""Bodies of /api/snapshots, /api/snapshot-reports and the suite's WebSocket events (seed 000).

Every enum of the snapshot contract is spelt in lower case (``passed``, ``recorded``); a run's
status inside metrics stays as the run API writes it (``COMPLETED``), since it is the run's word
and not the snapshot service's. A report has the seed's shape: ``summary {total, passed,
failed, skipped}``, ``results[] {snapshot_id, snapshot_name, status, replay_run_id,
invariants[], metrics_delta, cost_usd}`` and ``total_cost_usd``, with the contract's extra
fields beside them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, TypedDict

from google.protobuf import struct_pb2
from pydantic import BaseModel, Field, FiniteFloat

from crucible.snapshot.v1 import snapshot_service_pb2 as pb
from crucible_common.protobuf import struct, struct_to_dict, to_datetime
from crucible_gateway.schemas.common import Body, Id, Int32, Int64, OptionalId, RestEnum

# As the snapshot service takes them.
MAX_NAME = 200
MAX_DESCRIPTION = 10_000
MAX_REASON = 2_000
MAX_TRIGGER_ID = 200
Tag = Annotated[str, Field(max_length=64)]

REPLAY_PHASES = RestEnum(pb.ReplayPhases)
REPLAY_MODE = RestEnum(pb.ReplayMode)
RESULT_STATUS = RestEnum(pb.ResultStatus)
REPORT_STATUS = RestEnum(pb.ReportStatus)
REPLAY_STATE = RestEnum(pb.ReplayState)
ReplayPhases = Annotated[str, REPLAY_PHASES]
ReplayMode = Annotated[str, REPLAY_MODE]
ResultStatus = Annotated[str, RESULT_STATUS]
ReportStatus = Annotated[str, REPORT_STATUS]

INVARIANT_TYPES = (
    "min_candidates, max_candidates, min_scenarios, max_scenarios (a count), run_status (COMPLETED, FAILED, "
    "CANCELLED), min_top_i_score, max_top_i_score (a number), no_hard_constraint_violations (true), "
    "max_duration_seconds (seconds), min_evaluation_coverage (0 to 1), custom (a CEL expression over the "
    'replay\'s metrics, e.g. "evaluations == candidates * scenarios")'
)


def to_value(value: Any) -> struct_pb2.Value:
    """A JSON value as a ``google.protobuf.Value``."""
    return struct({"v": value}).fields["v"]


def from_value(value: struct_pb2.Value) -> Any:
    """A ``google.protobuf.Value`` as JSON, whole numbers as ints (``3``, not ``3.0``), as Structs read."""
    holder = struct_pb2.Struct()
    holder.fields["v"].CopyFrom(value)
    return struct_to_dict(holder).get("v")


def _optional(message: Any, field: str) -> Any:
    """A proto3 ``optional`` field: None when unset, so unknown never reads as 0."""
    return getattr(message, field) if message.HasField(field) else None


# ---------------------------------------------------------------- requests


class RunMetricsRead(BaseModel):
    """What a run did, as the run service's statistics tell it; null: not known."""

    run_id: str
    status: str = Field(description="The run's status as the run API writes it: COMPLETED, FAILED, CANCELLED")
    candidates: int
    scenarios: int
    evaluations: int
    failed_evaluations: int
    coverage: float = Field(description="evaluations / (candidates × scenarios)")
    hard_constraint_violations: int
    duration_seconds: float | None
    input_tokens: int
    output_tokens: int
    usd: float
    llm_calls: int
    unpriced_calls: int
    error_summary: str
    top_i: float | None
    top_p: float | None
    top_r: float | None
    top_candidate_id: str
    failure_reason: str = Field(description="Why the run failed or was cancelled; empty when it completed")

    @classmethod
    def from_proto(cls, m: pb.RunMetrics) -> RunMetricsRead:
        return cls(
            run_id=m.run_id,
            status=m.status,
            candidates=m.candidates,
            scenarios=m.scenarios,
            evaluations=m.evaluations,
            failed_evaluations=m.failed_evaluations,
            coverage=m.coverage,
            hard_constraint_violations=m.hard_constraint_violations,
            duration_seconds=_optional(m, "duration_seconds"),
            input_tokens=m.input_tokens,
            output_tokens=m.output_tokens,
            usd=m.usd,
            llm_calls=m.llm_calls,
            unpriced_calls=m.unpriced_calls,
            error_summary=m.error_summary,
            top_i=_optional(m, "top_i"),
            top_p=_optional(m, "top_p"),
            top_r=_optional(m, "top_r"),
            top_candidate_id=m.top_candidate_id,
            failure_reason=m.failure_reason,
        )


class RunMetricsImport(RunMetricsRead):
    """Reference metrics in an import, as a snapshot read gives them."""

    model_config = Body.model_config
    # Within what the snapshot service's message carries (a count past it is refused, not a crash).
    candidates: Int32
    scenarios: Int32
    evaluations: Int32
    failed_evaluations: Int32
    hard_constraint_violations: Int32
    input_tokens: Int64
    output_tokens: Int64
    llm_calls: Int64
    unpriced_calls: Int64
    run_id: OptionalId = ""
    status: str = Field(default="", max_length=50, description=RunMetricsRead.model_fields["status"].description)
    error_summary: str = Field(default="", max_length=MAX_REASON)
    top_candidate_id: OptionalId = ""
    failure_reason: str = Field(default="", max_length=MAX_REASON)

    def to_proto(self) -> pb.RunMetrics:
        return pb.RunMetrics(**self.model_dump(exclude_none=True))


class InvariantBody(Body):
    """seed 000's invariant; the snapshot service checks type and value, naming the field at fault."""

    type: str = Field(max_length=100, description=f"One of: {INVARIANT_TYPES}")
    value: Any = Field(default=None, description="What the type compares with; for custom, the CEL expression")
    description: str = Field(default="", max_length=1_000)

    def to_proto(self) -> pb.Invariant:
        return pb.Invariant(type=self.type, value=to_value(self.value), description=self.description)

    @classmethod
    def from_proto(cls, i: pb.Invariant) -> InvariantBody:
        return cls(type=i.type, value=from_value(i.value), description=i.description)


class SnapshotCreate(Body):
    """From a project (its current state), from one of its runs (whose metrics become the reference),
    from an existing snapshot (``parent_snapshot_id``: a new snapshot with new tags or invariants), or
    imported (``snapshot_data``, as ``GET /api/snapshots/{id}`` or ``crucible snapshot export`` gives it)."""

    name: str = Field(
        default="",
        max_length=MAX_NAME,
        description="Unique. Required, except for a snapshot of a run (run_id): then its project's title, "
        "the run's short id and how it ended (` (2)`, ` (3)`… after it when the run has one already)",
    )
    project_id: OptionalId = Field(
        default="", description="Required unless parent_snapshot_id or snapshot_data is given"
    )
    run_id: OptionalId = Field(default="", description="Its configuration and metrics become the snapshot's reference")
    description: str = Field(default="", max_length=MAX_DESCRIPTION)
    tags: list[Tag] = Field(default_factory=list)
    invariants: list[InvariantBody] = Field(
        default_factory=list, description="From a parent: the ones given replace the parent's; none keeps them"
    )
    parent_snapshot_id: OptionalId = ""
    chat_context_messages: Int32 = Field(
        default=0, description="How many of the setup chat's last messages to keep (0: the default, 10)"
    )
    snapshot_data: dict[str, Any] | None = Field(
        default=None,
        description="An import: the data of any known version (migrated and checked); "
        "project_id, run_id and parent_snapshot_id must then be empty",
    )
    reference_metrics: RunMetricsImport | None = Field(
        default=None, description="With snapshot_data only: the source run's metrics, the reference of suites"
    )

    def to_proto(self) -> pb.CreateSnapshotRequest:
        request = pb.CreateSnapshotRequest(
            project_id=self.project_id,
            run_id=self.run_id,
            name=self.name,
            description=self.description,
            tags=self.tags,
            invariants=[i.to_proto() for i in self.invariants],
            parent_snapshot_id=self.parent_snapshot_id,
            chat_context_messages=self.chat_context_messages,
        )
        if self.snapshot_data is not None:
            request.snapshot_data.CopyFrom(struct(self.snapshot_data))
        if self.reference_metrics is not None:
            request.reference_metrics.CopyFrom(self.reference_metrics.to_proto())
        return request


class RunSnapshotCreate(Body):
    """Snapshot a run in one call: every field defaults from the run."""

    name: str = Field(
        default="", max_length=MAX_NAME, description="Default: the project's title, the run's short id and how it ended"
    )
    description: str = Field(
        default="", max_length=MAX_DESCRIPTION, description="Default: the run's mode, parameters and failure"
    )
    tags: list[Tag] = Field(default_factory=list, description='Added to "failure" when the run failed')
    invariants: list[InvariantBody] = Field(default_factory=list)
    chat_context_messages: Int32 = 0


class ReplayOptionsBody(Body):
    phases: ReplayPhases = Field(default="all", description="all (= full), design, or evaluate")
    num_candidates: Int32 | None = Field(default=None, description="Override the snapshot's run configuration")
    num_scenarios: Int32 | None = None
    replay_mode: ReplayMode = Field(
        default="live", description="live calls the models; recorded answers from the source run's calls, at $0"
    )

    def replay_options(self, *, reuse_project: bool = False) -> pb.ReplayOptions:
        options = pb.ReplayOptions(
            phases=REPLAY_PHASES.number(self.phases),
            reuse_project=reuse_project,
            replay_mode=REPLAY_MODE.number(self.replay_mode),
        )
        # Absent stays absent: the service tells "no override" from 0.
        if self.num_candidates is not None:
            options.num_candidates = self.num_candidates
        if self.num_scenarios is not None:
            options.num_scenarios = self.num_scenarios
        return options


class SnapshotReplay(ReplayOptionsBody):
    reuse_project: bool = Field(default=False, description="Restore into the source project, not a new one")
    wait: bool = Field(default=True, description="Answer once the run has ended, with its invariants checked")
    ui_trigger_id: str = Field(
        default="",
        max_length=MAX_TRIGGER_ID,
        description="The explicit action's id: one replay per id. Default: a new one per request",
    )


class SnapshotTestOptions(ReplayOptionsBody):
    """The seed's options, and the contract's: concurrency, recorded replay, repetitions."""

    max_snapshots: Int32 = Field(default=0, description="0: every snapshot chosen")
    stop_on_first_failure: bool = False
    cost_limit_usd: FiniteFloat | None = Field(
        default=None,
        description="A replay that would cross it is skipped: each replay in flight holds its estimate times "
        "the service's margin (CRUCIBLE_SNAPSHOT_COST_MARGIN, 1.25); null: no limit",
    )
    concurrency: Int32 = Field(default=0, description="Replays in flight at once (0: the service's default)")
    repetitions: Int32 = Field(default=1, description="Replays of each snapshot; invariants get a pass rate")
    min_pass_rate: FiniteFloat | None = Field(
        default=None, description="A snapshot passes when each invariant holds in this share of repetitions (1.0)"
    )

    def to_proto(self) -> pb.TestOptions:
        replay = self.replay_options()
        options = pb.TestOptions(
            max_snapshots=self.max_snapshots,
            phases=replay.phases,
            stop_on_first_failure=self.stop_on_first_failure,
            concurrency=self.concurrency,
            replay_mode=replay.replay_mode,
            repetitions=self.repetitions,
        )
        for field in ("num_candidates", "num_scenarios"):
            if replay.HasField(field):
                setattr(options, field, getattr(replay, field))
        if self.cost_limit_usd is not None:
            options.cost_limit_usd = self.cost_limit_usd
        if self.min_pass_rate is not None:
            options.min_pass_rate = self.min_pass_rate
        return options

    @classmethod
    def from_proto(cls, o: pb.TestOptions) -> SnapshotTestOptions:
        return cls(
            max_snapshots=o.max_snapshots,
            # The service's defaults, for a report that left them unset.
            phases=REPLAY_PHASES.optional(o.phases) or "all",
            num_candidates=_optional(o, "num_candidates"),
            num_scenarios=_optional(o, "num_scenarios"),
            stop_on_first_failure=o.stop_on_first_failure,
            cost_limit_usd=_optional(o, "cost_limit_usd"),
            concurrency=o.concurrency,
            replay_mode=REPLAY_MODE.optional(o.replay_mode) or "live",
            repetitions=o.repetitions or 1,
            min_pass_rate=_optional(o, "min_pass_rate"),
        )


class SnapshotTestRun(Body):
    """The seed's body: ``{snapshot_ids | null, options, wait}``."""

    snapshot_ids: list[Id] | None = Field(default=None, description="null: every snapshot")
    options: SnapshotTestOptions = Field(default_factory=SnapshotTestOptions)
    wait: bool = Field(default=True, description="Answer the report when done; false: 202 with the report id at once")
    ui_trigger_id: str = Field(
        default="",
        max_length=MAX_TRIGGER_ID,
        description="The explicit action's id: the same id twice is the same suite. Default: new",
    )

    def to_proto(self, ui_trigger_id: str) -> pb.RunSnapshotTestsRequest:
        return pb.RunSnapshotTestsRequest(
            snapshot_ids=self.snapshot_ids or [],
            all=self.snapshot_ids is None,
            options=self.options.to_proto(),
            ui_trigger_id=ui_trigger_id,
        )


# ---------------------------------------------------------------- snapshots


class InvariantResultRead(BaseModel):
    type: str
    description: str
    status: ResultStatus = Field(description="passed, failed, or error (a custom expression that does not evaluate)")
    expected: Any
    actual: Any = Field(description="With repetitions: the value of each repetition, as a list")
    pass_rate: float = Field(description="The share of repetitions in which it held")
    message: str

    @classmethod
    def from_proto(cls, r: pb.InvariantResult) -> InvariantResultRead:
        return cls(
            type=r.type,
            description=r.description,
            status=RESULT_STATUS.name(r.status),
            expected=from_value(r.expected),
            actual=from_value(r.actual),
            pass_rate=r.pass_rate,
            message=r.message,
        )


class SnapshotRead(BaseModel):
    id: str
    name: str
    description: str
    tags: list[str]
    project_id: str
    run_id: str = Field(description="The source run, when made from one")
    snapshot_data: dict[str, Any] | None = Field(
        description="Full copies: {version, problem_spec, world_model, run_config, chat_context}; null in lists"
    )
    reference_metrics: RunMetricsRead | None = Field(description="The source run's metrics; null without a run")
    invariants: list[InvariantBody]
    reference_results: list[InvariantResultRead] = Field(
        description="Each invariant checked against reference_metrics, as a replay's are: one the source run did "
        "not keep fails on every replay that behaves like it. Empty without a reference"
    )
    version: str = Field(description="The schema version of snapshot_data")
    parent_id: str = Field(description="The snapshot this one was made from, if any")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_proto(cls, s: pb.Snapshot) -> SnapshotRead:
        return cls(
            id=s.id,
            name=s.name,
            description=s.description,
            tags=list(s.tags),
            project_id=s.project_id,
            run_id=s.run_id,
            snapshot_data=struct_to_dict(s.snapshot_data) if s.HasField("snapshot_data") else None,
            reference_metrics=RunMetricsRead.from_proto(s.reference_metrics)
            if s.HasField("reference_metrics")
            else None,
            invariants=[InvariantBody.from_proto(i) for i in s.invariants],
            reference_results=[InvariantResultRead.from_proto(r) for r in s.reference_results],
            version=s.version,
            parent_id=s.parent_id,
            created_at=to_datetime(s.create_time),
            updated_at=to_datetime(s.update_time),
        )


class SnapshotList(BaseModel):
    snapshots: list[SnapshotRead] = Field(description="Newest first, without snapshot_data")
    next_page_token: str


# ---------------------------------------------------------------- replays and reports


class ReplayResult(BaseModel):
    project_id: str
    run_id: str
    status: str = Field(description="The run's status as the run API writes it (RUNNING unless waited for)")
    metrics: RunMetricsRead | None = Field(description="When waited for: the replay's metrics")
    invariants: list[InvariantResultRead] = Field(description="When waited for: each invariant checked")

    @classmethod
    def from_proto(cls, r: pb.ReplaySnapshotResponse) -> ReplayResult:
        return cls(
            project_id=r.project_id,
            run_id=r.run_id,
            status=r.status,
            metrics=RunMetricsRead.from_proto(r.metrics) if r.HasField("metrics") else None,
            invariants=[InvariantResultRead.from_proto(i) for i in r.invariants],
        )


class MetricDeltaRead(BaseModel):
    baseline: float | None
    replay: float | None = Field(description="With repetitions: the mean")
    delta: float | None
    stdev: float | None
    ci_low: float | None = Field(description="With repetitions: the 95 % confidence interval of the mean")
    ci_high: float | None
    flagged: bool = Field(description="The baseline lies outside the interval (without repetitions: it differs)")

    @classmethod
    def from_proto(cls, d: pb.MetricDelta) -> MetricDeltaRead:
        return cls(
            baseline=_optional(d, "baseline"),
            replay=_optional(d, "replay"),
            delta=_optional(d, "delta"),
            stdev=_optional(d, "stdev"),
            ci_low=_optional(d, "ci_low"),
            ci_high=_optional(d, "ci_high"),
            flagged=d.flagged,
        )


class SnapshotTestResultRead(BaseModel):
    snapshot_id: str
    snapshot_name: str
    status: ResultStatus = Field(description="passed, failed, skipped (see reason), or error (the harness's)")
    replay_run_id: str = Field(description="The first repetition's run")
    replay_run_ids: list[str]
    invariants: list[InvariantResultRead]
    metrics_delta: dict[str, MetricDeltaRead]
    cost_usd: float
    reason: str = Field(description="For skipped or error: why")
    repetitions: int

    @classmethod
    def from_proto(cls, r: pb.SnapshotTestResult) -> SnapshotTestResultRead:
        return cls(
            snapshot_id=r.snapshot_id,
            snapshot_name=r.snapshot_name,
            status=RESULT_STATUS.name(r.status),
            replay_run_id=r.replay_run_id,
            replay_run_ids=list(r.replay_run_ids),
            invariants=[InvariantResultRead.from_proto(i) for i in r.invariants],
            # Sorted: the same report reads the same twice (a proto map has no order).
            metrics_delta={k: MetricDeltaRead.from_proto(r.metrics_delta[k]) for k in sorted(r.metrics_delta)},
            cost_usd=r.cost_usd,
            reason=r.reason,
            repetitions=r.repetitions,
        )


class ReportSummary(BaseModel):
    total: int
    passed: int
    failed: int
    skipped: int
    errors: int = Field(description="Snapshots the harness could not replay: not regressions")


class ReportRead(BaseModel):
    id: str
    status: ReportStatus = Field(description="running, completed, or failed (the harness itself; see error)")
    summary: ReportSummary
    results: list[SnapshotTestResultRead] = Field(description="In the order the snapshots were chosen")
    total_cost_usd: float
    options: SnapshotTestOptions
    snapshot_ids: list[str]
    error: str
    created_at: datetime
    ended_at: datetime | None
    snapshot_test_id: str = Field(description="The correlation id of the suite's model calls (agent usage)")

    @classmethod
    def from_proto(cls, r: pb.TestReport) -> ReportRead:
        s = r.summary
        return cls(
            id=r.id,
            status=REPORT_STATUS.name(r.status),
            summary=ReportSummary(total=s.total, passed=s.passed, failed=s.failed, skipped=s.skipped, errors=s.errors),
            results=[SnapshotTestResultRead.from_proto(x) for x in r.results],
            total_cost_usd=r.total_cost_usd,
            options=SnapshotTestOptions.from_proto(r.options),
            snapshot_ids=list(r.snapshot_ids),
            error=r.error,
            created_at=to_datetime(r.create_time),
            ended_at=to_datetime(r.end_time) if r.HasField("end_time") else None,
            snapshot_test_id=r.snapshot_test_id,
        )


class ReportList(BaseModel):
    reports: list[ReportRead] = Field(description="Newest first")
    next_page_token: str


class ReportStarted(BaseModel):
    """A suite that goes on in the service: follow it on the WebSocket, or read its report later."""

    report_id: str
    snapshot_ids: list[str] = Field(description="The snapshots chosen, in order")
    repetitions: int = Field(description="Each snapshot's replays: the suite makes snapshots × repetitions")

    @classmethod
    def from_proto(cls, s: pb.TestReportStarted) -> ReportStarted:
        return cls(report_id=s.report_id, snapshot_ids=list(s.snapshot_ids), repetitions=s.repetitions)


class ReplayProgressRead(BaseModel):
    """One of a suite's replays moved on: a repetition of a snapshot, with its run once created."""

    snapshot_id: str
    snapshot_name: str = Field(description="Empty when the snapshot has been deleted since")
    repetition: int = Field(description="1-based")
    state: Annotated[str, REPLAY_STATE] = Field(
        description="running (its run is executing), ended, or skipped (never started: the cost limit, "
        "or the suite stopped)"
    )
    run_id: str = Field(description="Empty until its run is created")

    @classmethod
    def from_proto(cls, p: pb.ReplayProgress) -> ReplayProgressRead:
        return cls(
            snapshot_id=p.snapshot_id,
            snapshot_name=p.snapshot_name,
            repetition=p.repetition,
            state=REPLAY_STATE.name(p.state),
            run_id=p.run_id,
        )


# ---------------------------------------------------------------- the WebSocket


class SuiteEventJson(TypedDict, total=False):
    """One WebSocket message: ``started`` (report_id, snapshot_ids, repetitions), ``replay`` (one
    replay's move), ``result`` (one snapshot's, as it finishes) or ``report`` (the last); ``error``
    (a problem body) when the stream fails."""

    type: Literal["started", "replay", "result", "report", "error"]
    report_id: str
    snapshot_ids: list[str]
    repetitions: int
    replay: dict[str, Any]
    result: dict[str, Any]
    report: dict[str, Any]
    problem: dict[str, Any]


def suite_event_json(event: pb.WatchTestReportResponse | pb.RunSnapshotTestsResponse) -> SuiteEventJson:
    kind = event.WhichOneof("event")
    if kind == "started":
        started = ReportStarted.from_proto(event.started)
        return {
            "type": "started",
            "report_id": started.report_id,
            "snapshot_ids": started.snapshot_ids,
            "repetitions": started.repetitions,
        }
    if kind == "replay":
        return {"type": "replay", "replay": ReplayProgressRead.from_proto(event.replay).model_dump(mode="json")}
    if kind == "result":
        return {"type": "result", "result": SnapshotTestResultRead.from_proto(event.result).model_dump(mode="json")}
    if kind == "report":
        return {"type": "report", "report": ReportRead.from_proto(event.report).model_dump(mode="json")}
    raise ValueError(f"a suite event with no event set: {event}")
