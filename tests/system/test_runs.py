"""Runs through the gateway of the real stack with the offline emulator (seed 001's run contract).

Preflight blockers on an empty project; a run only with a trigger; each mode end to end with a
rejected candidate that names its hard constraint; one summary in the chat; the live WebSocket;
a run service killed mid-run and the run finished elsewhere without paying twice; an emulator
that fails a fifth of its calls in every way.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import free_port, repo_root
from tests.system.conftest import Stack

pytestmark = pytest.mark.system

RUN_TIMEOUT = 90.0
# A problem the emulator answers with at least one design that breaks the hard constraint.
CONSTRAINTS = [
    {"name": "budget", "description": "must stay under one million", "weight": 100},
    {"name": "speed", "description": "should be fast to build", "weight": 60},
]
GOALS = [{"description": "carry traffic across the river"}]
WORLD = {"actors": [{"name": "commuters", "description": "people crossing the river every day"}]}


async def _project(http: httpx.AsyncClient, *, ready: bool = True) -> str:
    created = await http.post("/api/projects", json={"title": "Bridge", "description": "a river crossing"})
    assert created.status_code == 201, created.text
    project_id: str = created.json()["id"]
    if ready:
        await _project_fill(http, project_id)
    return project_id


async def _project_fill(http: httpx.AsyncClient, project_id: str) -> None:
    spec = await http.put(f"/api/projects/{project_id}/problem-spec", json={"constraints": CONSTRAINTS, "goals": GOALS})
    assert spec.status_code == 200, spec.text
    world = await http.put(f"/api/projects/{project_id}/world-model", json={"model_data": WORLD})
    assert world.status_code == 200, world.text


async def _create(
    http: httpx.AsyncClient, project_id: str, mode: str = "full_search", **parameters: Any
) -> dict[str, Any]:
    created = await http.post(
        "/api/runs",
        json={
            "project_id": project_id,
            "mode": mode,
            "parameters": parameters,
            "ui_trigger_id": str(uuid.uuid4()),
            "ui_trigger_source": "integration_test",
        },
    )
    assert created.status_code == 201, created.text
    run: dict[str, Any] = created.json()
    return run


async def _finished(http: httpx.AsyncClient, run_id: str, timeout: float = RUN_TIMEOUT) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run: dict[str, Any] = (await http.get(f"/api/runs/{run_id}")).json()
        if run["status"] in ("COMPLETED", "FAILED", "CANCELLED") and run["run_summary_message_id"]:
            return run
        await asyncio.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish: {run}")


async def _run(
    http: httpx.AsyncClient, project_id: str, mode: str = "full_search", **parameters: Any
) -> dict[str, Any]:
    run = await _create(http, project_id, mode, **parameters)
    executed = await http.post(f"/api/runs/{run['id']}/full-pipeline")
    assert executed.status_code == 200, executed.text
    return await _finished(http, run["id"])


async def _messages(http: httpx.AsyncClient, project_id: str) -> list[dict[str, Any]]:
    sessions = (await http.get(f"/api/projects/{project_id}/chat-sessions")).json()["chat_sessions"]
    found = []
    for session in sessions:
        found += (await http.get(f"/api/chat-sessions/{session['id']}/messages")).json()["chat_messages"]
    return found


async def test_the_run_contract_end_to_end(stack: Stack, http: httpx.AsyncClient) -> None:
    project_id = await _project(http, ready=False)

    # An empty project: both prerequisites missing, in words.
    empty = await http.post(f"/api/projects/{project_id}/runs/preflight", json={"mode": "full_search"})
    assert empty.status_code == 200, empty.text
    assert empty.json()["ready"] is False
    assert empty.json()["blockers"] == ["missing_problem_spec", "missing_world_model"]
    refused = await http.post("/api/runs", json={"project_id": project_id, "mode": "full_search", "ui_trigger_id": "t"})
    assert refused.status_code == 412
    assert refused.json()["reason"] == "RUN_BLOCKED"

    await _project_fill(http, project_id)
    ready = (await http.post(f"/api/projects/{project_id}/runs/preflight", json={"mode": "full_search"})).json()
    assert ready["ready"] is True
    assert ready["blockers"] == []
    assert ready["estimated_cost"]["calls"] == 27
    assert ready["estimated_cost"]["usd"] > 0

    # No trigger, no run.
    untriggered = await http.post("/api/runs", json={"project_id": project_id, "mode": "full_search"})
    assert untriggered.status_code == 400
    assert untriggered.json()["reason"] == "TRIGGER_REQUIRED"
    assert (await http.get(f"/api/projects/{project_id}/runs")).json()["runs"] == []

    # A budget at preflight's estimate is enough for the run it estimated.
    estimate = await http.post(
        f"/api/projects/{project_id}/runs/preflight",
        json={"mode": "full_search", "parameters": {"num_candidates": 6, "num_scenarios": 3}},
    )
    assert estimate.status_code == 200, estimate.text
    budget = estimate.json()["estimated_cost"]["usd"]
    run = await _create(http, project_id, num_candidates=6, num_scenarios=3, budget_usd=budget)
    assert run["status"] == "CREATED"
    assert run["trigger"]["source"] == "integration_test"
    # Nothing runs until it is executed.
    await asyncio.sleep(0.5)
    assert (await http.get(f"/api/runs/{run['id']}")).json()["status"] == "CREATED"
    executed = await http.post(f"/api/runs/{run['id']}/execute", json={"phases": "all"})
    assert executed.status_code == 200, executed.text
    assert executed.json()["status"] == "RUNNING"
    done = await _finished(http, run["id"])

    assert done["status"] == "COMPLETED", done["failure_reason"]
    assert done["counts"] == {"candidates": 6, "scenarios": 3, "evaluations": 18, "failed_evaluations": 0}
    assert done["usage"]["calls"] == 20
    assert 0 < done["usage"]["usd"] <= budget
    results = (await http.get(f"/api/runs/{run['id']}/results")).json()
    ranked = results["candidates"]
    assert [c["rank"] for c in ranked] == [1, 2, 3, 4, 5, 6]
    assert all(c["I"] == pytest.approx(c["P"] / c["R"]) for c in ranked)
    rejected = [c for c in ranked if c["rejected"]]
    assert rejected, "the emulator breaks the hard constraint in some design of this problem"
    assert all(c["label"] == "rejected" for c in rejected)
    assert all(v["constraint"] == "budget" and v["weight"] == 100 for c in rejected for v in c["violated_constraints"])
    assert ranked[-len(rejected) :] == rejected
    assert {c["label"] for c in ranked if not c["rejected"]} <= {"promising", "under_test", "weak"}

    # One labelled summary in the chat, whose id the run stores.
    summaries = [m for m in await _messages(http, project_id) if "run_summary" in m["metadata"]]
    assert len(summaries) == 1
    summary = summaries[0]["metadata"]["run_summary"]
    assert summaries[0]["id"] == done["run_summary_message_id"]
    assert summaries[0]["role"] == "agent"
    assert summary["run_id"] == run["id"]
    assert summary["status"] == "COMPLETED"
    assert summary["links"]["results_view"] == f"/runs/{run['id']}"
    assert summary["summary_label"] in summaries[0]["content"]
    assert [t["candidate_id"] for t in summary["top_candidates"]] == [c["candidate_id"] for c in ranked[:3]]
    # Beside the seed's summary, the rejected candidates and where they broke the hard constraint.
    rejections = summaries[0]["metadata"]["run_rejections"]
    assert [r["candidate_id"] for r in rejections] == [c["candidate_id"] for c in rejected]
    assert all(f"Rejected: {r['title']}, broke budget in " in summaries[0]["content"] for r in rejections)

    statistics = (await http.get(f"/api/runs/{run['id']}/statistics")).json()
    assert statistics["coverage"] == 1.0
    assert statistics["missing_pairs"] == []
    assert statistics["hard_constraint_violations"] == len(rejected)
    assert statistics["top_candidate"]["candidate_id"] == ranked[0]["candidate_id"]
    evaluations = (await http.get(f"/api/runs/{run['id']}/evaluations", params={"page_size": 100})).json()
    assert len(evaluations["evaluations"]) == 18
    assert all(e["P"]["overall"] >= 0 and e["R"]["overall"] > 0 for e in evaluations["evaluations"])


async def test_eval_only_and_seeded_build_on_the_latest_run(http: httpx.AsyncClient) -> None:
    project_id = await _project(http)
    first = await _run(http, project_id, num_candidates=3, num_scenarios=2)
    seeds = [c["id"] for c in (await http.get(f"/api/runs/{first['id']}/candidates")).json()["candidates"]]

    evaluated = await _run(http, project_id, "eval_only", num_scenarios=2)
    seeded = await _run(http, project_id, "seeded", num_candidates=2, num_scenarios=2, seed_candidate_ids=seeds[:1])

    assert evaluated["status"] == seeded["status"] == "COMPLETED"
    assert evaluated["parameters"]["seed_candidate_ids"] == seeds
    copied = (await http.get(f"/api/runs/{evaluated['id']}/candidates")).json()["candidates"]
    assert [(c["origin"], c["source_candidate_id"]) for c in copied] == [("seed", s) for s in seeds]
    mixed = (await http.get(f"/api/runs/{seeded['id']}/candidates")).json()["candidates"]
    assert [c["origin"] for c in mixed] == ["seed", "designed", "designed"]
    usage = (await http.get("/api/usage", params={"run_id": evaluated["id"], "purpose": "design"})).json()
    assert usage["total"]["calls"] == 0
    runs = (await http.get(f"/api/projects/{project_id}/runs")).json()["runs"]
    assert [r["id"] for r in runs] == [seeded["id"], evaluated["id"], first["id"]]


async def test_the_websocket_relays_progress_until_the_summary(stack: Stack, http: httpx.AsyncClient) -> None:
    project_id = await _project(http)
    run = await _create(http, project_id, num_candidates=2, num_scenarios=2)
    await http.post(f"/api/runs/{run['id']}/full-pipeline")

    types = []
    async with websockets.connect(f"{stack.url.replace('http', 'ws')}/api/ws/runs/{run['id']}") as socket:
        async for frame in socket:
            event = json.loads(frame)
            types.append(event["type"])
            if event["type"] == "evaluation.completed":
                assert event["data"]["total"] == 4

    assert types[0] == "run.created"
    assert types.count("evaluation.completed") == 4
    assert types[-2:] == ["run.completed", "summary.posted"]


async def test_a_run_service_killed_mid_run_is_finished_elsewhere_paying_for_nothing_twice(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    """A second run service (a replica on the same database) takes a run, dies; the stack's own finishes it."""
    project_id = await _project(http)
    emulator = f"http://127.0.0.1:{stack.env['CRUCIBLE_EMULATOR_PORT']}"
    address = f"127.0.0.1:{free_port()}"
    # The stack's own environment (its database, agent and spec service), on another port.
    # Three evaluations at a time, so that the kill finds some stored, some in flight, some not begun.
    env = {**stack.env, "CRUCIBLE_RUN_ADDR": address, "CRUCIBLE_RUN_CONCURRENCY": "3"}
    replica = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "crucible_run.entrypoints.main",
        cwd=repo_root(),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    async with httpx.AsyncClient() as emulator_client:
        await emulator_client.put(f"{emulator}/emulator/config", json={"latency_ms": 150})
    try:
        import grpc

        from crucible.run.v1 import run_service_pb2 as rp
        from crucible.run.v1 import run_service_pb2_grpc as rg

        async with grpc.aio.insecure_channel(address) as channel:
            stub = rg.RunServiceStub(channel)
            await _serving(stub)
            created = await stub.CreateRun(
                rp.CreateRunRequest(
                    project_id=project_id,
                    mode=rp.RUN_MODE_FULL_SEARCH,
                    parameters=rp.RunParameters(num_candidates=5, num_scenarios=6),
                    ui_trigger_id=str(uuid.uuid4()),
                    ui_trigger_source=rp.TRIGGER_SOURCE_INTEGRATION_TEST,
                )
            )
            run_id = created.run.id
            await stub.ExecuteRun(rp.ExecuteRunRequest(run_id=run_id))
            # Kill it once some evaluations are stored and others are in flight.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                stored = (await http.get(f"/api/runs/{run_id}/evaluations", params={"page_size": 100})).json()
                if len(stored["evaluations"]) >= 8:
                    break
                await asyncio.sleep(0.05)
            replica.send_signal(signal.SIGKILL)
            await asyncio.wait_for(replica.wait(), 10)
        before = len(
            (await http.get(f"/api/runs/{run_id}/evaluations", params={"page_size": 100})).json()["evaluations"]
        )
        assert 0 < before < 30

        # The stack's run service claims it once the dead replica's lease lapses, and finishes it.
        done = await _finished(http, run_id, timeout=120)
    finally:
        if replica.returncode is None:
            replica.kill()
            await replica.wait()
        async with httpx.AsyncClient() as emulator_client:
            await emulator_client.put(f"{emulator}/emulator/config", json={"latency_ms": 0})

    assert done["status"] == "COMPLETED", done["failure_reason"]
    assert done["counts"]["evaluations"] == 30
    calls = (await http.get("/api/usage", params={"run_id": run_id, "purpose": "evaluation"})).json()["total"]
    # Every pair's evaluation was paid for exactly once, across both processes.
    assert calls["calls"] == 30
    summaries = [
        m for m in await _messages(http, project_id) if m["metadata"].get("run_summary", {}).get("run_id") == run_id
    ]
    assert len(summaries) == 1


