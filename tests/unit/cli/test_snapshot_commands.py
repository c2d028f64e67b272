"""``crucible snapshot …`` against the in-process gateway over the fake snapshot service."""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.console import Console
from rich.progress import Progress, TaskID
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from typer.testing import CliRunner, Result

from crucible.run.v1 import run_service_pb2 as run_pb
from crucible.snapshot.v1 import snapshot_service_pb2 as snap_pb
from crucible_cli import output, snapshots
from crucible_cli.api_client import ApiError
from crucible_cli.main import app
from crucible_common.errors import NotFound
from crucible_common.protobuf import struct_to_dict
from crucible_gateway.schemas.snapshots import ReportRead
from tests.unit.cli.conftest import GatewayClient
from tests.unit.cli.test_run_commands import DroppingSocket
from tests.unit.gateway.fakes import (
    OTHER_SNAPSHOT_ID,
    PROJECT_ID,
    REPLAY_RUN_ID,
    REPORT_ID,
    RUN_ID,
    SNAPSHOT_ID,
    Fakes,
    FakeSuite,
    invariant_result,
    rpc_error,
    run,
    snapshot,
    suite_events,
    suite_report,
    suite_result,
    watch_events,
)

EXAMPLES = Path(__file__).parents[3] / "docs" / "examples" / "snapshots.json"
HEAVY = "Heavy constraints"


