"""What every command shares: consoles, the output format option, calling the gateway (REST and
WebSocket), and how money, scores and run parameters read."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console, JustifyMethod
from rich.table import Column, Table
from rich.text import Text
from websockets.exceptions import ConnectionClosedError, InvalidHandshake
from websockets.sync.client import connect

from crucible_cli.api_client import ApiClient, ApiError
from crucible_common.wording import broke, counted

console = Console()
errors = Console(stderr=True)


class Format(StrEnum):
    table = "table"
    json = "json"


FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
# A dropped WebSocket is reopened this many times in a row at most (with no new event between).
RECONNECTS = 3
# The pause before reopening a dropped stream, doubled for each drop in a row (a service restarting).
RECONNECT_PAUSE_SECONDS = 0.5
MAX_RECONNECT_PAUSE_SECONDS = 4.0
# An idempotent request left unanswered (no status: the gateway unreachable; or a service away, or
# too slow, behind it) is sent again this many times.
UNANSWERED: frozenset[int | None] = frozenset({None, 502, 503, 504})
UNANSWERED_RETRIES = 2
# The close code of a server (or proxy) that is going away: the stream did not end, its server did.
GOING_AWAY = 1001


def call(method: str, path: str, *, exit_code: int = 1, idempotent: bool = False, **kwargs: Any) -> Any:
    """One request to the gateway; a problem answer is printed and ends the command with ``exit_code``.

    ``idempotent``: the request means the same however often it is sent (a create under its own
    trigger id), so one left unanswered (the gateway unreachable, a service away or too slow) is
    sent again, ``UNANSWERED_RETRIES`` times, rather than leaving its outcome unknown.
    """
    client = ApiClient()
    try:
        for attempt in range(UNANSWERED_RETRIES + 1):
            try:
                return client.request(method, path, **kwargs)
            except ApiError as exc:
                if not idempotent or exc.status not in UNANSWERED or attempt == UNANSWERED_RETRIES:
                    raise
                errors.print(Text(f"{exc}; trying again", "yellow"))
                time.sleep(RECONNECT_PAUSE_SECONDS * 2**attempt)
        raise AssertionError("unreachable")
    except ApiError as exc:
        errors.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(exit_code) from exc
    finally:
        client.close()


def fetch(path: str, *, exit_code: int = 1) -> bytes:
    """The raw body of a GET from the gateway (a file); a problem answer is printed and ends the command."""
    client = ApiClient()
    try:
        return client.raw("GET", path)
    except ApiError as exc:
        errors.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(exit_code) from exc
    finally:
        client.close()


def json_objects_file(path: Path, what: str, shape: str, *, key: str = "", exit_code: int = 2) -> list[dict[str, Any]]:
    """The JSON list of objects in a file a command was given (or under ``key`` of an object);
    an unreadable file, or one holding anything else, is said on stderr and exits ``exit_code``.
    The service checks each object's fields."""
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        errors.print(Text(f"error: cannot read {what} from {path}: {exc}", "red"))
        raise typer.Exit(exit_code) from exc
    found = loaded.get(key) if key and isinstance(loaded, dict) else loaded
    if not isinstance(found, list) or not all(isinstance(x, dict) for x in found):
        errors.print(Text(f"error: {path} holds no list of {what} ({shape})", "red"))
        raise typer.Exit(exit_code)
    return found


def print_json(value: Any) -> None:
    """A gateway answer as it came, for scripts (--format json)."""
    console.print_json(json.dumps(value))


def comma_list(value: str | None) -> list[str]:
    """``"a, b,,c"`` → ``["a", "b", "c"]``: how list options (--tags a,b) are written."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def when(value: str | None) -> str:
    """An ISO timestamp as a person reads it, to the second; "—" for none."""
    return value[:19].replace("T", " ") if value else "—"


def websocket_address(path: str) -> tuple[str, dict[str, str]]:
    """The gateway's WebSocket URL for ``path``, and the headers that carry the token."""
    client = ApiClient()
    base = client.base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    headers = client.headers
    client.close()
    return base + path, headers


