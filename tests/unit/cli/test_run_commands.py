"""``crucible run …`` against the in-process gateway over the fake run service."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from typer.testing import CliRunner, Result
from websockets.exceptions import ConnectionClosedError
from websockets.frames import Close

from crucible.run.v1 import run_service_pb2 as run_pb
from crucible_cli import output, runs
from crucible_cli.main import app
from crucible_common.errors import FailedPrecondition, NotFound, PreconditionViolation
from crucible_common.protobuf import struct
from tests.unit.cli.conftest import Gateway
from tests.unit.gateway.fakes import (
    AGENT_RUN_ID,
    CANDIDATE_ID,
    MESSAGE_ID,
    PROJECT_ID,
    RUN_ID,
    SESSION_ID,
    TRIGGER_ID,
    Fakes,
    preflight,
    rpc_error,
    run,
    run_event,
    run_lineage,
)


@pytest.fixture
def gateway(rest_gateway: TestClient, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    def events(run_id: str, after: int) -> Iterator[dict[str, Any]]:
        with rest_gateway.websocket_connect(f"/api/ws/runs/{run_id}?after={after}") as ws:
            while True:
                try:
                    yield ws.receive_json()
                except WebSocketDisconnect:
                    return

    monkeypatch.setattr(runs, "_events", events)
    return rest_gateway


def crucible(*args: str) -> Result:
    return CliRunner().invoke(app, ["run", *args])


def requests_of(fakes: Fakes, method: str) -> list[Any]:
    return [c.request for c in fakes.runs.calls if c.method == method]


def test_preflight_prints_each_blocker_in_words_and_exits_1(fakes: Fakes, gateway: TestClient) -> None:
    fakes.runs.answer("PreflightRun", preflight(ready=False))

    options = f"--mode seeded --candidates 4 --scenarios 2 --seed {CANDIDATE_ID} --seed {AGENT_RUN_ID} "
    options += f"--budget-usd 1.5 --budget-tokens 50000 --max-runtime 600 --recommended-message-id {MESSAGE_ID}"

    result = crucible("preflight", PROJECT_ID, *options.split())

    assert result.exit_code == 1, result.output
    assert "blocked: 2 blockers" in result.stdout
    assert "missing_world_model" in result.stdout
    assert "The project has no WorldModel yet: describe it." in result.stdout
    assert "validation_error (parameters.num_candidates)" in result.stdout
    assert "high_budget" in result.stdout
    assert "estimated cost unpriced, 22 calls, 120000 tokens" in result.stdout
    assert requests_of(fakes, "PreflightRun") == [
        run_pb.PreflightRunRequest(
            project_id=PROJECT_ID,
            mode=run_pb.RUN_MODE_SEEDED,
            parameters=run_pb.RunParameters(
                num_candidates=4,
                num_scenarios=2,
                seed_candidate_ids=[CANDIDATE_ID, AGENT_RUN_ID],
                budget_tokens=50_000,
                budget_usd=1.5,
                max_runtime_s=600,
            ),
            recommended_message_id=MESSAGE_ID,
        )
    ]


def test_a_ready_preflight_exits_0_and_sends_no_limits_unasked(fakes: Fakes, gateway: TestClient) -> None:
    result = crucible("preflight", PROJECT_ID, "--format", "json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ready"] is True
    (request,) = requests_of(fakes, "PreflightRun")
    assert request.parameters == run_pb.RunParameters()
    assert request.mode == run_pb.RUN_MODE_FULL_SEARCH


def test_seeds_given_whole_come_from_a_json_file(fakes: Fakes, gateway: TestClient, tmp_path: Path) -> None:
    seeds = tmp_path / "seeds.json"
    seeds.write_text(json.dumps([{"title": "Cable-stayed", "approach": "two pylons", "assumptions": ["soft bed"]}]))
    not_a_list = tmp_path / "one.json"
    not_a_list.write_text(json.dumps({"title": "Arch"}))

    made = crucible("create", PROJECT_ID, "--mode", "seeded", "--seed-file", str(seeds))
    wrong = crucible("create", PROJECT_ID, "--mode", "seeded", "--seed-file", str(not_a_list))
    missing = crucible("create", PROJECT_ID, "--mode", "seeded", "--seed-file", str(tmp_path / "none.json"))

    assert made.exit_code == 0, made.output
    (created,) = requests_of(fakes, "CreateRun")
    assert list(created.parameters.seed_candidates) == [
        run_pb.CandidateDraft(title="Cable-stayed", approach="two pylons", assumptions=["soft bed"])
    ]
    assert (wrong.exit_code, missing.exit_code) == (2, 2)
    assert "holds no list of seed candidates" in " ".join(wrong.stderr.split())
    # Said in typer's error box, whose border runs through the wrapped lines.
    assert "does not exist" in " ".join(missing.output.replace("│", " ").split())


def test_create_sends_a_fresh_uuid_trigger_from_the_cli(fakes: Fakes, gateway: TestClient) -> None:
    first = crucible("create", PROJECT_ID, "--candidates", "3", "--chat-session-id", SESSION_ID)
    second = crucible("create", PROJECT_ID, "--format", "json")

    assert (first.exit_code, second.exit_code) == (0, 0), first.output + second.output
    one, two = requests_of(fakes, "CreateRun")
    assert uuid.UUID(one.ui_trigger_id).version == 4
    assert one.ui_trigger_id != two.ui_trigger_id
    assert one == run_pb.CreateRunRequest(
        project_id=PROJECT_ID,
        mode=run_pb.RUN_MODE_FULL_SEARCH,
        parameters=run_pb.RunParameters(num_candidates=3),
        chat_session_id=SESSION_ID,
        ui_trigger_id=one.ui_trigger_id,
        ui_trigger_source=run_pb.TRIGGER_SOURCE_CLI_TOOL,
        ui_trigger_metadata=struct({"command": "run create"}),
    )
    # Nothing runs: creating is not executing.
    assert requests_of(fakes, "ExecuteRun") == []
    assert RUN_ID in first.stdout
    assert json.loads(second.stdout)["status"] == "CREATED"


def test_results_as_json_are_the_api_json(fakes: Fakes, gateway: TestClient) -> None:
    result = crucible("results", RUN_ID, "--format", "json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == gateway.get(f"/api/runs/{RUN_ID}/results").json()
    assert json.loads(result.stdout)["candidates"][0]["I"] == 3.0


def test_results_as_a_table_keep_whole_ids_within_80_columns(fakes: Fakes, gateway: TestClient) -> None:
    result = crucible("results", RUN_ID)

    assert result.exit_code == 0, result.output
    assert CANDIDATE_ID in result.stdout
    assert AGENT_RUN_ID in result.stdout
    assert "broke safety in 2 of 2 scenarios" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_start_preflights_creates_executes_follows_and_ranks(fakes: Fakes, gateway: TestClient) -> None:
    fakes.runs.events = [
        run_event(2, run_pb.RUN_EVENT_TYPE_PHASE_STARTED, {"phase": "evaluate"}),
        run_event(3, run_pb.RUN_EVENT_TYPE_EVALUATION_COMPLETED, {"done": 1, "total": 2, "p": 0.5}),
        run_event(4, run_pb.RUN_EVENT_TYPE_EVALUATION_FAILED, {"done": 2, "total": 2, "reason": "no JSON"}),
        run_event(5, run_pb.RUN_EVENT_TYPE_RUN_COMPLETED, {"status": "COMPLETED", "reason": ""}),
        run_event(6, run_pb.RUN_EVENT_TYPE_SUMMARY_POSTED, {"message_id": MESSAGE_ID}),
    ]
    fakes.runs.answer("GetRun", run_pb.GetRunResponse(run=run(run_pb.RUN_STATUS_COMPLETED)))

    result = crucible("start", PROJECT_ID, "--scenarios", "2")

    assert result.exit_code == 0, result.output
    assert [c.method for c in fakes.runs.calls] == [
        "PreflightRun",
        "CreateRun",
        "ExecuteRun",
        "WatchRun",
        "GetRun",
        "GetRunResults",
    ]
    (created,) = requests_of(fakes, "CreateRun")
    assert created.ui_trigger_source == run_pb.TRIGGER_SOURCE_CLI_TOOL
    assert requests_of(fakes, "ExecuteRun") == [run_pb.ExecuteRunRequest(run_id=RUN_ID)]
    assert "2/2" in result.stdout
    assert "evaluation failed: no JSON" in result.stdout
    said = " ".join(result.stdout.split())
    assert f"run.completed posting the run's summary to the chat… summary posted to the chat: {MESSAGE_ID}" in said
    assert CANDIDATE_ID in result.stdout


def test_start_stops_at_the_blockers(fakes: Fakes, gateway: TestClient) -> None:
    fakes.runs.answer("PreflightRun", preflight(ready=False))

    result = crucible("start", PROJECT_ID)

    assert result.exit_code == 1
    assert "The project has no WorldModel yet: describe it." in result.stdout
    assert [c.method for c in fakes.runs.calls] == ["PreflightRun"]


def test_a_run_that_does_not_complete_exits_1_without_results(fakes: Fakes, gateway: TestClient) -> None:
    failed = run(run_pb.RUN_STATUS_FAILED)
    failed.failure_reason = "budget_usd reached"
    fakes.runs.answer("GetRun", run_pb.GetRunResponse(run=failed))
    fakes.runs.events = [run_event(9, run_pb.RUN_EVENT_TYPE_RUN_FAILED, {"reason": "budget_usd reached"})]

    result = crucible("watch", RUN_ID, "--after", "8", "--format", "json")

    assert result.exit_code == 1
    assert json.loads(result.stdout)["failure_reason"] == "budget_usd reached"
    assert requests_of(fakes, "WatchRun") == [run_pb.WatchRunRequest(run_id=RUN_ID, after_sequence=8)]
    assert "GetRunResults" not in [c.method for c in fakes.runs.calls]


def test_watch_says_when_a_phase_is_continued_by_another_runner(fakes: Fakes, gateway: TestClient) -> None:
    fakes.runs.answer("GetRun", run_pb.GetRunResponse(run=run(run_pb.RUN_STATUS_COMPLETED)))
    fakes.runs.events = [
        run_event(2, run_pb.RUN_EVENT_TYPE_PHASE_STARTED, {"phase": "evaluate"}),
        run_event(3, run_pb.RUN_EVENT_TYPE_PHASE_STARTED, {"phase": "evaluate", "continued": True}),
        run_event(4, run_pb.RUN_EVENT_TYPE_RUN_COMPLETED, {"status": "COMPLETED", "reason": ""}),
    ]

    result = crucible("watch", RUN_ID)

    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert "▶ evaluate" in lines
    assert "▶ evaluate (continued after its runner stopped)" in lines


def test_a_problem_answer_is_printed_and_exits_1(fakes: Fakes, gateway: TestClient) -> None:
    fakes.runs.fail("GetRun", rpc_error(NotFound(f"run {RUN_ID} not found", reason="RUN_NOT_FOUND"), "run.crucible"))

    result = crucible("show", RUN_ID)

    assert result.exit_code == 1
    assert "404 RUN_NOT_FOUND" in result.stderr


def test_a_blocked_run_says_what_blocks_it_and_where(fakes: Fakes, gateway: TestClient) -> None:
    blocked = FailedPrecondition(
        "the run cannot start: validation_error",
        violations=[
            PreconditionViolation(
                "validation_error", "parameters.seed_candidate_ids", "not candidates of this project's runs: x"
            )
        ],
        reason="RUN_BLOCKED",
    )
    fakes.runs.fail("CreateRun", rpc_error(blocked, "run.crucible"))

    result = crucible("create", PROJECT_ID, "--mode", "eval_only")

    assert result.exit_code == 1
    said = " ".join(result.stderr.split())  # as wrapped to the terminal's width
    assert "412 RUN_BLOCKED" in said
    assert "validation_error (parameters.seed_candidate_ids): not candidates of this project's runs: x" in said


def test_a_create_whose_answer_is_lost_is_sent_again_under_its_one_trigger(
    fakes: Fakes, gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The gateway made the run, then the connection dropped before its answer: sent again with the
    # same trigger id, the run service answers with that run, never a second one.
    answer = Gateway.handle_request
    dropped: list[str] = []

    def dropping(self: Gateway, request: httpx.Request) -> httpx.Response:
        response = answer(self, request)
        if (request.method, request.url.path) == ("POST", "/api/runs") and not dropped:
            dropped.append(request.url.path)
            raise httpx.ReadError("connection reset by peer", request=request)
        return response

    monkeypatch.setattr(Gateway, "handle_request", dropping)

    result = crucible("create", PROJECT_ID, "--format", "json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["id"] == RUN_ID
    first, again = requests_of(fakes, "CreateRun")
    assert first.ui_trigger_id == again.ui_trigger_id
    assert "trying again" in result.stderr


def test_ctrl_c_stops_following_and_says_the_run_goes_on_and_how_to_follow_it_again(
    fakes: Fakes, gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(run_id: str, after: int) -> Iterator[dict[str, Any]]:
        yield {"sequence": 7, "type": "evaluation.completed", "data": {"done": 1, "total": 4}}
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "_events", interrupted)

    result = crucible("watch", RUN_ID)

    assert result.exit_code == 130
    said = " ".join(result.stderr.split())
    assert f"stopped following run {RUN_ID}, which goes on: `crucible run watch {RUN_ID} --after 7`" in said
    assert "CancelRun" not in [c.method for c in fakes.runs.calls]


def test_execute_runs_the_phases_named_or_all_of_them(fakes: Fakes, gateway: TestClient) -> None:
    some = crucible("execute", RUN_ID, "--phase", "design", "--phase", "scenarios", "--format", "json")
    every = crucible("execute", RUN_ID, "--format", "json")
    wrong = crucible("execute", RUN_ID, "--phase", "deploy")

    assert (some.exit_code, every.exit_code, wrong.exit_code) == (0, 0, 2)
    assert [r.phases for r in requests_of(fakes, "ExecuteRun")] == [
        [run_pb.RUN_PHASE_DESIGN, run_pb.RUN_PHASE_SCENARIOS],
        [],
    ]


def test_list_shows_whole_ids_and_filters_by_status(fakes: Fakes, gateway: TestClient) -> None:
    result = crucible("list", PROJECT_ID, "--status", "COMPLETED", "--page-size", "5")

    assert result.exit_code == 0, result.output
    assert RUN_ID in result.stdout
    assert "more: --page-token r2" in result.stdout
    assert requests_of(fakes, "ListRuns") == [
        run_pb.ListRunsRequest(project_id=PROJECT_ID, status=run_pb.RUN_STATUS_COMPLETED, page_size=5)
    ]


class DroppingSocket:
    """A WebSocket connection that yields its frames, then drops (or closes cleanly, with ``close_code``)."""

    def __init__(
        self, frames: list[dict[str, Any]], drop: bool, close: Close | None = None, close_code: int = 1000
    ) -> None:
        self.frames = frames
        self.drop = drop
        self.close = close
        self.close_code = close_code

    def __enter__(self) -> DroppingSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __iter__(self) -> Iterator[str]:
        for frame in self.frames:
            yield json.dumps(frame)
        if self.drop:
            raise ConnectionClosedError(self.close, None)


def test_a_dropped_stream_resumes_after_the_last_event_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    sockets = [
        DroppingSocket([{"sequence": 1, "type": "run.started"}, {"sequence": 2, "type": "phase.started"}], drop=True),
        DroppingSocket([{"sequence": 3, "type": "run.completed"}], drop=False),
    ]
    urls: list[str] = []

    def connect(url: str, additional_headers: dict[str, str]) -> DroppingSocket:
        urls.append(url)
        return sockets.pop(0)

    monkeypatch.setattr(output, "connect", connect)
    monkeypatch.setenv("CRUCIBLE_URL", "https://crucible.example")

    events = list(runs._events(RUN_ID, 0))

    assert [e["sequence"] for e in events] == [1, 2, 3]
    assert urls == [
        f"wss://crucible.example/api/ws/runs/{RUN_ID}?after=0",
        f"wss://crucible.example/api/ws/runs/{RUN_ID}?after=2",
    ]


def test_a_stream_that_keeps_dropping_ends_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output, "connect", lambda url, additional_headers: DroppingSocket([], drop=True))

    with pytest.raises(typer.Exit) as ended:
        list(runs._events(RUN_ID, 5))

    assert ended.value.exit_code == 1


def test_drops_apart_from_each_other_never_end_a_stream_that_moves(monkeypatch: pytest.MonkeyPatch) -> None:
    # More drops than RECONNECTS in all, each after new events: the run is fine, the command goes on.
    drops = output.RECONNECTS + 2
    sockets: list[DroppingSocket | OSError] = [
        DroppingSocket([{"sequence": n, "type": "evaluation.completed"}], drop=True) for n in range(1, drops + 1)
    ]
    sockets.insert(2, OSError("connection refused"))  # the gateway restarting between two drops
    sockets.append(DroppingSocket([{"sequence": drops + 1, "type": "run.completed"}], drop=False))

    def connect(url: str, additional_headers: dict[str, str]) -> DroppingSocket:
        opened = sockets.pop(0)
        if isinstance(opened, OSError):
            raise opened
        return opened

    monkeypatch.setattr(output, "connect", connect)

    assert [e["sequence"] for e in runs._events(RUN_ID, 0)] == list(range(1, drops + 2))


def test_a_service_that_stays_away_ends_the_command_though_each_close_comes_with_its_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each attempt: the gateway's error frame, then 4503; an error frame is no progress.
    away = {"type": "error", "problem": {"status": 503, "detail": "the run service is unavailable"}}
    opened: list[str] = []

    def connect(url: str, additional_headers: dict[str, str]) -> DroppingSocket:
        opened.append(url)
        return DroppingSocket([away], drop=True, close=Close(4503, "the run service is unavailable"))

    monkeypatch.setattr(output, "connect", connect)

    with pytest.raises(typer.Exit) as ended:
        list(runs._events(RUN_ID, 0))

    assert ended.value.exit_code == 1
    assert len(opened) == output.RECONNECTS + 1


def test_a_stream_closed_by_a_gateway_going_away_is_reopened(monkeypatch: pytest.MonkeyPatch) -> None:
    sockets = [
        DroppingSocket([{"sequence": 1, "type": "run.started"}], drop=False, close_code=1001),
        DroppingSocket([{"sequence": 2, "type": "run.completed"}], drop=False),
    ]
    monkeypatch.setattr(output, "connect", lambda url, additional_headers: sockets.pop(0))

    assert [e["sequence"] for e in runs._events(RUN_ID, 0)] == [1, 2]


def test_a_stream_the_gateway_refuses_ends_at_once_and_one_away_for_a_moment_is_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refused = {"type": "error", "problem": {"status": 404, "detail": "no such run"}}
    sockets = [DroppingSocket([refused], drop=True, close=Close(4404, "no such run"))]
    monkeypatch.setattr(output, "connect", lambda url, additional_headers: sockets.pop(0))

    events: list[dict[str, Any]] = []
    with pytest.raises(typer.Exit) as ended:
        events.extend(runs._events(RUN_ID, 0))

    assert ended.value.exit_code == 1
    assert events == [refused]  # shown once, not once per reconnect
    sockets = [
        DroppingSocket([], drop=True, close=Close(4503, "the run service is unavailable")),
        DroppingSocket([{"sequence": 1, "type": "run.completed"}], drop=False),
    ]
    assert [e["sequence"] for e in runs._events(RUN_ID, 0)] == [1]


def test_lineage_shows_the_chain_whole_ids_and_links_within_80_columns(fakes: Fakes, gateway: TestClient) -> None:
    result = crucible("lineage", RUN_ID)

    assert result.exit_code == 0, result.output
    assert requests_of(fakes, "GetRunLineage") == [run_pb.GetRunLineageRequest(run_id=RUN_ID)]
    for shown in (
        MESSAGE_ID,
        "Run a full search",
        TRIGGER_ID,
        "run_config_panel",
        "c" * 32,
        "12 (crucible-agent, crucible-run)",
        "create run (crucible-run)",
        f"→ recommendation {'a' * 32}/{'1' * 16}",
        "not in the local trace files",
    ):
        assert shown in result.stdout, shown
    assert result.stdout.index("recommendation  not in") < result.stdout.index("create_run  create run")
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_lineage_as_json_is_the_api_json(fakes: Fakes, gateway: TestClient) -> None:
    result = crucible("lineage", RUN_ID, "--format", "json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == gateway.get(f"/api/runs/{RUN_ID}/lineage").json()


def test_lineage_says_when_spans_are_exported_rather_than_kept(fakes: Fakes, gateway: TestClient) -> None:
    exported = run_lineage()
    exported.spans_stored_locally = False
    exported.spans_note = "spans are exported over OTLP to http://collector:4317, not stored locally"
    fakes.runs.answer("GetRunLineage", run_pb.GetRunLineageResponse(lineage=exported))

    result = crucible("lineage", RUN_ID)

    assert result.exit_code == 0, result.output
    assert "exported over OTLP to http://collector:4317" in result.stdout
