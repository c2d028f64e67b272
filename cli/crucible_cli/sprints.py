"""``crucible sprint …``: create, start (explicitly), watch live, list and download artifacts."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from websockets.sync.client import connect

from crucible_cli.api_client import ApiClient
from crucible_cli.output import Format, FormatOption, call, console, errors

sprint_app = typer.Typer(help="Sprints: a spec planned, coded and verified by an agent.", no_args_is_help=True)

PHASES = ("discovery", "coding", "verification")


def _show(sprint: dict[str, Any], fmt: Format) -> None:
    if fmt is Format.json:
        console.print_json(json.dumps(sprint))
        return
    table = Table(show_header=False)
    for key in ("id", "spec_id", "name", "status", "current_phase", "failure_reason"):
        table.add_row(key, str(sprint.get(key) or ""))
    if sprint.get("trigger"):
        table.add_row("trigger", f"{sprint['trigger']['source']}:{sprint['trigger']['id']}")
    for phase in sprint.get("phases", []):
        table.add_row(f"{phase['phase']} #{phase['attempt']}", f"{phase['status']}  {phase['summary'][:80]}")
    console.print(table)


@sprint_app.command("create")
def create(
    spec_id: str,
    name: Annotated[str, typer.Option("--name", "-n")],
    goal: Annotated[str, typer.Option("--goal", "-g")] = "",
    fmt: FormatOption = Format.table,
) -> None:
    """Create a PLANNED sprint for an answered spec (nothing runs until `crucible sprint start`)."""
    _show(call("POST", "/api/sprints", json={"spec_id": spec_id, "name": name, "goal": goal}), fmt)


@sprint_app.command("start")
def start(
    sprint_id: str,
    watch_it: Annotated[bool, typer.Option("--watch/--no-watch", help="Follow its progress live.")] = True,
    fmt: FormatOption = Format.table,
) -> None:
    """Start a sprint: this command is the explicit trigger (recorded with its id and source)."""
    body = {"ui_trigger_id": f"cli-{uuid.uuid4()}", "ui_trigger_source": "cli"}
    sprint = call("POST", f"/api/sprints/{sprint_id}/start", json=body)
    if not watch_it:
        _show(sprint, fmt)
        return
    watch(sprint_id)


@sprint_app.command("watch")
def watch(sprint_id: str) -> None:
    """Follow a sprint's phases, candidates, tool calls and outcome as they happen."""
    client = ApiClient()
    url = client.base_url.replace("http://", "ws://").replace("https://", "wss://") + f"/api/ws/sprints/{sprint_id}"
    headers = client.headers
    client.close()
    status = "unknown"
    try:
        with connect(url, additional_headers=headers, open_timeout=10) as ws:
            for raw in ws:
                event = json.loads(raw)
                status = _render(event) or status
    except OSError as exc:
        errors.print(f"[red]error:[/red] cannot follow the sprint at {url}: {exc}")
        raise typer.Exit(1) from exc
    final = call("GET", f"/api/sprints/{sprint_id}")
    _show(final, Format.table)
    raise typer.Exit(0 if final["status"] == "completed" else 1)


def _render(event: dict[str, Any]) -> str | None:
    kind, data = event.get("type", ""), event.get("data", {})
    if kind == "error":
        errors.print(f"[red]error:[/red] {event['problem'].get('detail')}")
        return None
    where = f"{data.get('phase', '')}" + (f" #{data['attempt']}" if data.get("attempt") else "")
    if kind == "phase.started":
        console.print(f"[bold]▶ {where}[/bold]")
    elif kind == "phase.completed":
        console.print(f"[green]✔ {where}[/green] {data.get('summary', '')[:100]}")
    elif kind == "phase.failed":
        console.print(f"[red]✘ {where}[/red] {data.get('summary', '')[:200]}")
    elif kind == "candidate.completed":
        ms = (data.get("metrics") or {}).get("duration_ms")
        console.print(f"  candidate {data.get('name')} ({data.get('provider', '')}) {ms} ms")
    elif kind == "candidate.failed":
        console.print(f"  [red]candidate {data.get('name')} failed: {data.get('reason')}[/red]")
    elif kind == "judge.decided":
        console.print(f"  judge chose {data.get('candidate_name')}: {str(data.get('rationale', ''))[:120]}")
    elif kind == "tool.called":
        mark = "[red]![/red]" if data.get("is_error") else "·"
        console.print(f"  {mark} {data.get('tool')} {data.get('path', '')}")
    elif kind in ("sprint.completed", "sprint.failed"):
        colour = "green" if kind == "sprint.completed" else "red"
        console.print(f"[{colour}]{kind}[/{colour}] {data.get('failure_reason', '')}")
        return str(kind).removeprefix("sprint.")
    return None


@sprint_app.command("show")
def show(sprint_id: str, fmt: FormatOption = Format.table) -> None:
    """Show a sprint with its phases."""
    _show(call("GET", f"/api/sprints/{sprint_id}"), fmt)


@sprint_app.command("artifacts")
def artifacts(
    sprint_id: str,
    download: Annotated[Path | None, typer.Option(help="Save every artifact under this directory.")] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """List a sprint's artifacts, or download them all."""
    listing = _all_artifacts(sprint_id)
    if download is not None:
        client = ApiClient()
        try:
            for artifact in listing["artifacts"]:
                target = download / artifact["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(client.raw("GET", f"/api/sprints/{sprint_id}/artifacts/{artifact['path']}"))
                console.print(f"saved {target}")
        finally:
            client.close()
        return
    if fmt is Format.json:
        console.print_json(json.dumps(listing))
        return
    table = Table("path", "size")
    for artifact in listing["artifacts"]:
        table.add_row(artifact["path"], str(artifact["size"]))
    console.print(table)


def _all_artifacts(sprint_id: str) -> dict[str, Any]:
    """Every page of the sprint's artifact listing, as one listing."""
    artifacts: list[dict[str, Any]] = []
    token = ""
    while True:
        page = call("GET", f"/api/sprints/{sprint_id}/artifacts", params={"page_token": token} if token else None)
        artifacts.extend(page["artifacts"])
        token = page.get("next_page_token", "")
        if not token:
            return {"artifacts": artifacts}