def websocket_events(path: Callable[[], str], what: str, *, exit_code: int = 1) -> Iterator[dict[str, Any]]:
    """The JSON messages of one of the gateway's WebSockets until it closes.

    A dropped connection is reopened at ``path()`` (asked anew, so it can say where to resume),
    after a pause that grows while the drops come one after the other; ``RECONNECTS`` drops in a
    row with no new event between them (one of a higher ``sequence``; a stream without sequence
    numbers counts every drop) end the command, as does a first connection that cannot be opened
    (the gateway is not there) or a refusal (an unknown id, no token).
    """
    failures = 0
    connected = False
    newest: int | None = None  # the highest event sequence received: progress, across reconnects
    while True:
        url, headers = websocket_address(path())
        told = False
        try:
            with connect(url, additional_headers=headers) as ws:
                connected = True
                for raw in ws:
                    event: dict[str, Any] = json.loads(raw)
                    told = told or event.get("type") == "error"
                    sequence = event.get("sequence")
                    if isinstance(sequence, int) and (newest is None or sequence > newest):
                        # A new event (not an error frame, nor one replayed on reopening): the
                        # stream is moving, and a later drop starts the count again.
                        newest = sequence
                        failures = 0
                    yield event
                # Closed cleanly: the end of the stream (1000), unless the gateway is going away
                # (1001: stopping, or a proxy in front of it), which is a drop like any other.
                if getattr(ws, "close_code", None) != GOING_AWAY:
                    return
                raise ConnectionClosedError(None, None)
        except ConnectionClosedError as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            # 4000 + an HTTP status: the gateway refused (an unknown id, a bad one, no token), and
            # asking again cannot help; only 4503 (a service away for a moment) is worth another try.
            if code is not None and 4000 <= code < 5000 and code != 4503:
                if not told:
                    reason = exc.rcvd.reason if exc.rcvd is not None else ""
                    errors.print(Text(f"error: {reason or f'the gateway closed {what} ({code})'}", "red"))
                raise typer.Exit(exit_code) from exc
            lost: Exception = exc
        except (OSError, InvalidHandshake) as exc:
            if not connected:
                errors.print(Text(f"error: cannot follow {what} at {url}: {exc}", "red"))
                raise typer.Exit(exit_code) from exc
            lost = exc  # the gateway restarting: it is tried again, as a drop is
        failures += 1
        if failures > RECONNECTS:
            errors.print(Text(f"error: lost {what} {failures} times in a row: {lost}", "red"))
            raise typer.Exit(exit_code) from lost
        time.sleep(min(RECONNECT_PAUSE_SECONDS * 2 ** (failures - 1), MAX_RECONNECT_PAUSE_SECONDS))


def usd(value: float | None) -> str:
    # Unknown cost is "unpriced", never $0.
    return "unpriced" if value is None else f"${value:.4f}"


def score(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def violations_text(violated: list[Any], evaluations: int) -> str:
    """Where a rejected candidate broke its hard constraints, as the run service says it in the chat:
    "broke budget in 3 of 4 scenarios; …". An entry that is not a violation is left out."""
    where = [
        (v["constraint"], v["scenarios"])
        for v in violated
        if isinstance(v, dict) and "constraint" in v and "scenarios" in v
    ]
    return broke(where, evaluations)


def compact_table(*columns: Column | str) -> Table:
    """A table with no edges and single padding: a whole id and its neighbours fit in 80 columns."""
    return Table(*columns, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)


# A UUID's length: a column of ids is this wide, and whatever shares an id's cell is folded to it.
ID_WIDTH = 36


def id_column(header: str = "id") -> Column:
    """A column of whole ids, never folded nor cut: when 80 columns are too few, the others give way.

    rich narrows the columns that may wrap first, and cuts the others only when they alone are too
    wide; so ids do not wrap, and a cell that holds more than its id goes through ``fit_id``.
    """
    return Column(header, min_width=ID_WIDTH, no_wrap=True)


def wide_id_column(header: str) -> Column:
    """The one flexible column of a table whose others are short ``fixed_column`` values.

    It takes what they leave (at 80 columns, more than an id), so an id in it is never folded,
    while the text around it (a title, notes) wraps at word boundaries.
    """
    return Column(header, min_width=ID_WIDTH, overflow="fold")


def fit_id(cell: Text | str) -> Text:
    """A cell of an ``id_column`` whose other lines (a title, notes) are folded to an id's width."""
    text = Text(cell) if isinstance(cell, str) else cell
    return Text("\n").join(text.wrap(console, ID_WIDTH, overflow="fold"))


def fixed_column(header: str, *, justify: JustifyMethod = "left") -> Column:
    """A short value (a status, a time, a number) kept on one line: free text gives way before it."""
    return Column(header, no_wrap=True, justify=justify)


def text_column(header: str) -> Column:
    """Free text: folded into what the ids and the short values leave."""
    return Column(header, overflow="fold")


def parameters_text(p: dict[str, Any]) -> str:
    """A run's parameters in words; a recommendation's may leave some out."""
    words = [counted(p.get("num_candidates", 0), "candidate"), counted(p.get("num_scenarios", 0), "scenario")]
    if p.get("seed_candidate_ids"):
        words.append(counted(len(p["seed_candidate_ids"]), "seed"))
    if p.get("budget_usd") is not None:
        words.append(f"budget ${p['budget_usd']:g}")
    if p.get("budget_tokens") is not None:
        words.append(f"budget {p['budget_tokens']} tokens")
    if p.get("max_runtime_s") is not None:
        words.append(f"at most {p['max_runtime_s']} s")
    return ", ".join(words)
