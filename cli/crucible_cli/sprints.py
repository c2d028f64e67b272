"""``crucible sprint …``: create, start (explicitly), watch live, cancel, list, and the artifacts."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Column, Table
from rich.text import Text

from crucible_cli.output import (
    ID_WIDTH,
    Format,
    FormatOption,
    call,
    compact_table,
    console,
    errors,
    fetch,
    fit_id,
    fixed_column,
    id_column,
    text_column,
    websocket_events,
    when,
    wide_id_column,
)
from crucible_common.wording import counted

sprint_app = typer.Typer(help="Sprints: a spec planned, coded and verified by an agent.", no_args_is_help=True)

PHASES = ("discovery", "coding", "verification")


def _show(sprint: dict[str, Any], fmt: Format) -> None:
    if fmt is Format.json:
        console.print_json(json.dumps(sprint))
        return
    table = Table(Column(style="bold"), Column(min_width=ID_WIDTH, overflow="fold"), show_header=False, box=box.SIMPLE)
    for key in ("id", "spec_id", "name", "status", "current_phase"):
        table.add_row(key, Text(str(sprint.get(key) or "—")))
    if sprint.get("failure_reason"):
        table.add_row("cancelled" if sprint["status"] == "cancelled" else "failure", Text(sprint["failure_reason"]))
    if sprint.get("trigger"):
        table.add_row("trigger", Text(f"{sprint['trigger']['source']}:{sprint['trigger']['id']}"))
    console.print(table)
    if sprint.get("phases"):
        phases = compact_table(fixed_column("phase"), fixed_column("status"), wide_id_column("agent run · summary"))
        for phase in sprint["phases"]:
            run = Text.assemble(
                phase["agent_run_id"] or "—", ("\n" + phase["summary"][:300] if phase["summary"] else "")
            )
            phases.add_row(f"{phase['phase']} #{phase['attempt']}", phase["status"], run)
        console.print(phases)


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
    last = 0

    def path() -> str:
        # A dropped connection resumes after the last event shown.
        return f"/api/ws/sprints/{sprint_id}?after={last}"

    for event in websocket_events(path, "the sprint's event stream"):
        last = event.get("sequence", last)
        _render(event)
    final = call("GET", f"/api/sprints/{sprint_id}")
    _show(final, Format.table)
    raise typer.Exit(0 if final["status"] == "completed" else 1)


@sprint_app.command("cancel")
def cancel(
    sprint_id: str,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Kept as the sprint's failure reason.")] = "",
    fmt: FormatOption = Format.table,
) -> None:
    """Cancel a planned or active sprint: its work stops, and no model call of it is made after this answers."""
    _show(call("POST", f"/api/sprints/{sprint_id}/cancel", json={"reason": reason}), fmt)


@sprint_app.command("list")
def list_sprints(
    spec_id: Annotated[str, typer.Option("--spec-id", help="Only this spec's sprints.")] = "",
    limit: Annotated[int, typer.Option(help="Stop after this many (0: all).")] = 0,
    fmt: FormatOption = Format.table,
) -> None:
    """List sprints, newest first."""
    sprints: list[dict[str, Any]] = []
    token = ""
    while True:
        params = {"spec_id": spec_id, "page_token": token} if spec_id else {"page_token": token}
        page = call("GET", "/api/sprints", params=params)
        sprints.extend(page["sprints"])
        token = page["next_page_token"]
        if not token or (limit and len(sprints) >= limit):
            break
    sprints = sprints[:limit] if limit else sprints
    if fmt is Format.json:
        console.print_json(json.dumps(sprints))
        return
    table = compact_table(id_column("sprint"), fixed_column("status"), fixed_column("phase"), fixed_column("created"))
    for sprint in sprints:
        name = Text.assemble((sprint["name"], "bold"), "\n", sprint["id"])
        table.add_row(fit_id(name), sprint["status"], sprint["current_phase"] or "—", when(sprint["created_at"])[:16])
    console.print(table)


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
    elif kind == "phase.cancelled":
        console.print(f"[yellow]■ {where}[/yellow] {data.get('summary', '')[:200]}")
    elif kind in ("sprint.completed", "sprint.failed", "sprint.cancelled"):
        colour = {"sprint.completed": "green", "sprint.cancelled": "yellow"}.get(kind, "red")
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
    download: Annotated[
        Path | None, typer.Option(help="Save every artifact under this directory (see `crucible sprint download`).")
    ] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """List a sprint's artifacts, or download them all."""
    if download is not None:
        _download(sprint_id, download)
        return
    listing = _all_artifacts(sprint_id)
    if fmt is Format.json:
        console.print_json(json.dumps(listing))
        return
    table = compact_table(text_column("path"), fixed_column("size", justify="right"))
    for artifact in listing["artifacts"]:
        table.add_row(Text(artifact["path"]), str(artifact["size"]))
    console.print(table)


@sprint_app.command("download")
def download(
    sprint_id: str,
    to: Annotated[
        Path | None,
        typer.Option("--to", help="The directory to save them under. Default: ~/Downloads/crucible/SPRINT_ID."),
    ] = None,
) -> None:
    """Save every artifact of a sprint, keeping their paths; outside your working tree unless you say where."""
    _download(sprint_id, to if to is not None else default_download_dir(sprint_id))


def default_download_dir(sprint_id: str) -> Path:
    """Where downloads go when no directory is given: never the current directory, often a repository."""
    return Path.home() / "Downloads" / "crucible" / sprint_id


def _download(sprint_id: str, directory: Path) -> None:
    listing = _all_artifacts(sprint_id)
    for artifact in listing["artifacts"]:
        target = directory / artifact["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(fetch(f"/api/sprints/{sprint_id}/artifacts/{artifact['path']}"))
        console.print(Text(f"saved {target}"))
    console.print(Text(f"{counted(len(listing['artifacts']), 'artifact')} in {directory}"))


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
