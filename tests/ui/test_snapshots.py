"""Snapshots in the browser: a finished run snapshotted with invariants from the editor, shown with
its frozen copies, found by tag, and run as a suite under a cost limit, followed to its report."""

from __future__ import annotations

import re
import time
import uuid

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import UiStack, look

pytestmark = pytest.mark.system

DESCRIPTION = "We need a bridge across the river. The budget must stay under one million euros."


def finished_run(api: httpx.Client) -> str:
    """A completed run, set up through the API (the Run button has its own test)."""
    project = api.post("/api/projects", json={"title": "Snapshot source"}).json()
    session = api.post(f"/api/projects/{project['id']}/chat-sessions", json={"mode": "setup"}).json()
    turn = api.post(f"/api/chat-sessions/{session['id']}/turns", json={"content": DESCRIPTION})
    assert turn.status_code == 201, turn.text
    run = api.post(
        "/api/runs",
        json={
            "project_id": project["id"],
            "mode": "full_search",
            "parameters": {"num_candidates": 2, "num_scenarios": 2},
            "ui_trigger_id": str(uuid.uuid4()),
            "ui_trigger_source": "integration_test",
        },
    ).json()
    assert api.post(f"/api/runs/{run['id']}/full-pipeline").status_code == 200
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = api.get(f"/api/runs/{run['id']}").json()["status"]
        if status not in ("CREATED", "RUNNING"):
            assert status == "COMPLETED"
            return str(run["id"])
        time.sleep(0.3)
    raise AssertionError("the run did not finish")


def test_snapshot_a_run_and_run_a_suite(ui: Page, ui_stack: UiStack, api: httpx.Client) -> None:
    page = ui
    name = f"bridge baseline {uuid.uuid4().hex[:6]}"  # names are unique, and a stack may be reused
    run_id = finished_run(api)
    page.goto(f"{ui_stack.url}/runs/{run_id}")
    page.get_by_role("link", name="Snapshot this run").click()

    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Tags").fill("regression, bridge")
    page.get_by_role("button", name="Add invariant").click()
    page.get_by_label("Invariant 3 type").select_option("min_candidates")
    page.get_by_label("Invariant 3 value").fill("2")
    page.get_by_label("Invariant 3 description").fill("both designs survive")
    look(page, "snapshot-new")
    page.get_by_role("button", name="Create snapshot").click()

    expect(page.get_by_role("heading", name=f"Snapshot: {name}")).to_be_visible()
    expect(page.get_by_text("At least N candidates")).to_be_visible()
    # Each invariant says whether the run it was made from kept it: this one's 2 candidates do.
    expect(page.get_by_role("listitem").filter(has_text="both designs survive")).to_contain_text(
        "reference run: passed"
    )
    expect(page.get_by_role("heading", name="Frozen copies")).to_be_visible()
    look(page, "snapshot-show")

    # A recorded replay answers from the source run's calls, at $0, and checks the invariants.
    expect(page.get_by_label("Model answers")).to_have_value("recorded")
    page.get_by_role("button", name="Replay into a new project").click()
    replayed = page.locator(".replay-result")
    expect(replayed).to_contain_text("both designs survive", timeout=60_000)
    expect(replayed.get_by_role("link").first).to_be_visible()
    look(page, "snapshot-replayed")

    page.get_by_role("link", name="Snapshots", exact=True).click()
    # The tag field takes the filter row's room, up to its button (it stayed narrow once).
    row = page.get_by_role("search").bounding_box()
    field = page.get_by_label("Tags").bounding_box()
    button = page.get_by_role("button", name="Filter").bounding_box()
    assert row is not None
    assert field is not None
    assert button is not None
    assert field["width"] > 0.8 * (row["width"] - button["width"]), (row, field, button)
    page.get_by_label("Tags").fill("bridge")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"tags=bridge"))
    page.get_by_label(f"Select {name}").check()
    look(page, "snapshots-list")
    page.get_by_role("button", name="Run suite…").click()
    page.get_by_label("Cost limit (USD)").fill("0.50")
    expect(page.get_by_text(re.compile(r"Estimated cost: about \$"))).to_be_visible()
    page.get_by_role("button", name="Run suite", exact=True).click()

    expect(page.get_by_role("heading", name=re.compile("^Suite report"))).to_be_visible()
    expect(page.locator(".page-head .status").first).to_have_text("completed", timeout=120_000)
    # A suite that ran to its end says beside it whether its snapshots passed.
    expect(page.locator(".page-head .status").nth(1)).to_have_text(re.compile("^(passed|failed)$"))
    result = page.get_by_role("article", name=f"Result of {name}")
    expect(result).to_be_visible()
    expect(result).to_contain_text("both designs survive")
    expect(page.get_by_text("Cost limit")).to_be_visible()
    look(page, "snapshot-report")