@pytest.fixture
def gateway(rest_gateway: TestClient, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """The suite's WebSocket through the same in-process gateway; import's own client too."""

    def events(report_id: str) -> Iterator[dict[str, Any]]:
        with rest_gateway.websocket_connect(f"/api/ws/snapshot-reports/{report_id}") as ws:
            while True:
                try:
                    yield ws.receive_json()
                except WebSocketDisconnect:
                    return

    monkeypatch.setattr(snapshots, "_suite_events", events)
    monkeypatch.setattr(snapshots, "ApiClient", lambda: GatewayClient(rest_gateway))
    return rest_gateway


def crucible(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, ["snapshot", *args], input=stdin)


def requests_of(fakes: Fakes, method: str) -> list[Any]:
    return [c.request for c in fakes.snapshots.calls if c.method == method]


def suite(fakes: Fakes, *results: snap_pb.SnapshotTestResult, status: int = snap_pb.REPORT_STATUS_COMPLETED) -> None:
    """The next suite the service runs: it starts, then produces ``results`` and their report."""
    report = suite_report(*results, status=status)  # type: ignore[arg-type]
    fakes.snapshots.suites.append(FakeSuite(events=suite_events(report)[:1], hold=True))
    fakes.snapshots.watch_events = watch_events(report)
    fakes.snapshots.answer("GetTestReport", snap_pb.GetTestReportResponse(report=report))


# ---------------------------------------------------------------- create, list, show, delete


def test_create_sends_the_seeds_flags_and_the_invariants_file(
    fakes: Fakes, gateway: TestClient, tmp_path: Path
) -> None:
    path = tmp_path / "invariants.json"
    path.write_text(json.dumps([{"type": "min_candidates", "value": 3, "description": "three"}]))

    result = crucible(
        "create",
        "--project-id",
        PROJECT_ID,
        "--run-id",
        RUN_ID,
        "--name",
        "Grid baseline",
        "--description",
        "a completed run",
        "--tags",
        "grid, baseline",
        "--invariants-file",
        str(path),
    )

    assert result.exit_code == 0, result.output
    assert SNAPSHOT_ID in result.stdout
    (request,) = requests_of(fakes, "CreateSnapshot")
    assert (request.project_id, request.run_id, request.name) == (PROJECT_ID, RUN_ID, "Grid baseline")
    assert list(request.tags) == ["grid", "baseline"]
    assert [(i.type, i.value.number_value) for i in request.invariants] == [("min_candidates", 3.0)]


def test_create_from_a_run_is_one_call(fakes: Fakes, gateway: TestClient) -> None:
    fakes.runs.answer("GetRun", run_pb.GetRunResponse(run=run(run_pb.RUN_STATUS_FAILED)))

    result = crucible("create", "--from-run", RUN_ID, "--tags", "nightly", "--format", "json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["id"] == SNAPSHOT_ID
    (request,) = requests_of(fakes, "CreateSnapshot")
    assert (request.project_id, list(request.tags)) == (PROJECT_ID, ["failure", "nightly"])


def test_create_from_a_snapshot(fakes: Fakes, gateway: TestClient) -> None:
    result = crucible("create", "--from-snapshot", SNAPSHOT_ID, "--name", "stricter")

    assert result.exit_code == 0, result.output
    (request,) = requests_of(fakes, "CreateSnapshot")
    assert (request.parent_snapshot_id, request.name) == (SNAPSHOT_ID, "stricter")


@pytest.mark.parametrize(
    "args",
    [
        ("--name", "x"),
        ("--project-id", PROJECT_ID),
        ("--project-id", PROJECT_ID, "--name", "x", "--invariants-file", "/nonexistent/invariants.json"),
    ],
)
def test_create_with_missing_or_bad_input_exits_2_without_a_call(
    fakes: Fakes, gateway: TestClient, args: tuple[str, ...]
) -> None:
    result = crucible("create", *args)

    assert result.exit_code == 2, result.output
    assert fakes.calls() == []


def test_an_invariants_file_that_holds_no_list_exits_2(fakes: Fakes, gateway: TestClient, tmp_path: Path) -> None:
    path = tmp_path / "invariants.json"
    path.write_text('{"type": "min_candidates"}')

    result = crucible("create", "--project-id", PROJECT_ID, "--name", "x", "--invariants-file", str(path))

    assert result.exit_code == 2
    assert "no list of invariants" in result.stderr


def test_list_filters_by_tags_and_pages_through(fakes: Fakes, gateway: TestClient) -> None:
    fakes.snapshots.answer(
        "ListSnapshots", snap_pb.ListSnapshotsResponse(snapshots=[snapshot(data=False)], next_page_token="")
    )

    result = crucible("list", "--tags", "grid,baseline", "--project-id", PROJECT_ID)

    assert result.exit_code == 0, result.output
    assert SNAPSHOT_ID in result.stdout
    assert "Grid baseline" in result.stdout
    (request,) = requests_of(fakes, "ListSnapshots")
    assert (list(request.tags), request.project_id, request.page_size) == (["grid", "baseline"], PROJECT_ID, 100)


def test_show_reads_the_reference_and_the_invariants(fakes: Fakes, gateway: TestClient) -> None:
    result = crucible("show", SNAPSHOT_ID)

    assert result.exit_code == 0, result.output
    assert "COMPLETED: 3 candidates × 5 scenarios, 15 evaluations" in result.stdout
    assert "min_candidates 3" in result.stdout
    assert "1 constraint, 1 goal" in result.stdout
    assert "on the reference run: 2 of 2 hold" in result.stdout


def test_show_names_an_invariant_the_reference_run_did_not_keep(fakes: Fakes, gateway: TestClient) -> None:
    shown = snapshot()
    shown.reference_results[1].CopyFrom(
        invariant_result("run_status", "COMPLETED", "FAILED", snap_pb.RESULT_STATUS_FAILED)
    )
    fakes.snapshots.responses["GetSnapshot"] = snap_pb.GetSnapshotResponse(snapshot=shown)

    result = crucible("show", SNAPSHOT_ID)

    assert result.exit_code == 0, result.output
    assert "on the reference run: 1 of 2 hold" in result.stdout
    assert 'run_status  expected "COMPLETED", actual "FAILED"' in result.stdout
    # Only what did not hold is listed under it.
    assert "min_candidates  expected" not in result.stdout


def test_delete_asks_first_and_a_no_deletes_nothing(fakes: Fakes, gateway: TestClient) -> None:
    refused = crucible("delete", SNAPSHOT_ID, stdin="n\n")
    accepted = crucible("delete", SNAPSHOT_ID, stdin="y\n")

    assert refused.exit_code == 1
    assert accepted.exit_code == 0, accepted.output
    assert requests_of(fakes, "DeleteSnapshot") == [
        snap_pb.DeleteSnapshotRequest(snapshot_id=SNAPSHOT_ID, confirm=True)
    ]


def test_delete_confirm_asks_nothing(fakes: Fakes, gateway: TestClient) -> None:
    result = crucible("delete", SNAPSHOT_ID, "--confirm")

    assert result.exit_code == 0, result.output
    assert f"deleted {SNAPSHOT_ID}" in result.stdout


# ---------------------------------------------------------------- replay


def test_replay_forwards_the_flags_and_exits_0_when_the_invariants_hold(fakes: Fakes, gateway: TestClient) -> None:
    result = crucible(
        "replay",
        SNAPSHOT_ID,
        "--phases",
        "design",
        "--num-candidates",
        "2",
        "--reuse-project",
        "--replay-mode",
        "recorded",
    )

    assert result.exit_code == 0, result.output
    assert f"run {REPLAY_RUN_ID}" in result.stdout
    (request,) = requests_of(fakes, "ReplaySnapshot")
    assert request.ui_trigger_id.startswith("cli-")
    assert request.wait
    assert request.options == snap_pb.ReplayOptions(
        phases=snap_pb.REPLAY_PHASES_DESIGN,
        num_candidates=2,
        reuse_project=True,
        replay_mode=snap_pb.REPLAY_MODE_RECORDED,
    )


def test_a_replay_that_breaks_an_invariant_exits_1(fakes: Fakes, gateway: TestClient) -> None:
    broken = invariant_result("run_status", "COMPLETED", "FAILED", snap_pb.RESULT_STATUS_FAILED)
    fakes.snapshots.answer(
        "ReplaySnapshot",
        snap_pb.ReplaySnapshotResponse(
            project_id=PROJECT_ID, run_id=REPLAY_RUN_ID, status="FAILED", invariants=[broken]
        ),
    )

    result = crucible("replay", SNAPSHOT_ID)

    assert result.exit_code == 1
    assert 'expected "COMPLETED", actual "FAILED"' in result.stdout


# ---------------------------------------------------------------- test: exit codes, JSON, JUnit


def test_a_passing_suite_follows_progress_and_exits_0(fakes: Fakes, gateway: TestClient) -> None:
    suite(fakes, suite_result(), suite_result(snapshot_id=OTHER_SNAPSHOT_ID, name=HEAVY))

    result = crucible(
        "test", "--all", "--max-snapshots", "10", "--phases", "full", "--num-candidates", "3", "--num-scenarios", "5"
    )

    assert result.exit_code == 0, result.output
    assert f"suite {REPORT_ID}: 2 snapshots" in result.stdout
    assert "✔ Grid baseline passed" in result.stdout
    assert f"✔ {HEAVY} passed" in result.stdout
    assert "completed: 2 passed, 0 failed, 0 skipped of 2" in result.stdout
    (request,) = requests_of(fakes, "RunSnapshotTests")
    assert request.all
    assert uuid.UUID(request.ui_trigger_id.removeprefix("cli-"))
    assert request.options == snap_pb.TestOptions(
        max_snapshots=10,
        phases=snap_pb.REPLAY_PHASES_FULL,
        num_candidates=3,
        num_scenarios=5,
        replay_mode=snap_pb.REPLAY_MODE_LIVE,
        repetitions=1,
    )
    # The suite was started, not waited on: the CLI followed it on the WebSocket.
    assert fakes.snapshots.streams[0].cancelled


def test_a_failed_invariant_exits_1_and_names_expected_and_actual(fakes: Fakes, gateway: TestClient) -> None:
    suite(fakes, suite_result(), suite_result(snap_pb.RESULT_STATUS_FAILED, OTHER_SNAPSHOT_ID, HEAVY))

    result = crucible("test", "--snapshot-ids", f"{SNAPSHOT_ID},{OTHER_SNAPSHOT_ID}", "--cost-limit-usd", "2")

    assert result.exit_code == 1, result.output
    assert f"✘ {HEAVY} failed" in result.stdout
    assert 'run_status  expected "COMPLETED", actual "FAILED"' in result.stdout
    assert "Δ duration_seconds: 42.5 → 40 (-2.5)" in result.stdout
    (request,) = requests_of(fakes, "RunSnapshotTests")
    assert (list(request.snapshot_ids), request.all) == ([SNAPSHOT_ID, OTHER_SNAPSHOT_ID], False)
    assert request.options.cost_limit_usd == 2.0


@pytest.mark.parametrize(
    ("results", "status"),
    [
        ((suite_result(),), snap_pb.REPORT_STATUS_FAILED),
        ((suite_result(), suite_result(snap_pb.RESULT_STATUS_ERROR)), snap_pb.REPORT_STATUS_COMPLETED),
    ],
)
def test_a_harness_that_could_not_judge_exits_2(
    fakes: Fakes, gateway: TestClient, results: tuple[snap_pb.SnapshotTestResult, ...], status: int
) -> None:
    suite(fakes, *results, status=status)

    assert crucible("test", "--all").exit_code == 2


def test_skipped_snapshots_alone_do_not_fail_the_suite(fakes: Fakes, gateway: TestClient) -> None:
    suite(fakes, suite_result(), suite_result(snap_pb.RESULT_STATUS_SKIPPED, OTHER_SNAPSHOT_ID, HEAVY))

    result = crucible("test", "--all")

    assert result.exit_code == 0, result.output
    assert "cost limit: the estimate $0.40 would cross $0.50" in result.stdout


def test_a_suite_by_tags_runs_the_snapshots_that_have_them(fakes: Fakes, gateway: TestClient) -> None:
    suite(fakes, suite_result())

    result = crucible("test", "--tags", "grid,baseline")

    assert result.exit_code == 0, result.output
    (listed,) = requests_of(fakes, "ListSnapshots")
    assert list(listed.tags) == ["grid", "baseline"]
    (request,) = requests_of(fakes, "RunSnapshotTests")
    assert (list(request.snapshot_ids), request.all) == ([SNAPSHOT_ID], False)


def test_tags_that_match_nothing_exit_2(fakes: Fakes, gateway: TestClient) -> None:
    fakes.snapshots.answer("ListSnapshots", snap_pb.ListSnapshotsResponse())

    result = crucible("test", "--tags", "nothing")

    assert result.exit_code == 2
    assert requests_of(fakes, "RunSnapshotTests") == []


@pytest.mark.parametrize("args", [(), ("--all", "--snapshot-ids", SNAPSHOT_ID), ("--all", "--tags", "grid")])
def test_test_needs_ids_or_all_exclusively(fakes: Fakes, gateway: TestClient, args: tuple[str, ...]) -> None:
    result = crucible("test", *args)

    assert result.exit_code == 2
    assert fakes.calls() == []


def test_a_suite_the_gateway_refuses_exits_2(fakes: Fakes, gateway: TestClient) -> None:
    fakes.snapshots.fail(
        "RunSnapshotTests",
        rpc_error(NotFound("snapshot x not found", reason="SNAPSHOT_NOT_FOUND"), "snapshot.crucible"),
    )

    result = crucible("test", "--snapshot-ids", OTHER_SNAPSHOT_ID)

    assert result.exit_code == 2
    assert "404 SNAPSHOT_NOT_FOUND" in result.stderr


def test_an_unreachable_gateway_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRUCIBLE_URL", "http://127.0.0.1:9")

    result = crucible("test", "--all")

    assert result.exit_code == 2
    assert "cannot reach the gateway" in result.stderr


def test_json_is_exactly_the_reports_json(fakes: Fakes, gateway: TestClient) -> None:
    suite(fakes, suite_result(), suite_result(snap_pb.RESULT_STATUS_FAILED, OTHER_SNAPSHOT_ID, HEAVY))

    result = crucible("test", "--all", "--format", "json")

    assert result.exit_code == 1
    assert json.loads(result.stdout) == gateway.get(f"/api/snapshot-reports/{REPORT_ID}").json()
    # The progress went to stderr: stdout is the report alone.
    assert "suite " in result.stderr


def test_junit_xml_has_a_case_per_snapshot_and_invariant(fakes: Fakes, gateway: TestClient, tmp_path: Path) -> None:
    suite(
        fakes,
        suite_result(),
        suite_result(snap_pb.RESULT_STATUS_FAILED, OTHER_SNAPSHOT_ID, HEAVY),
        suite_result(snap_pb.RESULT_STATUS_SKIPPED, str(uuid.uuid4()), "Failure mode"),
        suite_result(snap_pb.RESULT_STATUS_ERROR, str(uuid.uuid4()), "Unreadable"),
    )
    path = tmp_path / "snapshots.xml"

    result = crucible("test", "--all", "--junit-xml", str(path))

    assert result.exit_code == 1, result.output
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    (suite_element,) = root.findall("testsuite")
    cases = suite_element.findall("testcase")
    # Per snapshot a case; per invariant checked a case, classname'd by its snapshot.
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("crucible.snapshots", "Grid baseline"),
        ("crucible.snapshots.Grid baseline", "min_candidates"),
        ("crucible.snapshots.Grid baseline", "run_status"),
        ("crucible.snapshots", HEAVY),
        (f"crucible.snapshots.{HEAVY}", "min_candidates"),
        (f"crucible.snapshots.{HEAVY}", "run_status"),
        ("crucible.snapshots", "Failure mode"),
        ("crucible.snapshots", "Unreadable"),
    ]
    counts = {k: suite_element.get(k) for k in ("tests", "failures", "errors", "skipped")}
    assert counts == {"tests": "8", "failures": "2", "errors": "1", "skipped": "1"}
    assert {k: root.get(k) for k in counts} == counts
    failure = cases[5].find("failure")
    assert failure is not None
    assert failure.get("message") == 'expected "COMPLETED", actual "FAILED"'
    assert failure.get("type") == "run_status"
    snapshot_failure = cases[3].find("failure")
    assert snapshot_failure is not None
    assert snapshot_failure.get("message") == "invariants not kept: run_status"
    skipped = cases[6].find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "cost limit: the estimate $0.40 would cross $0.50"
    error = cases[7].find("error")
    assert error is not None
    assert error.get("message") == "the run service is unavailable"
    out = cases[3].find("system-out")
    assert out is not None
    assert "duration_seconds: baseline 42.5, replay 40, delta -2.5 FLAGGED" in (out.text or "")
    properties = {p.get("name"): p.get("value") for p in suite_element.iter("property")}
    assert properties["report_id"] == REPORT_ID
    for case in cases:
        float(case.get("time") or "x")


def test_custom_invariants_are_named_by_their_expression_in_junit() -> None:
    result = snap_pb.SnapshotTestResult(
        snapshot_id=SNAPSHOT_ID, snapshot_name="Grid", status=snap_pb.RESULT_STATUS_PASSED
    )
    result.invariants.extend(
        [invariant_result("custom", "coverage >= 0.9", True), invariant_result("custom", "coverage >= 0.9", True)]
    )
    report = ReportRead.from_proto(suite_report(result)).model_dump(mode="json")

    cases = snapshots.junit(report).findall("testsuite/testcase")

    assert [c.get("name") for c in cases] == ["Grid", "custom: coverage >= 0.9", "custom: coverage >= 0.9 #2"]


def test_a_harness_failure_is_a_junit_error_case(fakes: Fakes, gateway: TestClient, tmp_path: Path) -> None:
    suite(fakes, suite_result(), status=snap_pb.REPORT_STATUS_FAILED)
    path = tmp_path / "snapshots.xml"

    assert crucible("test", "--all", "--junit-xml", str(path)).exit_code == 2

    harness = ET.parse(path).getroot().find("testsuite/testcase[@name='harness']")
    assert harness is not None
    error = harness.find("error")
    assert error is not None
    assert error.get("message") == "the snapshot service lost its database"


def test_a_dropped_suite_stream_is_reopened_and_seen_results_are_not_counted_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = {"snapshot_id": SNAPSHOT_ID, "snapshot_name": "Grid", "status": "passed", "reason": ""}
    report = {"id": REPORT_ID, "status": "completed"}
    sockets = [
        DroppingSocket([{"type": "started"}, {"type": "result", "result": result}], drop=True),
        DroppingSocket([{"type": "result", "result": result}, {"type": "report", "report": report}], drop=False),
    ]
    monkeypatch.setattr(output, "connect", lambda url, additional_headers: sockets.pop(0))
    out = Console(record=True, width=100)

    assert snapshots._follow_suite(REPORT_ID, 1, out) == report
    assert out.export_text().count("✔ Grid passed") == 1


def _advances(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, float]]:
    """Each advance of a progress bar from now on: the bar's name and by how much."""
    advanced: list[tuple[str, float]] = []
    real_advance = Progress.advance

    def advance(self: Progress, task_id: TaskID, amount: float = 1) -> None:
        advanced.append((self.tasks[task_id].description, amount))
        real_advance(self, task_id, amount)

    monkeypatch.setattr(Progress, "advance", advance)
    return advanced


