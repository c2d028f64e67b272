"""Specs through the gateway, with no API keys: the planning interview reaches the offline emulator."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from crucible_cli.specs import spec_app
from tests.system.conftest import Stack

pytestmark = pytest.mark.system

TASK = "Create a Python script that prints 'hello world' to stdout."
SPEC_KEYS = {"id", "status", "task", "title", "artifacts", "created_at", "updated_at"}
PLANNING_KEYS = {"status", "questions", "answers", "metadata"}


async def test_create_show_answer(http: httpx.AsyncClient) -> None:
    created = await http.post(
        "/api/specs", json={"task": TASK, "title": "Hello World Integration Test", "max_questions": 3}, timeout=120
    )
    assert created.status_code == 201, created.text
    spec = created.json()
    assert set(spec) == SPEC_KEYS
    assert (spec["status"], spec["task"], spec["title"]) == ("draft", TASK, "Hello World Integration Test")
    assert set(spec["artifacts"]) == {"planning"}
    planning = spec["artifacts"]["planning"]
    assert set(planning) == PLANNING_KEYS
    assert planning["status"] == "needs_answers"
    assert planning["answers"] == []
    assert 1 <= len(planning["questions"]) <= 3
    assert all(set(q) == {"question", "rationale"} for q in planning["questions"])

    metadata = planning["metadata"]
    assert metadata["mode"] == "dual_subagent"
    assert len(metadata["candidates"]) >= 2
    assert {"openai", "anthropic"} <= {c["provider"] for c in metadata["candidates"]}
    assert all("duration_ms" in c["metrics"] for c in metadata["candidates"])
    assert metadata["judge"]["model_name"] is not None
    assert metadata["selected_candidate"]["provider"] in ("openai", "anthropic")

    shown = await http.get(f"/api/specs/{spec['id']}")
    assert shown.status_code == 200
    assert shown.json() == spec

    first, *rest = planning["questions"]
    partial = await http.post(
        f"/api/specs/{spec['id']}/answers", json={"answers": [{"question": first["question"], "answer": "Yes."}]}
    )
    assert partial.status_code == 200, partial.text
    body = partial.json()
    assert body["unanswered_questions"] == [q["question"] for q in rest]
    expected = "needs_answers" if rest else "answered"
    assert body["spec"]["artifacts"]["planning"]["status"] == expected

    answers = [{"question": q["question"], "answer": "Keep it simple."} for q in planning["questions"]]
    done = await http.post(f"/api/specs/{spec['id']}/answers", json={"answers": answers})
    assert done.status_code == 200
    answered = done.json()["spec"]
    assert answered["artifacts"]["planning"]["status"] == "answered"
    assert answered["artifacts"]["planning"]["answers"] == answers
    assert done.json()["unanswered_questions"] == []

    listed = (await http.get("/api/specs", params={"page_size": 1})).json()
    assert len(listed["specs"]) == 1
    assert listed["next_page_token"] or listed["specs"][0]["id"] == spec["id"]


async def test_stub_and_single_modes(http: httpx.AsyncClient) -> None:
    stub = await http.post("/api/specs", json={"task": TASK, "mode": "stub", "max_questions": 2})
    assert stub.status_code == 201, stub.text
    assert stub.json()["title"] == "Create a Python script that prints 'hello world'..."
    stub_meta = stub.json()["artifacts"]["planning"]["metadata"]
    assert (stub_meta["mode"], stub_meta["candidates"], stub_meta["judge"]) == ("stub", [], None)
    assert len(stub.json()["artifacts"]["planning"]["questions"]) == 2

    single = await http.post("/api/specs", json={"task": TASK, "mode": "single"}, timeout=120)
    assert single.status_code == 201, single.text
    meta = single.json()["artifacts"]["planning"]["metadata"]
    assert meta["mode"] == "single"
    assert meta["judge"] is None
    assert meta["selected_candidate"]["provider"] == "openai"


async def test_problem_bodies(http: httpx.AsyncClient) -> None:
    empty = await http.post("/api/specs", json={"task": " ", "max_questions": 11})
    assert empty.status_code == 400
    problem = empty.json()
    assert empty.headers["content-type"].startswith("application/problem+json")
    assert problem["reason"] == "VALIDATION_FAILED"
    assert {v["field"] for v in problem["field_violations"]} == {"task", "max_questions"}

    bad_mode = await http.post("/api/specs", json={"task": TASK, "mode": "triple"})
    assert bad_mode.status_code == 400
    assert bad_mode.json()["field_violations"][0]["field"] == "mode"

    missing = await http.get("/api/specs/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert missing.json()["reason"] == "SPEC_NOT_FOUND"
    malformed = await http.get("/api/specs/not-an-id")
    assert malformed.status_code == 400
    assert malformed.json()["reason"] == "VALIDATION_FAILED"
    assert [v["field"] for v in malformed.json()["field_violations"]] == ["path.spec_id"]

    spec = (await http.post("/api/specs", json={"task": TASK, "mode": "stub"})).json()
    unknown = await http.post(
        f"/api/specs/{spec['id']}/answers", json={"answers": [{"question": "Who are you?", "answer": "me"}]}
    )
    assert unknown.status_code == 400
    assert unknown.json()["reason"] == "UNKNOWN_QUESTION"
    assert unknown.json()["field_violations"][0]["field"] == "answers[0].question"
    no_answer = await http.post(f"/api/specs/{spec['id']}/answers", json={"answers": []})
    assert no_answer.status_code == 400
    assert no_answer.json()["reason"] == "VALIDATION_FAILED"


def test_cli_create_answer_show(stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRUCIBLE_URL", stack.url)
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()

    created = runner.invoke(spec_app, ["create", TASK, "--mode", "stub", "-n", "3", "--format", "json"])
    assert created.exit_code == 0, created.output
    spec = json.loads(created.output)
    questions = [q["question"] for q in spec["artifacts"]["planning"]["questions"]]

    by_number = runner.invoke(spec_app, ["answer", spec["id"], "--answer", "1=Print it.", "-f", "json"])
    assert by_number.exit_code == 0, by_number.output
    assert json.loads(by_number.output)["unanswered_questions"] == questions[1:]

    answers_file = tmp_path / "answers.json"
    answers_file.write_text(json.dumps({q: "Keep it simple." for q in questions[1:]}))
    from_file = runner.invoke(spec_app, ["answer", spec["id"], "--answers-file", str(answers_file)])
    assert from_file.exit_code == 0, from_file.output
    assert "every question is answered" in from_file.output

    shown = runner.invoke(spec_app, ["show", spec["id"]])
    assert shown.exit_code == 0, shown.output
    assert "answered" in shown.output
    assert "Print it." in shown.output

    unknown = runner.invoke(spec_app, ["answer", spec["id"], "--answer", "Who?=me"])
    assert unknown.exit_code == 1
