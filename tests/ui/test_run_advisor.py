"""Seed 001's browser checklist, in chromium over the real stack and the emulator.

Ask to run in chat → a recommendation card → "Use these settings" → Run → live progress → the
post-run summary card → results; and a run asked for with nothing described: the blockers in the
chat and in the Run Config panel, and the Run button disabled. No run exists before Run is pressed.
"""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import look

pytestmark = pytest.mark.system

DESCRIPTION = (
    "We need a bridge across the river. The budget must stay under one million euros. "
    "Commuters cross the river every day. Steel is a scarce resource."
)


def new_project(page: Page, title: str, *, keyboard: bool = False) -> str:
    if keyboard:
        # Keyboard alone: skip link, tab to "New project", type, Enter submits. The first Tab waits
        # for the app to be drawn: pressed before, it lands on whatever the bare page has.
        button = page.get_by_role("button", name="New project")
        expect(button).to_be_visible()
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
        for _ in range(10):
            page.keyboard.press("Tab")
            if button.evaluate("node => node === document.activeElement"):
                break
        page.keyboard.press("Enter")
        expect(page.get_by_label("Title")).to_be_focused()
        page.keyboard.type(title)
        page.keyboard.press("Enter")
    else:
        page.get_by_role("button", name="New project").click()
        page.get_by_label("Title").fill(title)
        page.get_by_label("Description").fill("a river crossing")
        page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()
    match = re.search(r"/projects/([^/?#]+)", page.url)
    assert match, page.url
    return match.group(1)


def say(page: Page, text: str) -> None:
    agent_messages = page.locator(".message-agent:not(.message-streaming)")
    before = agent_messages.count()
    page.get_by_label("Message to the Architect").fill(text)
    page.get_by_role("button", name="Send").click()
    expect(agent_messages).to_have_count(before + 1, timeout=60_000)


def test_ask_to_run_use_the_settings_run_and_read_the_results(ui: Page, api: httpx.Client) -> None:
    page = ui
    look(page, "projects-empty")
    project_id = new_project(page, "Bridge")

    say(page, DESCRIPTION)
    problem = page.get_by_role("region", name="Problem")
    expect(problem.locator(".badge-hard").first).to_be_visible()
    # An inline edit, then its place in the provenance timeline beside the Architect's changes.
    problem.get_by_placeholder("Add a goal").fill("keep the river open to boats")
    problem.get_by_placeholder("Add a goal").press("Enter")
    expect(problem.locator(".goals")).to_contain_text("keep the river open to boats")
    problem.get_by_role("button", name="History").first.click()
    history = problem.get_by_role("list", name="ProblemSpec history")
    expect(history).to_contain_text("edited in the web UI")
    expect(history).to_contain_text("Architect")
    # A change's note is shown as it is: the Architect's quotes the message once, not inside quotes.
    expect(history).to_contain_text("Architect, from the chat: “We need a bridge")
    expect(history).not_to_contain_text("””")
    look(page, "workspace-history")
    say(page, "Great, let's run it.")

    card = page.get_by_role("region", name="Run recommendation").last
    expect(card).to_contain_text("ready")
    expect(card).to_contain_text("Estimated cost")
    expect(page.locator(".message-agent").last).to_contain_text("Run button")
    look(page, "workspace-recommendation")
    assert api.get(f"/api/projects/{project_id}/runs").json()["runs"] == [], "a run started without the Run button"

    card.get_by_role("button", name="Use these settings").click()
    panel = page.get_by_role("region", name="Run Config")
    expect(panel.get_by_text("Architect-suggested")).to_be_visible()
    run_button = panel.get_by_role("button", name="Run", exact=True)
    expect(run_button).to_be_enabled()
    assert api.get(f"/api/projects/{project_id}/runs").json()["runs"] == []

    # A double click, as a hurried user gives: one run (counted below), said beside the button.
    run_button.dblclick()
    expect(panel.get_by_role("status")).to_contain_text(re.compile(r"Started run \w{8} with these settings"))
    live = page.get_by_role("region", name="Latest run")
    expect(live.get_by_role("progressbar", name="Evaluations")).to_be_visible()
    expect(live.get_by_text("completed")).to_be_visible(timeout=90_000)

    summary = page.locator(".card-summary")
    expect(summary).to_contain_text(re.compile(r"Run \w{8} summary"), timeout=30_000)
    # The emulator's last design of three counts on breaking the hard budget: the card names it.
    expect(summary.get_by_role("list", name="Rejected candidates")).to_contain_text(
        re.compile(r"Rejected: .+, broke \S+ in 3 of 3 scenarios")
    )
    look(page, "workspace-summary")

    runs = api.get(f"/api/projects/{project_id}/runs").json()["runs"]
    assert len(runs) == 1
    run = runs[0]
    assert run["ui_trigger_source"] == "run_config_panel"
    assert run["recommended_message_id"]
    assert run["status"] == "COMPLETED", run["failure_reason"]

    summary.get_by_role("link", name="View results").click()
    expect(page).to_have_url(re.compile(f"/runs/{run['id']}"))
    expect(page.get_by_role("heading", name=re.compile("^Run "))).to_be_visible()
    # An ended run opens on its results; the header names its project.
    expect(page.get_by_role("tab", name="Results")).to_have_attribute("aria-selected", "true")
    expect(page.locator(".run-header").get_by_role("link", name="Bridge")).to_be_visible()
    # The emulator's last design of three counts on breaking the hard budget: rejected, saying where.
    expect(page.locator(".row-rejected").first).to_contain_text(re.compile(r"broke \S+ in 3 of 3 scenarios"))
    look(page, "run-results-opened")
    for tab in ("Progress", "Results", "Matrix", "Candidates", "Scenarios", "Lineage"):
        page.get_by_role("tab", name=tab).click()
        expect(page.get_by_role("tab", name=tab)).to_have_attribute("aria-selected", "true")
        expect(page.get_by_role("tabpanel")).not_to_contain_text("Loading")
        look(page, f"run-{tab.lower()}")

    page.get_by_role("tab", name="Results").click()
    ranked = page.locator(".results tbody tr td:nth-child(2) button").all_inner_texts()
    page.locator(".results tbody button").first.click()
    expect(page.get_by_role("heading", name="Evaluations")).to_be_visible()
    page.get_by_role("tab", name="Matrix").click()
    # The matrix lists the candidates as Results ranks them, best first.
    expect(page.locator(".matrix tbody th")).to_have_text(ranked)
    page.locator(".matrix .cell:not([disabled])").first.click()
    expect(page.get_by_text("Raw answer")).to_be_visible()

    # A narrow window: the workspace's panes stack, the run's tables scroll.
    page.set_viewport_size({"width": 420, "height": 800})
    look(page, "run-matrix-narrow")
    page.goto(f"{page.url.split('/runs/')[0]}/projects/{project_id}")
    expect(page.get_by_role("region", name="Run Config")).to_be_visible()
    look(page, "workspace-narrow")