def test_with_repetitions_the_replays_have_a_bar_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    # Three replays of one snapshot: its result comes after the third; the replays' bar shows them
    # ending, each counted once though a reopened stream tells them again.
    def moved(repetition: int, state: str) -> dict[str, object]:
        replay = {"snapshot_id": SNAPSHOT_ID, "repetition": repetition, "state": state, "run_id": f"run-{repetition}"}
        return {"type": "replay", "replay": replay}

    result = {"snapshot_id": SNAPSHOT_ID, "snapshot_name": "Grid", "status": "passed", "reason": ""}
    started = {"type": "started", "report_id": REPORT_ID, "snapshot_ids": [SNAPSHOT_ID], "repetitions": 3}
    sockets = [
        DroppingSocket([started, moved(1, "running"), moved(1, "ended"), moved(2, "ended")], drop=True),
        DroppingSocket(
            [
                started,
                *(moved(1, "ended"), moved(2, "ended"), moved(3, "skipped")),
                {"type": "result", "result": result},
                {"type": "report", "report": {"id": REPORT_ID, "status": "completed"}},
            ],
            drop=False,
        ),
    ]
    monkeypatch.setattr(output, "connect", lambda url, additional_headers: sockets.pop(0))
    advanced = _advances(monkeypatch)
    out = Console(record=True, width=100)

    snapshots._follow_suite(REPORT_ID, 1, out)

    assert advanced == [("replays", 1), ("replays", 1), ("replays", 1), ("snapshots", 1)]


