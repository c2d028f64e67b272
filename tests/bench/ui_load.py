"""ui_load: the web UI's project workspace with 200 chat messages and a 10 x 20 run, in headless chromium.

``workspace_to_interactive_ms``: from navigation to interactive — the 200 messages drawn, the
Run Config panel's preflight answered (its estimate shown), the latest run's progress bar up —
the median of five loads, each in a fresh browser context (an empty cache: a first visit);
target ≤ 1 s. The same with a warm cache (a reload) and for the run's matrix tab (10 x 20 cells)
are reported beside it. ``first_load_js_gzip_kb``: the JavaScript a first visit to ``/`` loads,
each file gzipped at level 6 (what a compressing proxy sends); target ≤ 300 kB.
"""

from __future__ import annotations

import gzip
import shutil
import statistics
import time
import uuid
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, Response, sync_playwright

from tests.bench.common import Result, stack

MESSAGES = 200
CANDIDATES = 10
SCENARIOS = 20
LOADS = 5
INTERACTIVE_BOUND_MS = 1000.0
JS_GZIP_BOUND_KB = 300.0

# Interactive: what a person needs before acting is there. Evaluated in the page each frame, it
# returns performance.now(), the milliseconds since the navigation started.
WORKSPACE_READY = f"""() => {{
  const messages = document.querySelectorAll(".messages > li.message").length;
  const estimate = document.querySelector(".run-config .estimate")?.textContent ?? "";
  const progress = document.querySelector(".live-run [role=progressbar]");
  return messages >= {MESSAGES} && estimate.startsWith("est.") && progress !== null ? performance.now() : null;
}}"""
MATRIX_READY = f"""() => document.querySelectorAll(".matrix .cell").length >= {CANDIDATES * SCENARIOS}
  ? performance.now() : null"""


def run() -> list[Result]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise RuntimeError("ui_load needs Debian's chromium: apt-get install chromium")
    # A wide pool of evaluations in flight: the run is set-up here, not what is measured.
    with stack(extra_env={"CRUCIBLE_RUN_CONCURRENCY": "50"}) as running:
        with httpx.Client(base_url=running.url, timeout=30) as api:
            project_id, run_id = _workspace(api)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium)
            try:
                cold, warm = _loads(browser, f"{running.url}/projects/{project_id}", WORKSPACE_READY)
                matrix, _ = _loads(browser, f"{running.url}/runs/{run_id}?tab=matrix", MATRIX_READY)
                first_js = _first_load_js_gzip(browser, f"{running.url}/")
            finally:
                browser.close()
    return [
        Result("ui_load", "workspace_to_interactive_ms", statistics.median(cold), "ms", INTERACTIVE_BOUND_MS),
        Result("ui_load", "workspace_to_interactive_ms_warm_cache", statistics.median(warm), "ms"),
        Result("ui_load", "run_matrix_to_interactive_ms", statistics.median(matrix), "ms"),
        Result("ui_load", "first_load_js_gzip_kb", first_js / 1000, "kB", JS_GZIP_BOUND_KB),
    ]


def _workspace(api: httpx.Client) -> tuple[str, str]:
    """A project with a ProblemSpec, a WorldModel, 200 chat messages and a completed 10 x 20 run."""
    project = _ok(api.post("/api/projects", json={"title": "ui_load", "description": "a river crossing"}))
    pid = project["id"]
    change = {"reason": "bench", "actor": {"kind": "user", "id": ""}}
    spec = {
        "constraints": [
            {"name": "budget", "description": "under one million euros", "weight": 100},
            {"name": "steel", "description": "use little steel", "weight": 60},
        ],
        "goals": [{"description": "carry commuters across the river"}],
        **change,
    }
    _ok(api.put(f"/api/projects/{pid}/problem-spec", json=spec))
    world = {"model_data": {"actors": [{"name": "commuters", "description": "cross daily"}]}, **change}
    _ok(api.put(f"/api/projects/{pid}/world-model", json=world))
    session = _ok(api.post(f"/api/projects/{pid}/chat-sessions", json={"mode": "setup", "title": "Setup"}))
    for index in range(MESSAGES):
        role = "user" if index % 2 == 0 else "agent"
        text = f"Message {index}: the bridge must carry commuters; steel is scarce and the budget is tight. " * 3
        _ok(api.post(f"/api/chat-sessions/{session['id']}/messages", json={"role": role, "content": text}))
    run = _ok(
        api.post(
            "/api/runs",
            json={
                "project_id": pid,
                "mode": "full_search",
                "parameters": {"num_candidates": CANDIDATES, "num_scenarios": SCENARIOS},
                "chat_session_id": session["id"],
                "ui_trigger_id": str(uuid.uuid4()),
                "ui_trigger_source": "integration_test",
            },
        )
    )
    _ok(api.post(f"/api/runs/{run['id']}/execute", json={"phases": "all"}))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        state = _ok(api.get(f"/api/runs/{run['id']}"))
        # Over once the summary is posted: the workspace then shows 201 messages and a finished run.
        if state["status"] not in ("CREATED", "RUNNING") and state["run_summary_message_id"]:
            if state["status"] != "COMPLETED":
                raise RuntimeError(f"the benchmark's run ended {state['status']}: {state['failure_reason']}")
            return pid, str(run["id"])
        time.sleep(0.5)
    raise RuntimeError("the benchmark's run did not finish in 300 s")


def _ok(response: httpx.Response) -> dict[str, Any]:
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def _loads(browser: Browser, url: str, ready: str) -> tuple[list[float], list[float]]:
    """Milliseconds to interactive: each load in a fresh context (cold), then a reload in it (warm)."""
    cold: list[float] = []
    warm: list[float] = []
    for _ in range(LOADS):
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            page = context.new_page()
            page.goto(url, wait_until="commit")
            cold.append(_interactive(page, ready))
            page.reload(wait_until="commit")
            warm.append(_interactive(page, ready))
        finally:
            context.close()
    return cold, warm


def _interactive(page: Page, ready: str) -> float:
    handle = page.wait_for_function(ready, polling="raf", timeout=30_000)
    value = handle.json_value()
    assert isinstance(value, float | int)
    return float(value)


def _first_load_js_gzip(browser: Browser, url: str) -> int:
    """Bytes of the JavaScript a first visit loads, each file gzipped."""
    context = browser.new_context()
    scripts: list[Response] = []
    try:
        page = context.new_page()
        page.on(
            "response",
            lambda response: scripts.append(response) if response.request.resource_type == "script" else None,
        )
        page.goto(url, wait_until="networkidle")
        return sum(len(gzip.compress(response.body(), compresslevel=6)) for response in scripts)
    finally:
        context.close()
