"""The `crucible` command against the real stack."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.system.conftest import Stack

pytestmark = pytest.mark.system


def crucible(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crucible_cli.main", *args],
        env={**stack.env, "CRUCIBLE_URL": stack.url, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_project_commands(stack: Stack) -> None:
    created = crucible(stack, "project", "create", "From the CLI", "-d", "made by a test", "--format", "json")
    assert created.returncode == 0, created.stderr
    project = json.loads(created.stdout)
    assert project["title"] == "From the CLI"

    listed = crucible(stack, "project", "list", "--format", "json", "--page-size", "2")
    assert project["id"] in [p["id"] for p in json.loads(listed.stdout)]

    table = crucible(stack, "project", "list")
    assert table.returncode == 0
    assert "From the CLI" in table.stdout

    shown = crucible(stack, "project", "show", project["id"])
    assert "made by a test" in shown.stdout

    assert crucible(stack, "project", "delete", project["id"]).returncode == 0
    missing = crucible(stack, "project", "show", project["id"])
    assert missing.returncode == 1
    assert "404 PROJECT_NOT_FOUND" in missing.stderr


def test_bad_input_and_unreachable_gateway_are_clear_errors(stack: Stack) -> None:
    empty = crucible(stack, "project", "create", "")
    assert empty.returncode == 1
    assert "400 VALIDATION_FAILED" in empty.stderr
    assert "title: must not be empty" in empty.stderr

    down = subprocess.run(
        [sys.executable, "-m", "crucible_cli.main", "project", "list"],
        env={**stack.env, "CRUCIBLE_URL": "http://127.0.0.1:9"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert down.returncode == 1
    assert "cannot reach the gateway" in down.stderr


def test_agent_run_and_usage_commands(stack: Stack) -> None:
    ran = crucible(
        stack,
        "agent",
        "run",
        "Write a function add(a, b) with pytest tests",
        "--subagent",
        "openai:gpt-4o-mini",
        "--subagent",
        "anthropic:claude-haiku-4-5",
        "--judge",
        "anthropic:claude-haiku-4-5",
        "--format",
        "json",
    )
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    assert len(result["candidates"]) == 2
    assert result["decision"]["provider"] == "anthropic"

    table = crucible(stack, "agent", "run", "Summarise the plan", "-s", "openai:gpt-4o-mini")
    assert table.returncode == 0, table.stderr
    assert "decision by fallback rule" in table.stdout
    assert "checkpoints: start, candidate:openai, decision" in table.stdout

    usage = crucible(stack, "usage", "--agent-run-id", result["run"]["id"], "--format", "json")
    assert json.loads(usage.stdout)["total"]["calls"] == 3
    assert "gpt-4o-mini" in crucible(stack, "usage").stdout

    bad = crucible(stack, "agent", "run", "x", "--subagent", "nonsense")
    assert bad.returncode == 2
    assert "PROVIDER:MODEL" in bad.stderr
