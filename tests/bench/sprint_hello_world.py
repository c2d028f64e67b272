"""sprint_hello_world: seed 002's whole workflow through the gateway, against the emulator at 200 ms.

Planning interview (two providers and a judge), answers, sprint, explicit start, Discovery,
Coding, Verification, until COMPLETED. The seed's budget for it is 300 s.
"""

from __future__ import annotations

import time

import httpx

from tests.bench.common import Result, stack

BUDGET_SECONDS = 300.0
TASK = "Create a Python script that prints 'hello world' to stdout."


def run() -> list[Result]:
    with (
        stack(extra_env={"CRUCIBLE_EMULATOR_LATENCY_MS": "200"}) as running,
        httpx.Client(base_url=running.url, timeout=300) as http,
    ):
        started = time.perf_counter()
        spec = http.post("/api/specs", json={"task": TASK, "max_questions": 3}).json()
        questions = spec["artifacts"]["planning"]["questions"]
        answers = [{"question": q["question"], "answer": "Keep it simple: print hello world."} for q in questions]
        http.post(f"/api/specs/{spec['id']}/answers", json={"answers": answers}).raise_for_status()
        sprint = http.post("/api/sprints", json={"spec_id": spec["id"], "name": "bench"}).json()
        trigger = {"ui_trigger_id": "bench", "ui_trigger_source": "bench"}
        http.post(f"/api/sprints/{sprint['id']}/start", json=trigger).raise_for_status()
        status = "active"
        while status == "active" and time.perf_counter() - started < BUDGET_SECONDS * 2:
            time.sleep(0.2)
            status = http.get(f"/api/sprints/{sprint['id']}").json()["status"]
        seconds = time.perf_counter() - started
    if status != "completed":
        raise RuntimeError(f"the sprint ended {status}")
    return [Result("sprint_hello_world", "wall_seconds", seconds, "s", BUDGET_SECONDS)]