def test_a_snapshots_result_ends_its_replays_never_told_over(monkeypatch: pytest.MonkeyPatch) -> None:
    # Its second and third replays never ran (the suite stopped): its result completes the bar.
    result = {"snapshot_id": SNAPSHOT_ID, "snapshot_name": "Grid", "status": "passed", "reason": ""}
    frames: list[dict[str, Any]] = [
        {"type": "started", "report_id": REPORT_ID, "snapshot_ids": [SNAPSHOT_ID], "repetitions": 3},
        {"type": "replay", "replay": {"snapshot_id": SNAPSHOT_ID, "repetition": 1, "state": "ended", "run_id": "r"}},
        {"type": "result", "result": result},
        {"type": "report", "report": {"id": REPORT_ID, "status": "completed"}},
    ]
    monkeypatch.setattr(output, "connect", lambda url, additional_headers: DroppingSocket(frames, drop=False))
    advanced = _advances(monkeypatch)

    snapshots._follow_suite(REPORT_ID, 1, Console(record=True, width=100))

    assert advanced == [("replays", 1), ("snapshots", 1), ("replays", 2)]


def test_a_stream_that_keeps_dropping_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output, "connect", lambda url, additional_headers: DroppingSocket([], drop=True))

    with pytest.raises(typer.Exit) as ended:
        list(snapshots._suite_events(REPORT_ID))

    assert ended.value.exit_code == 2


