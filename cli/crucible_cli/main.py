"""The ``crucible`` command: ``crucible up`` runs the stack; the rest talks to the gateway."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from crucible_cli.chat import chat
from crucible_cli.healthcheck import healthcheck
from crucible_cli.mcp import mcp
from crucible_cli.output import (
    Format,
    FormatOption,
    call,
    compact_table,
    console,
    errors,
    fit_id,
    fixed_column,
    id_column,
    text_column,
    when,
)
from crucible_cli.runs import run_app
from crucible_cli.snapshots import snapshot_app
from crucible_cli.specs import spec_app
from crucible_cli.sprints import sprint_app
from crucible_common.settings import Settings
from crucible_common.wording import counted

app = typer.Typer(help="Crucible: an AI-first workbench.", no_args_is_help=True, add_completion=False)
project_app = typer.Typer(help="Projects.", no_args_is_help=True)
app.add_typer(project_app, name="project")
agent_app = typer.Typer(help="Agent runs: several models answer, a judge picks.", no_args_is_help=True)
app.add_typer(agent_app, name="agent")
app.add_typer(spec_app, name="spec")
app.add_typer(sprint_app, name="sprint")
app.add_typer(run_app, name="run")
app.add_typer(snapshot_app, name="snapshot")
app.command("chat")(chat)
app.command("mcp")(mcp)
app.command("healthcheck")(healthcheck)


def _print_projects(projects: list[dict[str, Any]], fmt: Format) -> None:
    if fmt is Format.json:
        console.print_json(json.dumps(projects))
        return
    table = compact_table(id_column("project"), text_column("description"), fixed_column("created"))
    for p in projects:
        title = Text.assemble((p["title"], "bold"), "\n", p["id"])
        table.add_row(fit_id(title), Text(p["description"][:200]), when(p["created_at"])[:16])
    console.print(table)


@app.command()
def up() -> None:
    """Start the whole stack in the foreground (Ctrl-C stops it)."""
    from crucible_cli.supervisor import up as run_stack

    raise typer.Exit(run_stack(Settings()))


@project_app.command("create")
def project_create(
    title: str,
    description: Annotated[str, typer.Option("--description", "-d")] = "",
    fmt: FormatOption = Format.table,
) -> None:
    """Create a project."""
    project = call("POST", "/api/projects", json={"title": title, "description": description})
    if fmt is Format.json:
        console.print_json(json.dumps(project))
    else:
        _print_projects([project], fmt)


@project_app.command("list")
def project_list(
    page_size: Annotated[int, typer.Option(help="Projects per request.")] = 100,
    limit: Annotated[int, typer.Option(help="Stop after this many (0: all).")] = 0,
    include_replays: Annotated[
        bool,
        typer.Option(help="Also the projects made to replay snapshots (one per replay, and per snapshot of a suite)."),
    ] = False,
    fmt: FormatOption = Format.table,
) -> None:
    """List projects, newest first."""
    projects: list[dict[str, Any]] = []
    token = ""
    params: dict[str, Any] = {"page_size": page_size, "include_replays": include_replays}
    while True:
        page = call("GET", "/api/projects", params={**params, "page_token": token})
        projects.extend(page["projects"])
        token = page["next_page_token"]
        if not token or (limit and len(projects) >= limit):
            break
    _print_projects(projects[:limit] if limit else projects, fmt)


@project_app.command("show")
def project_show(project_id: str, fmt: FormatOption = Format.table) -> None:
    """Show a project."""
    project = call("GET", f"/api/projects/{project_id}")
    if fmt is Format.json:
        console.print_json(json.dumps(project))
        return
    table = Table(show_header=False)
    for key in ("id", "title", "description", "created_at", "updated_at"):
        table.add_row(key, str(project[key]))
    console.print(table)


@project_app.command("delete")
def project_delete(project_id: str) -> None:
    """Delete a project and everything in it."""
    call("DELETE", f"/api/projects/{project_id}")
    console.print(f"deleted {project_id}")


def _model_ref(value: str, option: str) -> dict[str, str]:
    provider, sep, model = value.partition(":")
    if not sep or not model:
        errors.print(f"[red]error:[/red] {option} takes PROVIDER:MODEL[:NAME], got {value!r}")
        raise typer.Exit(2)
    model, _, name = model.partition(":")
    ref = {"provider": provider, "model_name": model}
    if name:
        ref["name"] = name
    return ref


@agent_app.command("run")
def agent_run(
    message: str,
    subagent: Annotated[
        list[str] | None,
        typer.Option("--subagent", "-s", help="PROVIDER:MODEL[:NAME]; repeat for several (default: every provider)."),
    ] = None,
    judge: Annotated[str | None, typer.Option("--judge", "-j", help="PROVIDER:MODEL")] = None,
    project_id: Annotated[str, typer.Option(help="Correlate the run's usage with a project.")] = "",
    fmt: FormatOption = Format.table,
) -> None:
    """Run MESSAGE through several subagents in parallel and let a judge pick the best answer."""
    body: dict[str, Any] = {
        "message": message,
        "subagents": [_model_ref(s, "--subagent") for s in subagent or []],
        "correlation": {"project_id": project_id},
    }
    if judge:
        ref = _model_ref(judge, "--judge")
        ref.pop("name", None)
        body["judge"] = ref
    result = call("POST", "/api/agent-runs", json=body, timeout=900)
    if fmt is Format.json:
        console.print_json(json.dumps(result))
        return
    run, decision = result["run"], result["decision"]
    console.print(f"agent run [bold]{run['id']}[/bold]: {run['status']}")
    for candidate in result["candidates"]:
        chosen = decision and decision["candidate_id"] == candidate["id"]
        title = f"{'★ ' if chosen else ''}{candidate['name']} ({candidate['provider']}/{candidate['model_name']}, "
        title += f"{candidate['metrics'].get('duration_ms')} ms)"
        console.rule(title)
        console.print(candidate["output"], markup=False, highlight=False)
    for error in result["errors"]:
        console.print(f"[red]{error['name']} failed:[/red] {error['reason']}: {error['message']}")
    if decision:
        who = "fallback rule" if decision["fallback"] else f"judge {decision['provider']}/{decision['model_name']}"
        console.rule(f"decision by {who}")
        console.print(decision["rationale"], markup=False, highlight=False)
    console.print("checkpoints: " + ", ".join(cp["label"] for cp in result["checkpoints"]))


@app.command()
def usage(
    project_id: Annotated[str, typer.Option()] = "",
    run_id: Annotated[str, typer.Option()] = "",
    sprint_id: Annotated[str, typer.Option()] = "",
    agent_run_id: Annotated[str, typer.Option()] = "",
    fmt: FormatOption = Format.table,
) -> None:
    """Tokens, USD and calls, by model, for everything matching the given ids (all when none)."""
    params = {
        "project_id": project_id,
        "run_id": run_id,
        "sprint_id": sprint_id,
        "agent_run_id": agent_run_id,
    }
    report = call("GET", "/api/usage", params={k: v for k, v in params.items() if v})
    if fmt is Format.json:
        console.print_json(json.dumps(report))
        return
    # Model names are ids as well: they stay whole, and the USD column (with its unpriced note) folds.
    table = compact_table(
        fixed_column("provider"),
        fixed_column("model"),
        fixed_column("calls", justify="right"),
        fixed_column("in tokens", justify="right"),
        fixed_column("out tokens", justify="right"),
        text_column("USD"),
    )
    for row in report["by_model"]:
        u = row["usage"]
        cost = (
            f"{u['usd']:.6f}"
            if row["priced"]
            else f"{u['usd']:.6f} + unpriced ({counted(u['unpriced_calls'], 'call')})"
        )
        table.add_row(
            row["provider"],
            row["model_name"],
            str(u["calls"]),
            str(u["input_tokens"]),
            str(u["output_tokens"]),
            cost + _cancelled(u),
        )
    t = report["total"]
    total_cost = f"{t['usd']:.6f}" + _cancelled(t)
    table.add_row("total", "", str(t["calls"]), str(t["input_tokens"]), str(t["output_tokens"]), total_cost)
    console.print(table)


def _cancelled(usage: dict[str, Any]) -> str:
    """Calls abandoned mid-answer: maybe billed, for a cost that is not in the USD figure."""
    count = usage.get("cancelled_calls", 0)
    return f" + cancelled ({counted(count, 'call')}, cost unknown)" if count else ""


if __name__ == "__main__":
    app()