def test_asking_to_run_with_nothing_described_shows_the_blockers_and_run_stays_disabled(
    ui: Page, api: httpx.Client
) -> None:
    page = ui
    project_id = new_project(page, "Empty", keyboard=True)

    say(page, "Run it now please.")

    card = page.get_by_role("region", name="Run recommendation").last
    expect(card).to_contain_text("blocked")
    expect(card.locator(".blockers li")).to_have_count(2)
    panel = page.get_by_role("region", name="Run Config")
    expect(panel.locator(".blockers li")).to_have_count(2)
    expect(panel.get_by_role("button", name="Run", exact=True)).to_be_disabled()
    card.get_by_role("button", name="Use these settings").click()
    expect(panel.get_by_role("button", name="Run", exact=True)).to_be_disabled()
    look(page, "workspace-blocked")
    assert api.get(f"/api/projects/{project_id}/runs").json()["runs"] == []

    # Deleting asks first.
    page.get_by_role("link", name="Projects", exact=True).click()
    page.get_by_role("button", name="Delete Empty").click()
    dialog = page.get_by_role("dialog", name="Delete “Empty”?")
    expect(dialog).to_be_visible()
    look(page, "project-delete-confirm")
    dialog.get_by_role("button", name="Delete project").click()
    expect(page.get_by_role("link", name="Empty", exact=True)).to_have_count(0)
    assert api.get(f"/api/projects/{project_id}").status_code == 404


def test_usage_breaks_the_cost_down_by_project_then_by_run(ui: Page, api: httpx.Client) -> None:
    """After the run above: the project is among the usage by project; picking it lists its run."""
    page = ui
    runs = [
        r
        for p in api.get("/api/projects").json()["projects"]
        for r in api.get(f"/api/projects/{p['id']}/runs").json()["runs"]
    ]
    assert runs, "the test above made a run"
    page.get_by_role("link", name="Usage").click()
    by_project = page.get_by_role("table", name="Usage by project")
    expect(by_project.get_by_role("button", name="Bridge").first).to_be_visible()
    by_project.get_by_role("button", name="Bridge").first.click()
    by_run = page.get_by_role("table", name="Usage by run")
    expect(by_run).to_contain_text(runs[0]["id"][:8])
    look(page, "usage-by-run")
    # Each of the latest calls names what it was made for, and leads there.
    calls = page.get_by_role("table", name="Latest calls")
    calls.get_by_role("link", name=f"run {runs[0]['id'][:8]}").first.click()
    expect(page).to_have_url(re.compile(f"/runs/{runs[0]['id']}$"))


def test_the_runs_are_asked_about_in_an_analysis_session_beside_the_setup_chat(ui: Page, api: httpx.Client) -> None:
    """After the run above: the workspace's chat switches to an analysis session, where the Architect
    is given the project's runs, and back to the setup conversation, which is where it was."""
    page = ui
    project = next(p for p in api.get("/api/projects").json()["projects"] if p["title"] == "Bridge")
    (run,) = api.get(f"/api/projects/{project['id']}/runs").json()["runs"]
    page.get_by_role("link", name="Projects", exact=True).click()
    page.get_by_role("link", name="Bridge", exact=True).click()
    chat = page.get_by_role("region", name="Chat with the Architect")
    expect(chat.locator(".card-summary")).to_be_visible()

    chat.get_by_label("Analysis").check()
    expect(chat.get_by_text("Ask about the project's runs")).to_be_visible()
    say(page, "Which candidate was best in the last run?")
    expect(chat.locator(".message-agent").last).to_contain_text(f"In run {run['id'][:8]}")
    expect(chat.locator(".card-summary")).to_have_count(0)
    look(page, "workspace-analysis")

    chat.get_by_label("Setup").check()
    expect(chat.locator(".card-summary")).to_be_visible()
    sessions = api.get(f"/api/projects/{project['id']}/chat-sessions").json()["chat_sessions"]
    assert sorted(s["mode"] for s in sessions) == ["analysis", "setup"]