# ---------------------------------------------------------------- export and import


def test_export_then_import_creates_nothing_twice(fakes: Fakes, gateway: TestClient, tmp_path: Path) -> None:
    path = tmp_path / "out.json"

    exported = crucible("export", str(path), "--tags", "grid")

    assert exported.exit_code == 0, exported.output
    written = json.loads(path.read_text())
    assert written["format"] == "crucible-snapshots"
    (entry,) = written["snapshots"]
    assert entry["snapshot_data"]["problem_spec"]["constraints"][0]["weight"] == 100
    assert entry["source"]["id"] == SNAPSHOT_ID
    # The list has no data: each snapshot was read whole.
    assert requests_of(fakes, "GetSnapshot") == [snap_pb.GetSnapshotRequest(snapshot_id=SNAPSHOT_ID)]

    # A snapshot of that name exists: reported, not made again.
    again = crucible("import", str(path), "--format", "json")

    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == [{"name": "Grid baseline", "status": "exists", "id": SNAPSHOT_ID, "detail": ""}]
    assert requests_of(fakes, "CreateSnapshot") == []
    assert fakes.spec.calls == []


def test_import_sends_each_example_with_its_data_to_the_snapshot_service(fakes: Fakes, gateway: TestClient) -> None:
    fakes.snapshots.answer("ListSnapshots", snap_pb.ListSnapshotsResponse())
    examples = json.loads(EXAMPLES.read_text())["snapshots"]

    result = crucible("import", str(EXAMPLES))

    assert result.exit_code == 0, result.output
    assert result.stdout.count("created") == 3
    creates = requests_of(fakes, "CreateSnapshot")
    assert [c.name for c in creates] == [e["name"] for e in examples]
    assert [len(c.invariants) for c in creates] == [len(e["invariants"]) for e in examples]
    # No project, no run: the data itself, run configuration included, is what the service stores.
    assert all(not c.project_id and not c.run_id and not c.parent_snapshot_id for c in creates)
    assert [struct_to_dict(c.snapshot_data) for c in creates] == [e["snapshot_data"] for e in examples]
    assert fakes.spec.calls == []


