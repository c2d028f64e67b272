"""The work every fault lands on, started through the gateway as a user would, and what must survive it.

Per fault: two pipeline runs (3 candidates x 4 scenarios), one sprint to ``hello.py`` and one
snapshot suite (its replay is a third run, on the snapshot service's lease). Each is a piece of
work that must end — completed, or failed with its reason — with nothing missing and nothing done
twice: every candidate x scenario pair evaluated once, one summary message per run, the sprint's
artifact in place, the suite's report whole.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.system.test_runs import CONSTRAINTS, GOALS, WORLD

CANDIDATES = 3
SCENARIOS = 4
PAIRS = CANDIDATES * SCENARIOS
RUNS = 2

HELLO = "Write a Python program that prints hello world"
# Nothing the faults may change: the replay is the same size as its source, and it ends.
INVARIANTS = [
    {"type": "min_candidates", "value": CANDIDATES},
    {"type": "min_scenarios", "value": SCENARIOS},
]

Json = dict[str, Any]


class Retrying(httpx.AsyncClient):
    """A client that rides out a gateway being restarted: connection errors and 502/503 are retried."""

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = await super().send(request, **kwargs)
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            else:
                if response.status_code not in (502, 503) or time.monotonic() > deadline:
                    return response
            await asyncio.sleep(0.2)


async def _ok(response: httpx.Response, status: int = 200) -> Json:
    if response.status_code != status:
        raise AssertionError(
            f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
        )
    body: Json = response.json()
    return body


@dataclass(frozen=True)
class Fixtures:
    """Made once per stack: a project ready to run, a planned spec, a snapshot of a completed run."""

    project_id: str
    spec_id: str
    snapshot_id: str

    @classmethod
    async def make(cls, http: httpx.AsyncClient) -> Fixtures:
        project = await _ok(await http.post("/api/projects", json={"title": "Chaos", "description": "a bridge"}), 201)
        project_id = project["id"]
        await _ok(
            await http.put(
                f"/api/projects/{project_id}/problem-spec", json={"constraints": CONSTRAINTS, "goals": GOALS}
            )
        )
        await _ok(await http.put(f"/api/projects/{project_id}/world-model", json={"model_data": WORLD}))
        spec = await _ok(await http.post("/api/specs", json={"task": HELLO, "title": "hello", "max_questions": 3}), 201)
        questions = spec["artifacts"]["planning"]["questions"]
        answers = [{"question": q["question"], "answer": "Print hello world; keep it simple."} for q in questions]
        await _ok(await http.post(f"/api/specs/{spec['id']}/answers", json={"answers": answers}))
        run_id = await _start_run(http, project_id)
        run = await _ended_run(http, run_id, 120)
        if run is None or run["status"] != "COMPLETED":
            raise AssertionError(f"the baseline run did not complete: {run}")
        snapshot = await _ok(
            await http.post(
                "/api/snapshots",
                json={"project_id": project_id, "run_id": run_id, "name": "chaos baseline", "invariants": INVARIANTS},
            ),
            201,
        )
        return cls(project_id, spec["id"], snapshot["id"])


@dataclass
class Outcome:
    """How one fault's work ended."""

    started: int = 0
    completed: int = 0
    failed: int = 0
    lost: int = 0
    # Why each failed piece of work failed, and what was missing or doubled in a lost one.
    failures: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class Workload:
    run_ids: list[str]
    sprint_id: str
    report_id: str

    @classmethod
    async def start(cls, http: httpx.AsyncClient, fixtures: Fixtures) -> Workload:
        run_ids = [await _start_run(http, fixtures.project_id) for _ in range(RUNS)]
        sprint = await _ok(await http.post("/api/sprints", json={"spec_id": fixtures.spec_id, "name": "chaos"}), 201)
        trigger = {"ui_trigger_id": str(uuid.uuid4()), "ui_trigger_source": "api"}
        await _ok(await http.post(f"/api/sprints/{sprint['id']}/start", json=trigger))
        suite = {"snapshot_ids": [fixtures.snapshot_id], "wait": False, "ui_trigger_id": str(uuid.uuid4())}
        report = await _ok(await http.post("/api/snapshots/run-tests", json=suite), 202)
        return cls(run_ids, sprint["id"], report["report_id"])

    async def under_way(self, http: httpx.AsyncClient, timeout: float = 60) -> None:
        """Until every run has stored part (not all) of its evaluations and the sprint is working."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stored = [len(await _evaluations(http, r)) for r in self.run_ids]
            sprint = await _ok(await http.get(f"/api/sprints/{self.sprint_id}"))
            if min(stored) >= 1 and sprint["status"] == "active":
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"the work did not get under way in {timeout:.0f}s")

    async def outcome(self, http: httpx.AsyncClient, timeout: float) -> Outcome:
        """Wait for every piece of work to end (up to ``timeout``), then check what each left behind."""
        deadline = time.monotonic() + timeout
        out = Outcome(started=len(self.run_ids) + 2)
        summaries = await _summaries_by_run(http, self.run_ids, deadline)
        for run_id in self.run_ids:
            run = await _ended_run(http, run_id, deadline - time.monotonic())
            _tally(out, f"run {run_id}", run, "failure_reason")
            if run is not None:
                out.problems += await _run_problems(http, run, summaries.get(run_id, 0))
        sprint = await _ended_sprint(http, self.sprint_id, deadline - time.monotonic())
        _tally(out, f"sprint {self.sprint_id}", sprint, "failure_reason")
        if sprint is not None and sprint["status"] == "completed":
            listing = await _ok(await http.get(f"/api/sprints/{self.sprint_id}/artifacts"))
            if "hello.py" not in [a["path"] for a in listing["artifacts"]]:
                out.problems.append(f"sprint {self.sprint_id}: completed without hello.py")
        report = await _ended_report(http, self.report_id, deadline - time.monotonic())
        _tally(out, f"suite {self.report_id}", report and {**report, "reason": _report_reason(report)}, "reason")
        if report is not None:
            out.problems += await _report_problems(http, report)
        # A piece of work is lost once, however many of its results are missing or doubled.
        out.lost = len({problem.split(":")[0] for problem in out.problems})
        return out


def _tally(out: Outcome, what: str, work: Json | None, reason_field: str) -> None:
    if work is None:
        out.problems.append(f"{what}: did not end")
    elif work["status"].lower() == "completed":
        out.completed += 1
    elif work[reason_field]:
        out.failed += 1
        out.failures.append(f"{what}: {work[reason_field]}")
    else:
        # A failure without its reason loses what a person needs to act on it.
        out.problems.append(f"{what}: {work['status']} without a reason")


async def _start_run(http: httpx.AsyncClient, project_id: str) -> str:
    run = await _ok(
        await http.post(
            "/api/runs",
            json={
                "project_id": project_id,
                "mode": "full_search",
                "parameters": {"num_candidates": CANDIDATES, "num_scenarios": SCENARIOS},
                "ui_trigger_id": str(uuid.uuid4()),
                "ui_trigger_source": "integration_test",
            },
        ),
        201,
    )
    await _ok(await http.post(f"/api/runs/{run['id']}/full-pipeline"))
    run_id: str = run["id"]
    return run_id


async def _evaluations(http: httpx.AsyncClient, run_id: str) -> list[Json]:
    page = await _ok(await http.get(f"/api/runs/{run_id}/evaluations", params={"page_size": 100}))
    evaluations: list[Json] = page["evaluations"]
    return evaluations


async def _until(probe: Any, timeout: float) -> Json | None:
    deadline = time.monotonic() + max(timeout, 0)
    while True:
        found: Json | None = await probe()
        if found is not None or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.25)


async def _ended_run(http: httpx.AsyncClient, run_id: str, timeout: float) -> Json | None:
    async def probe() -> Json | None:
        run = await _ok(await http.get(f"/api/runs/{run_id}"))
        ended = run["status"] in ("COMPLETED", "FAILED", "CANCELLED") and run["run_summary_message_id"]
        return run if ended else None

    return await _until(probe, timeout)


async def _ended_sprint(http: httpx.AsyncClient, sprint_id: str, timeout: float) -> Json | None:
    async def probe() -> Json | None:
        sprint = await _ok(await http.get(f"/api/sprints/{sprint_id}"))
        return sprint if sprint["status"] in ("completed", "failed", "cancelled") else None

    return await _until(probe, timeout)


async def _ended_report(http: httpx.AsyncClient, report_id: str, timeout: float) -> Json | None:
    async def probe() -> Json | None:
        report = await _ok(await http.get(f"/api/snapshot-reports/{report_id}"))
        return report if report["status"] in ("completed", "failed", "cancelled") else None

    return await _until(probe, timeout)


def _report_reason(report: Json) -> str:
    reasons = [report["error"]] + [f"{r['snapshot_id']}: {r['reason']}" for r in report["results"] if r["reason"]]
    return "; ".join(r for r in reasons if r)


async def _summaries_by_run(http: httpx.AsyncClient, run_ids: list[str], deadline: float) -> dict[str, int]:
    """How many run-summary messages each run posted, once every run has ended (or the time is up)."""
    for run_id in run_ids:
        await _ended_run(http, run_id, deadline - time.monotonic())
    project_id = (await _ok(await http.get(f"/api/runs/{run_ids[0]}")))["project_id"]
    counts: dict[str, int] = {}
    sessions = (await _ok(await http.get(f"/api/projects/{project_id}/chat-sessions")))["chat_sessions"]
    for session in sessions:
        token = ""
        while True:
            params: dict[str, str | int] = {"page_size": 100, **({"page_token": token} if token else {})}
            page = await _ok(await http.get(f"/api/chat-sessions/{session['id']}/messages", params=params))
            for message in page["chat_messages"]:
                summary = (message.get("metadata") or {}).get("run_summary")
                if summary:
                    counts[summary["run_id"]] = counts.get(summary["run_id"], 0) + 1
            token = page.get("next_page_token") or ""
            if not token or not page["chat_messages"]:
                break
    return counts


async def _run_problems(http: httpx.AsyncClient, run: Json, summaries: int) -> list[str]:
    problems = []
    if summaries != 1:
        problems.append(f"run {run['id']}: {summaries} summary messages (one expected)")
    if run["status"] != "COMPLETED":
        return problems
    evaluations = await _evaluations(http, run["id"])
    pairs = [(e["candidate_id"], e["scenario_id"]) for e in evaluations]
    if len(set(pairs)) != len(pairs):
        problems.append(f"run {run['id']}: {len(pairs) - len(set(pairs))} pairs evaluated twice")
    if len(set(pairs)) != PAIRS:
        problems.append(f"run {run['id']}: {len(set(pairs))} of {PAIRS} pairs evaluated")
    return problems


async def _report_problems(http: httpx.AsyncClient, report: Json) -> list[str]:
    problems: list[str] = []
    if report["status"] != "completed":
        return problems
    for result in report["results"]:
        if result["status"] not in ("passed", "failed"):
            problems.append(f"suite {report['id']}: snapshot {result['snapshot_id']} {result['status']}")
            continue
        if result["status"] == "failed" and not result.get("reason") and not result.get("invariants"):
            problems.append(f"suite {report['id']}: a failure without its reason")
    return problems
