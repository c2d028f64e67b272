"""Provider API keys stay secret: with keys planted in the environment, a chat turn, a run and a
sprint (with its sandboxed test runs) leave them in no log, span file, API answer, workspace file or
console line of the stack (the emulator stands in for the providers, which alone receive them)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.system.conftest import start_stack
from tests.system.test_runs import _project_fill, _run
from tests.system.test_sprint_workflow import _run_sprint, _spec

pytestmark = pytest.mark.system


@contextlib.contextmanager
def _emulator(port: int) -> Iterator[str]:
    """The emulator as the providers' stand-in, outside the stack (which has keys, so starts none)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRUCIBLE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "crucible_emulator"],
        env={**env, "CRUCIBLE_EMULATOR_PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


async def _answers(http: httpx.AsyncClient, project_id: str, run_id: str, sprint_id: str) -> list[str]:
    """What the API answers about everything the stack did, as text."""
    sessions = (await http.get(f"/api/projects/{project_id}/chat-sessions")).json()["chat_sessions"]
    paths = [
        "/api/projects",
        f"/api/projects/{project_id}",
        f"/api/projects/{project_id}/problem-spec",
        f"/api/projects/{project_id}/world-model",
        *(f"/api/chat-sessions/{s['id']}/messages" for s in sessions),
        f"/api/runs/{run_id}",
        f"/api/runs/{run_id}/results",
        f"/api/runs/{run_id}/evaluations",
        f"/api/runs/{run_id}/lineage",
        "/api/usage",
        "/api/llm-calls?page_size=1000",
        "/api/agent-runs",
        f"/api/sprints/{sprint_id}",
        f"/api/sprints/{sprint_id}/events",
        f"/api/sprints/{sprint_id}/artifacts",
        "/healthz",
    ]
    texts = [(await http.get(path)).text for path in paths]
    for artifact in (await http.get(f"/api/sprints/{sprint_id}/artifacts")).json()["artifacts"]:
        texts.append((await http.get(f"/api/sprints/{sprint_id}/artifacts/{artifact['path']}")).text)
    return texts


async def test_planted_provider_keys_appear_nowhere(stack_database_url: str, tmp_path: Path) -> None:
    keys = [f"sk-planted-{uuid.uuid4().hex}", f"sk-ant-planted-{uuid.uuid4().hex}"]
    state = tmp_path / "state"
    with _emulator(free_port()) as emulator:
        env = {
            "OPENAI_API_KEY": keys[0],
            "ANTHROPIC_API_KEY": keys[1],
            "CRUCIBLE_OPENAI_BASE_URL": f"{emulator}/openai/v1",
            "CRUCIBLE_ANTHROPIC_BASE_URL": f"{emulator}/anthropic",
            # Prompts and completions in spans too: the most a span file may hold.
            "CRUCIBLE_CAPTURE_PROMPTS": "1",
        }
        stack = start_stack(state, stack_database_url, keep_provider_keys=True, extra_env=env)
        try:
            async with httpx.AsyncClient(base_url=stack.url, timeout=30) as http:
                project_id = (await http.post("/api/projects", json={"title": "secrets"})).json()["id"]
                session = await http.post(f"/api/projects/{project_id}/chat-sessions", json={"title": "setup"})
                turn = await http.post(
                    f"/api/chat-sessions/{session.json()['id']}/turns",
                    json={"content": "We need a bridge; the budget must stay under one million."},
                    timeout=120,
                )
                assert turn.status_code == 201, turn.text
                await _project_fill(http, project_id)
                run = await _run(http, project_id, num_candidates=2, num_scenarios=2)
                spec = await _spec(http, "Write a Python program that prints hello world")
                sprint = await _run_sprint(http, spec["id"], "secrets")
                answers = await _answers(http, project_id, run["id"], sprint["id"])
        finally:
            assert stack.stop() == 0, "\n".join(stack.output)

    assert run["status"] == "COMPLETED"
    assert sprint["status"] == "completed"
    # The calls reached the providers' stand-in with the keys: they were in use, not ignored.
    usage = json.loads(next(a for a in answers if '"by_model"' in a))
    assert usage["total"]["calls"] > 0
    files = [p for p in state.rglob("*") if p.is_file() and "postgres" not in p.parts]
    assert any(p.suffix == ".jsonl" for p in files), "no span file was written"
    assert any(p.suffix == ".log" for p in files), "no log was written"
    places = {str(p): p.read_bytes().decode("utf-8", "replace") for p in files}
    places |= {f"answer {i}": text for i, text in enumerate(answers)}
    places["console"] = "\n".join(stack.output)
    leaks = sorted(where for where, text in places.items() for key in keys if key in text)
    assert leaks == []