def test_import_keeps_the_reference_metrics_of_an_export(fakes: Fakes, gateway: TestClient, tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    assert crucible("export", str(path), "--tags", "grid").exit_code == 0
    fakes.snapshots.answer("ListSnapshots", snap_pb.ListSnapshotsResponse())

    result = crucible("import", str(path), "--format", "json")

    assert result.exit_code == 0, result.output
    (create,) = requests_of(fakes, "CreateSnapshot")
    assert create.HasField("reference_metrics")
    assert create.reference_metrics == snapshot().reference_metrics


def test_a_snapshot_the_service_refuses_is_reported_and_the_rest_go_on(
    fakes: Fakes, gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes.snapshots.answer("ListSnapshots", snap_pb.ListSnapshotsResponse())
    original = snapshots._import_one
    seen: list[str] = []

    def flaky(client: Any, entry: snapshots.ExportedSnapshot) -> dict[str, str]:
        seen.append(entry.name)
        if len(seen) == 2:
            raise ApiError("400 VALIDATION_FAILED: invariants[0].value: must be a number", status=400)
        return original(client, entry)

    monkeypatch.setattr(snapshots, "_import_one", flaky)

    result = crucible("import", str(EXAMPLES), "--format", "json")

    assert result.exit_code == 1
    assert [o["status"] for o in json.loads(result.stdout)] == ["created", "failed", "created"]


def test_a_file_that_is_no_snapshot_file_exits_2(fakes: Fakes, gateway: TestClient, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"format": "crucible-snapshots", "version": 1, "snapshots": [{"name": "x"}]}))

    result = crucible("import", str(path))

    assert result.exit_code == 2
    assert "snapshots[0].snapshot_data" in result.stderr
    assert fakes.calls() == []


@pytest.mark.parametrize("args", [(), ("--all", "--tags", "a")])
def test_export_needs_one_way_of_choosing(
    fakes: Fakes, gateway: TestClient, tmp_path: Path, args: tuple[str, ...]
) -> None:
    assert crucible("export", str(tmp_path / "x.json"), *args).exit_code == 2


def test_the_examples_invariants_are_ones_the_snapshot_service_accepts() -> None:
    """Checked with the service's own validation (types, values, CEL that compiles to a boolean)."""
    from crucible_snapshot.domain import invariants
    from crucible_snapshot.domain.model import Invariant

    for entry in json.loads(EXAMPLES.read_text())["snapshots"]:
        found = [Invariant(i["type"], i["value"], i["description"]) for i in entry["invariants"]]
        assert invariants.validate(found) == [], entry["name"]
