"""Snapshots through the gateway of the real stack with the offline emulator (seed 000's sign-off).

A snapshot of a completed run lists by tag, reads back with full copies, refuses to change (in the
database itself), replays into a new project and passes its suite; a breaking change (the emulator
failing every evaluation) fails the same suite with each invariant's expected and actual and the
metric deltas, and `crucible snapshot test` exits 1 with JUnit XML; a recorded replay costs $0 and
ranks identically; a cost limit that fits two of five snapshots runs two and skips three; the MCP
server answers the SDK's own client over streamable HTTP; an eval_only run's snapshot replays the
same candidates in a new project.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
import websockets
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from tests.system.conftest import Stack
from tests.system.test_runs import CONSTRAINTS, WORLD, _messages, _project, _run

pytestmark = pytest.mark.system

SUITE_TIMEOUT = 180.0
INVARIANTS: list[dict[str, Any]] = [
    {"type": "min_candidates", "value": 3},
    {"type": "max_candidates", "value": 3},
    {"type": "min_scenarios", "value": 3},
    {"type": "max_scenarios", "value": 3},
    {"type": "run_status", "value": "COMPLETED"},
    {"type": "min_evaluation_coverage", "value": 1.0},
    {"type": "max_duration_seconds", "value": 120},
    {"type": "min_top_i_score", "value": 0},
    {"type": "custom", "value": "evaluations == candidates * scenarios && failed_evaluations == 0"},
]


@dataclass(frozen=True)
class Baseline:
    project_id: str
    run_id: str
    snapshot: dict[str, Any]
    tag: str


@pytest.fixture(scope="module")
async def baseline(stack: Stack) -> AsyncIterator[Baseline]:
    """A completed 3 x 3 run of a bridge problem, and its snapshot (tags: a fresh one and baseline)."""
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as http:
        project_id = await _project(http)
        run = await _run(http, project_id, num_candidates=3, num_scenarios=3)
        assert run["status"] == "COMPLETED", run
        tag = f"sys-{uuid.uuid4().hex[:8]}"
        created = await http.post(
            "/api/snapshots",
            json={
                "project_id": project_id,
                "run_id": run["id"],
                "name": f"bridge {tag}",
                "description": "a completed 3 x 3 run",
                "tags": [tag, "baseline"],
                "invariants": INVARIANTS,
            },
        )
        assert created.status_code == 201, created.text
        yield Baseline(project_id, run["id"], created.json(), tag)


async def _suite(http: httpx.AsyncClient, snapshot_ids: list[str], **options: Any) -> dict[str, Any]:
    response = await http.post(
        "/api/snapshots/run-tests",
        json={"snapshot_ids": snapshot_ids, "options": options, "wait": True},
        timeout=SUITE_TIMEOUT,
    )
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


async def _emulator(stack: Stack, config: dict[str, Any]) -> None:
    async with httpx.AsyncClient() as client:
        url = f"http://127.0.0.1:{stack.env['CRUCIBLE_EMULATOR_PORT']}/emulator/config"
        assert (await client.put(url, json=config)).status_code == 200


def _ranking(results: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(c["title"], c["rank"], c["I"], c["P"], c["R"], c["rejected"]) for c in results["candidates"]]


async def test_a_snapshot_lists_by_tag_reads_back_whole_and_cannot_change(
    stack: Stack, stack_database_url: str, http: httpx.AsyncClient, baseline: Baseline
) -> None:
    snapshot_id = baseline.snapshot["id"]

    by_both = (await http.get("/api/snapshots", params=[("tags", baseline.tag), ("tags", "baseline")])).json()
    by_other = (await http.get("/api/snapshots", params=[("tags", baseline.tag), ("tags", "nightly")])).json()
    read = await http.get(f"/api/snapshots/{snapshot_id}")

    assert [s["id"] for s in by_both["snapshots"]] == [snapshot_id]
    assert by_other["snapshots"] == []
    assert read.status_code == 200
    snapshot = read.json()
    data = snapshot["snapshot_data"]
    # Full copies, not references.
    assert [(c["name"], c["weight"]) for c in data["problem_spec"]["constraints"]] == [
        (c["name"], c["weight"]) for c in CONSTRAINTS
    ]
    assert data["world_model"]["model_data"]["actors"] == WORLD["actors"]
    assert data["run_config"]["parameters"]["num_candidates"] == 3
    metrics = snapshot["reference_metrics"]
    assert (metrics["run_id"], metrics["status"]) == (baseline.run_id, "COMPLETED")
    assert (metrics["candidates"], metrics["scenarios"], metrics["evaluations"]) == (3, 3, 9)
    assert metrics["usd"] > 0
    assert metrics["top_i"] is not None
    # Each invariant checked against the source run, in their order: its run kept them all.
    reference = snapshot["reference_results"]
    assert [(r["type"], r["status"]) for r in reference] == [(i["type"], "passed") for i in INVARIANTS]
    assert reference[0]["actual"] == 3

    # No API changes a snapshot, and the database refuses an UPDATE whoever sends it.
    assert (await http.patch(f"/api/snapshots/{snapshot_id}", json={"tags": []})).status_code == 405
    engine = create_async_engine(stack_database_url)
    try:
        with pytest.raises(DBAPIError, match="immutable"):
            async with engine.begin() as conn:
                await conn.execute(
                    text("UPDATE snapshot.snapshots SET invariants = '[]'::jsonb WHERE id = :id"), {"id": snapshot_id}
                )
    finally:
        await engine.dispose()
    assert (await http.get(f"/api/snapshots/{snapshot_id}")).json()["invariants"] == snapshot["invariants"]


async def test_bad_requests_are_clear_and_a_delete_needs_its_confirmation(
    http: httpx.AsyncClient, baseline: Baseline
) -> None:
    bad = await http.post(
        "/api/snapshots",
        json={
            "project_id": baseline.project_id,
            "name": f"bad {uuid.uuid4()}",
            "invariants": [{"type": "min_candidates", "value": "many"}, {"type": "fastest", "value": 1}],
        },
    )
    unknown = await http.get(f"/api/snapshots/{uuid.uuid4()}")
    malformed = await http.get("/api/snapshots/not-an-id")
    taken = await http.post(
        "/api/snapshots", json={"project_id": baseline.project_id, "name": baseline.snapshot["name"]}
    )
    unknown_run = await http.post(f"/api/runs/{uuid.uuid4()}/snapshot")
    nameless = await http.post("/api/snapshots", json={"project_id": baseline.project_id})

    assert bad.status_code == 400
    assert [v["field"] for v in bad.json()["field_violations"]] == ["invariants[0].value", "invariants[1].type"]
    assert (unknown.status_code, unknown.json()["reason"]) == (404, "SNAPSHOT_NOT_FOUND")
    assert malformed.status_code == 400
    assert (taken.status_code, taken.json()["reason"]) == (409, "SNAPSHOT_NAME_TAKEN")
    assert unknown_run.status_code == 404
    # A name may be left out only of a snapshot of a run (the service names that one).
    assert nameless.status_code == 400
    assert [v["field"] for v in nameless.json()["field_violations"]] == ["name"]

    # Snapshotted twice without a name: named after its project and run, the second one numbered.
    first = await http.post(f"/api/runs/{baseline.run_id}/snapshot")
    again = await http.post(f"/api/runs/{baseline.run_id}/snapshot", json={"tags": ["again"]})
    assert (first.status_code, again.status_code) == (201, 201), (first.text, again.text)
    title = (await http.get(f"/api/projects/{baseline.project_id}")).json()["title"]
    named = f"{title} · run {baseline.run_id[:8]} · completed"
    assert (first.json()["name"], again.json()["name"]) == (named, f"{named} (2)")
    for made in (first, again):
        assert (await http.delete(f"/api/snapshots/{made.json()['id']}", params={"confirm": "true"})).status_code == 204

    # A child of the baseline, to delete: the delete needs confirm=true.
    child = await http.post(
        "/api/snapshots", json={"parent_snapshot_id": baseline.snapshot["id"], "name": f"child {uuid.uuid4()}"}
    )
    assert child.status_code == 201, child.text
    child_id = child.json()["id"]
    assert child.json()["parent_id"] == baseline.snapshot["id"]
    unconfirmed = await http.delete(f"/api/snapshots/{child_id}")
    assert (unconfirmed.status_code, unconfirmed.json()["reason"]) == (412, "CONFIRMATION_REQUIRED")
    assert (await http.get(f"/api/snapshots/{child_id}")).status_code == 200
    assert (await http.delete(f"/api/snapshots/{child_id}", params={"confirm": "true"})).status_code == 204
    assert (await http.get(f"/api/snapshots/{child_id}")).status_code == 404


async def test_a_replay_restores_into_a_new_project_and_the_suite_passes(
    stack: Stack, http: httpx.AsyncClient, baseline: Baseline
) -> None:
    snapshot_id = baseline.snapshot["id"]

    replayed = await http.post(f"/api/snapshots/{snapshot_id}/replay", json={"wait": True}, timeout=SUITE_TIMEOUT)
    report = await _suite(http, [snapshot_id])

    assert replayed.status_code == 200, replayed.text
    replay = replayed.json()
    assert replay["project_id"] != baseline.project_id
    assert replay["status"] == "COMPLETED"
    assert all(i["status"] == "passed" for i in replay["invariants"]), replay["invariants"]
    spec = (await http.get(f"/api/projects/{replay['project_id']}/problem-spec")).json()
    assert [c["name"] for c in spec["constraints"]] == [c["name"] for c in CONSTRAINTS]
    history = (await http.get(f"/api/projects/{replay['project_id']}/problem-spec/provenance")).json()
    assert any("restored from snapshot" in e["reason"] for e in history["entries"]), history
    run = (await http.get(f"/api/runs/{replay['run_id']}")).json()
    assert run["ui_trigger_source"] == "snapshot_test"
    # The replay's project says what it is, and the projects list leaves it out unless asked.
    project = (await http.get(f"/api/projects/{replay['project_id']}")).json()
    assert project["replay_of_snapshot_id"] == snapshot_id
    listed = (await http.get("/api/projects", params={"page_size": 1000})).json()["projects"]
    assert baseline.project_id in {p["id"] for p in listed}
    assert not any(p["replay_of_snapshot_id"] for p in listed)
    every = (await http.get("/api/projects", params={"page_size": 1000, "include_replays": True})).json()["projects"]
    assert replay["project_id"] in {p["id"] for p in every}

    assert report["status"] == "completed", report
    assert report["summary"] == {"total": 1, "passed": 1, "failed": 0, "skipped": 0, "errors": 0}
    (result,) = report["results"]
    assert {i["type"] for i in result["invariants"]} == {i["type"] for i in INVARIANTS}
    assert result["cost_usd"] > 0
    assert report["total_cost_usd"] == pytest.approx(result["cost_usd"])

    # A suite followed live: its replay is told running, with its run, before its snapshot's result.
    started = await http.post(
        "/api/snapshots/run-tests",
        json={"snapshot_ids": [snapshot_id], "wait": False, "ui_trigger_id": str(uuid.uuid4())},
    )
    assert started.status_code == 202, started.text
    assert started.json()["repetitions"] == 1
    url = f"{stack.url.replace('http', 'ws')}/api/ws/snapshot-reports/{started.json()['report_id']}"
    frames = []
    async with websockets.connect(url) as ws:
        async for frame in ws:
            frames.append(json.loads(frame))
    kinds = [f["type"] for f in frames]
    assert [k for k in kinds if k != "replay"] == ["started", "result", "report"]
    (running,) = [f["replay"] for f in frames if f["type"] == "replay" and f["replay"]["state"] == "running"]
    assert kinds.index("replay") < kinds.index("result")
    assert (running["snapshot_id"], running["repetition"]) == (snapshot_id, 1)
    assert running["snapshot_name"] == baseline.snapshot["name"]
    live_result = next(f["result"] for f in frames if f["type"] == "result")
    assert [running["run_id"]] == live_result["replay_run_ids"]


async def test_a_recorded_replay_costs_nothing_and_ranks_identically(
    http: httpx.AsyncClient, baseline: Baseline
) -> None:
    before = (await http.get("/api/usage")).json()["total"]

    replayed = await http.post(
        f"/api/snapshots/{baseline.snapshot['id']}/replay",
        json={"wait": True, "replay_mode": "recorded"},
        timeout=SUITE_TIMEOUT,
    )

    assert replayed.status_code == 200, replayed.text
    replay = replayed.json()
    assert replay["status"] == "COMPLETED"
    after = (await http.get("/api/usage")).json()["total"]
    assert after["usd"] == pytest.approx(before["usd"])
    assert after["replayed_calls"] > before["replayed_calls"]
    assert (await http.get("/api/usage", params={"run_id": replay["run_id"]})).json()["total"]["usd"] == 0
    source = (await http.get(f"/api/runs/{baseline.run_id}/results")).json()
    again = (await http.get(f"/api/runs/{replay['run_id']}/results")).json()
    assert _ranking(again) == _ranking(source)


async def test_a_breaking_change_fails_the_suite_naming_each_invariant_and_the_cli_exits_1(
    stack: Stack, http: httpx.AsyncClient, baseline: Baseline, tmp_path: Path
) -> None:
    junit = tmp_path / "snapshots.xml"
    # The change under test: a provider that fails every evaluation.
    await _emulator(stack, {"faults": [{"match": {"task": "evaluation"}, "kind": "error"}]})
    try:
        # In a thread: the suite answers over this event loop's neighbours, which must keep running.
        cli = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "crucible_cli.main",
                "snapshot",
                "test",
                "--snapshot-ids",
                baseline.snapshot["id"],
                "--format",
                "json",
                "--junit-xml",
                str(junit),
            ],
            env={**stack.env, "CRUCIBLE_URL": stack.url, "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=SUITE_TIMEOUT,
        )
    finally:
        await _emulator(stack, {"faults": []})

    assert cli.returncode == 1, cli.stderr
    report = json.loads(cli.stdout)
    assert report["summary"]["failed"] == 1
    (result,) = report["results"]
    assert result["status"] == "failed"
    failed = {i["type"]: i for i in result["invariants"] if i["status"] == "failed"}
    assert {"min_evaluation_coverage", "custom"} <= set(failed), result["invariants"]
    assert failed["min_evaluation_coverage"]["expected"] == 1.0
    assert failed["min_evaluation_coverage"]["actual"] < 1.0
    passed = {i["type"] for i in result["invariants"] if i["status"] == "passed"}
    assert {"min_candidates", "max_candidates", "min_scenarios", "max_scenarios"} <= passed
    delta = result["metrics_delta"]["failed_evaluations"]
    assert (delta["baseline"], delta["flagged"]) == (0, True)
    assert delta["replay"] > 0
    # JUnit XML: one test case per snapshot and invariant, the failing ones with their message.
    root = ET.parse(junit).getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == 1 + len(INVARIANTS)
    assert int(root.get("failures") or 0) >= 3  # the snapshot, and at least its two invariants
    coverage = next(c for c in cases if "min_evaluation_coverage" in (c.get("name") or ""))
    assert coverage.find("failure") is not None


async def test_a_cost_limit_that_fits_two_of_five_runs_two_and_skips_three(
    http: httpx.AsyncClient, baseline: Baseline
) -> None:
    tag = f"budget-{uuid.uuid4().hex[:8]}"
    made = []
    for i in range(5):
        child = await http.post(
            "/api/snapshots",
            json={"parent_snapshot_id": baseline.snapshot["id"], "name": f"{tag} {i}", "tags": [tag]},
        )
        assert child.status_code == 201, child.text
        made.append(child.json()["id"])
    preflight = await http.post(
        f"/api/projects/{baseline.project_id}/runs/preflight",
        json={"mode": "full_search", "parameters": {"num_candidates": 3, "num_scenarios": 3}},
    )
    estimate = preflight.json()["estimated_cost"]["usd"]
    spent = baseline.snapshot["reference_metrics"]["usd"]
    # One replay at a time: each reserves estimate x 1.25 (the default margin) before it starts and
    # then costs about what the source run did. The first two fit; after them, a third does not.
    limit = 1.25 * estimate + 1.5 * spent

    report = await _suite(http, made, cost_limit_usd=limit, concurrency=1)

    assert report["status"] == "completed", report
    assert [r["status"] for r in report["results"]] == ["passed", "passed", "skipped", "skipped", "skipped"]
    assert all(r["reason"].startswith("cost limit") for r in report["results"][2:])
    assert report["total_cost_usd"] <= limit
    usage = (await http.get("/api/usage", params={"snapshot_test_id": report["snapshot_test_id"]})).json()
    assert usage["total"]["usd"] == pytest.approx(report["total_cost_usd"])


async def test_the_mcp_server_answers_the_sdk_client(stack: Stack, baseline: Baseline) -> None:
    async with (
        httpx2.AsyncClient(timeout=60) as transport,
        Client(streamable_http_client(f"{stack.url}/mcp", http_client=transport)) as crucible,
    ):
        tools = {t.name for t in (await crucible.list_tools()).tools}
        listed = await crucible.call_tool("list_snapshots", {"tags": [baseline.tag]})
        shown = await crucible.call_tool("get_snapshot", {"snapshot_id": baseline.snapshot["id"]})
        statistics = await crucible.call_tool("get_run_statistics", {"run_id": baseline.run_id})
        missing = await crucible.call_tool("get_snapshot", {"snapshot_id": str(uuid.uuid4())})

    assert {"list_snapshots", "create_snapshot", "replay_snapshot", "run_snapshot_tests", "get_test_report"} <= tools
    assert not listed.is_error
    assert listed.structured_content is not None
    assert [s["id"] for s in listed.structured_content["snapshots"]] == [baseline.snapshot["id"]]
    assert shown.structured_content is not None
    assert shown.structured_content["reference_metrics"]["run_id"] == baseline.run_id
    assert statistics.structured_content is not None
    assert statistics.structured_content["counts"]["evaluations"] == 9
    assert missing.is_error
    assert "SNAPSHOT_NOT_FOUND" in missing.content[0].text  # type: ignore[union-attr]


async def test_no_snapshot_summary_leaks_into_the_source_chat(http: httpx.AsyncClient, baseline: Baseline) -> None:
    """Replays run in their own projects: the source project's chat has only its own run's summary."""
    summaries = [m for m in await _messages(http, baseline.project_id) if m["role"] == "agent"]
    assert len(summaries) == 1


async def test_an_eval_only_runs_snapshot_replays_the_same_candidates_in_a_new_project(http: httpx.AsyncClient) -> None:
    """A new project has no runs to name seeds from: the snapshot keeps the seeds whole and the replay
    passes them whole, so it evaluates what the source run evaluated."""
    project_id = await _project(http)
    designed = await _run(http, project_id, num_candidates=2, num_scenarios=2)
    evaluated = await _run(http, project_id, "eval_only", num_scenarios=2)
    assert (designed["status"], evaluated["status"]) == ("COMPLETED", "COMPLETED"), (designed, evaluated)
    created = await http.post(
        "/api/snapshots",
        json={
            "project_id": project_id,
            "run_id": evaluated["id"],
            "name": f"eval only {uuid.uuid4().hex[:8]}",
            "invariants": [{"type": "run_status", "value": "COMPLETED"}, {"type": "min_candidates", "value": 2}],
        },
    )
    assert created.status_code == 201, created.text

    replayed = await http.post(
        f"/api/snapshots/{created.json()['id']}/replay", json={"wait": True}, timeout=SUITE_TIMEOUT
    )

    assert replayed.status_code == 200, replayed.text
    replay = replayed.json()
    assert replay["project_id"] != project_id
    assert replay["status"] == "COMPLETED", replay
    assert all(i["status"] == "passed" for i in replay["invariants"]), replay["invariants"]
    source = (await http.get(f"/api/runs/{evaluated['id']}/candidates")).json()["candidates"]
    again = (await http.get(f"/api/runs/{replay['run_id']}/candidates")).json()["candidates"]
    assert [(c["title"], c["origin"]) for c in again] == [(c["title"], "seed") for c in source]
    run = (await http.get(f"/api/runs/{replay['run_id']}")).json()
    assert run["mode"] == "eval_only"
    assert [d["title"] for d in run["parameters"]["seed_candidates"]] == [c["title"] for c in source]

    # Recorded: the same candidates ask the same questions, so the source run's answers serve.
    recorded = await http.post(
        f"/api/snapshots/{created.json()['id']}/replay",
        json={"wait": True, "replay_mode": "recorded"},
        timeout=SUITE_TIMEOUT,
    )
    assert recorded.status_code == 200, recorded.text
    assert recorded.json()["status"] == "COMPLETED", recorded.json()
    usage = (await http.get("/api/usage", params={"run_id": recorded.json()["run_id"]})).json()["total"]
    assert usage["usd"] == 0
    assert usage["replayed_calls"] > 0
    again = (await http.get(f"/api/runs/{recorded.json()['run_id']}/results")).json()
    assert _ranking(again) == _ranking((await http.get(f"/api/runs/{evaluated['id']}/results")).json())
