"""What every command shares: consoles, the output format option, and calling the gateway."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console

from crucible_cli.api_client import ApiClient, ApiError

console = Console()
errors = Console(stderr=True)


class Format(StrEnum):
    table = "table"
    json = "json"


FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]


def call(method: str, path: str, **kwargs: Any) -> Any:
    """One request to the gateway; a problem answer is printed and ends the command with 1."""
    client = ApiClient()
    try:
        return client.request(method, path, **kwargs)
    except ApiError as exc:
        errors.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(1) from exc
    finally:
        client.close()
