"""``crucible sprint …`` against the in-process gateway over the fake sprint service."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner, Result

from crucible.agent.v1 import sprint_service_pb2 as sprint_pb
from crucible_cli import output, sprints
from crucible_cli.main import app
from crucible_common.errors import FailedPrecondition
from tests.unit.cli.test_run_commands import DroppingSocket
from tests.unit.gateway.fakes import AGENT_RUN_ID, SPRINT_ID, Fakes, rpc_error, sprint


def crucible(*args: str) -> Result:
    return CliRunner().invoke(app, ["sprint", *args], env={"COLUMNS": "80"})


def cancelled() -> sprint_pb.Sprint:
    answer = sprint()
    answer.status = sprint_pb.SPRINT_STATUS_CANCELLED
    answer.failure_reason = "cancelled: wrong spec"
    answer.phases[1].status = sprint_pb.PHASE_ATTEMPT_STATUS_CANCELLED
    answer.phases[1].agent_run_id = AGENT_RUN_ID
    answer.phases[1].summary = "cancelled: wrong spec"
    return answer


def test_cancel_asks_the_gateway_with_the_reason_and_shows_the_cancelled_sprint(
    fakes: Fakes, rest_gateway: TestClient
) -> None:
    fakes.sprints.answer("CancelSprint", sprint_pb.CancelSprintResponse(sprint=cancelled()))

    result = crucible("cancel", SPRINT_ID, "--reason", "wrong spec")

    assert result.exit_code == 0, result.output
    assert fakes.sprints.only_call().request == sprint_pb.CancelSprintRequest(sprint_id=SPRINT_ID, reason="wrong spec")
    lines = result.output.splitlines()
    assert any(line.split()[:2] == ["status", "cancelled"] for line in lines), result.output
    assert any(line.split()[:2] == ["cancelled", "cancelled:"] for line in lines), result.output
    assert any(line.split()[:3] == ["coding", "#1", "cancelled"] and AGENT_RUN_ID in line for line in lines)


def test_a_cancel_of_a_finished_sprint_is_refused_with_the_reason(fakes: Fakes, rest_gateway: TestClient) -> None:
    refusal = FailedPrecondition("sprint is already completed", reason="SPRINT_FINISHED")
    fakes.sprints.fail("CancelSprint", rpc_error(refusal, "agent.crucible"))

    result = crucible("cancel", SPRINT_ID)

    assert result.exit_code == 1
    assert "412 SPRINT_FINISHED" in result.stderr


def test_download_goes_outside_the_working_tree_by_default(
    fakes: Fakes, rest_gateway: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, work = tmp_path / "home", tmp_path / "repo"
    work.mkdir()
    monkeypatch.setattr(Path, "home", lambda: home)
    monkeypatch.chdir(work)
    fakes.sprints.answer(
        "ListArtifacts", sprint_pb.ListArtifactsResponse(artifacts=[sprint_pb.Artifact(path="pkg/hello.py", size=21)])
    )

    result = crucible("download", SPRINT_ID)

    assert result.exit_code == 0, result.output
    target = home / "Downloads" / "crucible" / SPRINT_ID
    assert sprints.default_download_dir(SPRINT_ID) == target
    assert (target / "pkg" / "hello.py").read_text() == "print('hello world')\n"
    assert list(work.iterdir()) == []
    assert "1 artifact in" in result.output


def test_download_to_a_chosen_directory(fakes: Fakes, rest_gateway: TestClient, tmp_path: Path) -> None:
    fakes.sprints.answer(
        "ListArtifacts", sprint_pb.ListArtifactsResponse(artifacts=[sprint_pb.Artifact(path="hello.py", size=21)])
    )

    for args in (
        ["download", SPRINT_ID, "--to", str(tmp_path / "a")],
        ["artifacts", SPRINT_ID, "--download", str(tmp_path / "b")],
    ):
        assert crucible(*args).exit_code == 0

    assert (tmp_path / "a" / "hello.py").exists()
    assert (tmp_path / "b" / "hello.py").exists()


@pytest.mark.parametrize(
    ("kind", "printed", "status"),
    [
        ("sprint.cancelled", "sprint.cancelled cancelled: wrong spec", "cancelled"),
        ("sprint.completed", "sprint.completed", "completed"),
    ],
)
def test_the_live_view_names_a_cancel(kind: str, printed: str, status: str, capsys: pytest.CaptureFixture[str]) -> None:
    phase = sprints._render({"type": "phase.cancelled", "data": {"phase": "coding", "attempt": 1, "summary": "stop"}})
    ended = sprints._render(
        {"type": kind, "data": {"failure_reason": "cancelled: wrong spec" if "cancel" in kind else ""}}
    )

    out = capsys.readouterr().out
    assert phase is None
    assert "coding #1 stop" in " ".join(out.split())
    assert ended == status
    assert printed in " ".join(out.split())


def test_watch_resumes_a_dropped_stream_after_the_last_event_and_ends_with_the_sprint(
    fakes: Fakes, rest_gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = {"sequence": 1, "type": "phase.started", "data": {"phase": "discovery", "attempt": 1}}
    done = {
        "sequence": 2,
        "type": "phase.completed",
        "data": {"phase": "discovery", "attempt": 1, "summary": "planned"},
    }
    sockets = [DroppingSocket([started], drop=True), DroppingSocket([done], drop=False)]
    urls: list[str] = []

    def connect(url: str, additional_headers: dict[str, str]) -> DroppingSocket:
        urls.append(url)
        return sockets.pop(0)

    monkeypatch.setattr(output, "connect", connect)
    completed = sprint()
    completed.status = sprint_pb.SPRINT_STATUS_COMPLETED
    fakes.sprints.answer("GetSprint", sprint_pb.GetSprintResponse(sprint=completed))

    result = crucible("watch", SPRINT_ID)

    assert result.exit_code == 0, result.output
    assert [url.split("/api/", 1)[1] for url in urls] == [
        f"ws/sprints/{SPRINT_ID}?after=0",
        f"ws/sprints/{SPRINT_ID}?after=1",
    ]
    assert "▶ discovery #1" in result.output
    assert "✔ discovery #1" in result.output
