"""The ``crucible`` command: ``crucible up`` runs the stack; the rest talks to the gateway."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from crucible_cli.api_client import ApiClient, ApiError
from crucible_common.settings import Settings

app = typer.Typer(help="Crucible: an AI-first workbench.", no_args_is_help=True, add_completion=False)
project_app = typer.Typer(help="Projects.", no_args_is_help=True)
app.add_typer(project_app, name="project")

console = Console()
errors = Console(stderr=True)


class Format(StrEnum):
    table = "table"
    json = "json"


FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]


def _client() -> ApiClient:
    return ApiClient()


def _call(method: str, path: str, **kwargs: Any) -> Any:
    client = _client()
    try:
        return client.request(method, path, **kwargs)
    except ApiError as exc:
        errors.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(1) from exc
    finally:
        client.close()


def _print_projects(projects: list[dict[str, Any]], fmt: Format) -> None:
    if fmt is Format.json:
        console.print_json(json.dumps(projects))
        return
    table = Table("id", "title", "description", "created")
    for p in projects:
        table.add_row(p["id"], p["title"], p["description"][:60], p["created_at"][:19].replace("T", " "))
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
    project = _call("POST", "/api/projects", json={"title": title, "description": description})
    if fmt is Format.json:
        console.print_json(json.dumps(project))
    else:
        _print_projects([project], fmt)


@project_app.command("list")
def project_list(
    page_size: Annotated[int, typer.Option(help="Projects per request.")] = 100,
    limit: Annotated[int, typer.Option(help="Stop after this many (0: all).")] = 0,
    fmt: FormatOption = Format.table,
) -> None:
    """List projects, newest first."""
    projects: list[dict[str, Any]] = []
    token = ""
    while True:
        page = _call("GET", "/api/projects", params={"page_size": page_size, "page_token": token})
        projects.extend(page["projects"])
        token = page["next_page_token"]
        if not token or (limit and len(projects) >= limit):
            break
    _print_projects(projects[:limit] if limit else projects, fmt)


@project_app.command("show")
def project_show(project_id: str, fmt: FormatOption = Format.table) -> None:
    """Show a project."""
    project = _call("GET", f"/api/projects/{project_id}")
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
    _call("DELETE", f"/api/projects/{project_id}")
    console.print(f"deleted {project_id}")


if __name__ == "__main__":
    app()