async def test_an_unreliable_provider_never_yields_an_invented_score(stack: Stack, http: httpx.AsyncClient) -> None:
    project_id = await _project(http)
    emulator = f"http://127.0.0.1:{stack.env['CRUCIBLE_EMULATOR_PORT']}"
    faults = {"error_rate": 0.2, "rate_limit_rate": 0.2, "malformed_rate": 0.2, "seed": 7}
    async with httpx.AsyncClient() as emulator_client:
        assert (await emulator_client.put(f"{emulator}/emulator/config", json=faults)).status_code == 200
        try:
            run = await _run(http, project_id, num_candidates=4, num_scenarios=4)
        finally:
            await emulator_client.put(
                f"{emulator}/emulator/config", json={"error_rate": 0, "rate_limit_rate": 0, "malformed_rate": 0}
            )

    assert run["status"] in ("COMPLETED", "FAILED")
    if run["status"] == "FAILED":
        assert run["failure_reason"]
    evaluations = (await http.get(f"/api/runs/{run['id']}/evaluations", params={"page_size": 100})).json()[
        "evaluations"
    ]
    for evaluation in evaluations:
        if evaluation["status"] == "succeeded":
            assert evaluation["P"] is not None
            assert evaluation["R"] is not None
        else:
            assert (evaluation["P"], evaluation["R"]) == (None, None)
            assert evaluation["failure_reason"]
    failed = sum(1 for e in evaluations if e["status"] == "failed")
    assert run["counts"]["failed_evaluations"] == failed
    if failed:
        assert run["error_summary"].startswith(f"{failed} of {len(evaluations)} evaluations failed")
    # Retries were made and paid for, and show in the call log.
    usage = (await http.get("/api/usage", params={"run_id": run["id"]})).json()["total"]
    assert usage["failed_calls"] > 0


async def _serving(stub: Any) -> None:
    import grpc

    from crucible.run.v1 import run_service_pb2 as rp

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            await stub.GetRun(rp.GetRunRequest(run_id=str(uuid.uuid4())), timeout=1)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                return
        await asyncio.sleep(0.1)
    raise AssertionError("the replica did not start")
