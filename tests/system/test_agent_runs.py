"""Agent runs through the gateway, with no API keys: both SDKs reach the offline emulator."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.system


async def test_agent_run_with_two_providers_a_judge_and_its_usage(http: httpx.AsyncClient) -> None:
    body = {
        "message": "Create a Python script that prints 'hello world' to stdout.",
        "subagents": [
            {"name": "openai", "provider": "openai", "model_name": "gpt-4o-mini"},
            {"name": "anthropic", "provider": "anthropic", "model_name": "claude-haiku-4-5"},
        ],
        "judge": {"provider": "openai", "model_name": "gpt-4o-mini"},
        "metadata": {"phase": "discovery"},
    }
    response = await http.post("/api/agent-runs", json=body, timeout=120)
    assert response.status_code == 201, response.text
    result = response.json()
    run = result["run"]
    assert run["status"] == "completed"
    assert run["metadata"] == {"phase": "discovery"}
    candidates = result["candidates"]
    assert sorted(c["provider"] for c in candidates) == ["anthropic", "openai"]
    for candidate in candidates:
        assert candidate["model_name"]
        assert candidate["output"]
        assert "duration_ms" in candidate["metrics"]
    decision = result["decision"]
    assert decision["candidate_id"] in {c["id"] for c in candidates}
    assert decision["rationale"]
    assert (decision["provider"], decision["model_name"], decision["fallback"]) == ("openai", "gpt-4o-mini", False)
    labels = [cp["label"] for cp in result["checkpoints"]]
    assert labels[0] == "start"
    assert {"candidate:openai", "candidate:anthropic"} <= set(labels)
    assert labels[-1] == "decision"
    assert [cp["sequence"] for cp in result["checkpoints"]] == list(range(1, len(labels) + 1))
    assert result["errors"] == []

    fetched = await http.get(f"/api/agent-runs/{run['id']}")
    assert fetched.json() == result

    usage = (await http.get("/api/usage", params={"agent_run_id": run["id"]})).json()
    assert usage["total"]["calls"] == 3
    assert usage["total"]["input_tokens"] > 0
    assert usage["total"]["output_tokens"] > 0
    assert usage["total"]["usd"] > 0
    assert {m["model_name"] for m in usage["by_model"]} == {"gpt-4o-mini", "claude-haiku-4-5"}
    assert all(m["priced"] for m in usage["by_model"])

    fork = await http.post(
        f"/api/agent-runs/{run['id']}/fork",
        json={"checkpoint_label": "decision", "label": "same again", "reason": "check a fork from the end"},
    )
    assert fork.status_code == 201, fork.text
    assert fork.json()["run"]["fork_of"]["run_id"] == run["id"]
    assert fork.json()["decision"]["candidate_name"] == decision["candidate_name"]


async def test_agent_run_errors_are_problem_bodies(http: httpx.AsyncClient) -> None:
    bad = await http.post(
        "/api/agent-runs", json={"message": "x", "subagents": [{"provider": "mistral", "model_name": "m"}]}
    )
    assert bad.status_code == 400
    missing = await http.get("/api/agent-runs/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert missing.json()["reason"] == "AGENT_RUN_NOT_FOUND"
    no_checkpoint = await http.post(
        "/api/agent-runs/00000000-0000-0000-0000-000000000000/fork", json={"checkpoint_label": "start"}
    )
    assert no_checkpoint.status_code == 404
