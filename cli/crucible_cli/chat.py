"""``crucible chat PROJECT_ID``: talk with the Architect in the terminal.

The Architect refines the ProblemSpec and WorldModel and recommends runs; it never starts one. A
recommendation is drawn as a panel with what it would cost and what blocks it, and the command that
would start it: only that command (or the Run button) is the explicit action that starts a run.
"""

from __future__ import annotations

import json
import shlex
import uuid
from collections import deque
from collections.abc import Iterator
from typing import Annotated, Any, Literal, Protocol

import typer
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Column, Table
from rich.text import Text
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

from crucible_cli.api_client import problem_text
from crucible_cli.output import (
    Format,
    FormatOption,
    call,
    compact_table,
    console,
    errors,
    parameters_text,
    score,
    usd,
    violations_text,
    websocket_address,
    wide_id_column,
)
from crucible_common.wording import counted, pairs

Mode = Literal["setup", "analysis"]
# A turn whose connection drops is sent again, with the same message id, this many times at most.
RECONNECTS = 3
# The Architect's model call can take minutes; a plain read gets the client's 30 s.
TURN_TIMEOUT_S = 900
QUIT = ("/quit", "/exit")
RETRY = "/retry"
ROLES = {"user": ("you", "bold green"), "agent": ("architect", "bold cyan"), "system": ("system", "bold")}
PREREQUISITES = ("problem_spec", "world_model", "seed_candidates")
NO_RUN_FROM_CHAT = "The Architect cannot start runs: only the Run button or `crucible run start` starts one."

SessionOption = Annotated[
    str, typer.Option("--session", help="The chat session (default: the project's latest of --mode, else a new one).")
]
ModeOption = Annotated[Mode, typer.Option("--mode", help="Which kind of session to find or create.")]
MessageOption = Annotated[
    str | None, typer.Option("--message", "-m", help="Send one message, print the reply and exit.")
]
HistoryOption = Annotated[
    int, typer.Option("--history", min=0, help="Show the session's last N messages first (not with --format json).")
]


class Socket(Protocol):
    """What a turn needs of a WebSocket connection (``websockets``' client; a test's in-process one)."""

    def send(self, message: str) -> None: ...
    def recv(self) -> str | bytes: ...
    def close(self) -> None: ...


def _connect(url: str, headers: dict[str, str]) -> Socket:
    return connect(url, additional_headers=headers, open_timeout=10)


class ChatDropped(Exception):
    """The gateway could not be reached, or the connection dropped more often than a turn is resent."""


class ChatSocket:
    """The session's WebSocket: connected on first use, and again after it dropped."""

    def __init__(self, chat_session_id: str) -> None:
        self.url, self._headers = websocket_address(f"/api/ws/chat-sessions/{chat_session_id}")
        self._socket: Socket | None = None

    def turn(self, content: str, chat_message_id: str) -> Iterator[dict[str, Any]]:
        """The turn's events, up to its agent message or error; ``reconnected`` when it was sent again."""
        frame = json.dumps({"content": content, "chat_message_id": chat_message_id})
        for attempt in range(RECONNECTS + 1):
            try:
                socket = self._connected()
                socket.send(frame)
                while True:
                    event: dict[str, Any] = json.loads(socket.recv())
                    yield event
                    if event["type"] in ("agent_message", "error"):
                        return
            except ConnectionClosed as exc:
                self._socket = None
                if attempt == RECONNECTS:
                    raise ChatDropped(f"lost the connection to the gateway {RECONNECTS + 1} times: {exc}") from exc
                # The same message id: the service answers it once, whatever was stored before the drop.
                yield {"type": "reconnected"}

    def interrupt(self) -> None:
        """Abandon the turn in flight: the gateway cancels a turn whose client went away."""
        self.close()

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _connected(self) -> Socket:
        if self._socket is None:
            try:
                self._socket = _connect(self.url, self._headers)
            except (OSError, InvalidHandshake) as exc:
                raise ChatDropped(f"cannot reach the chat at {self.url}: {exc}") from exc
        return self._socket


def chat(
    project_id: str,
    session: SessionOption = "",
    mode: ModeOption = "setup",
    message: MessageOption = None,
    history: HistoryOption = 0,
    fmt: FormatOption = Format.table,
) -> None:
    """Talk with the Architect: it refines the problem and recommends runs, and never starts one.

    Interactive unless --message is given; /quit or Ctrl-D leaves, Ctrl-C stops a reply.
    """
    if fmt is Format.json and message is None:
        errors.print(Text("error: --format json goes with --message", "red"))
        raise typer.Exit(2)
    chat_session = _session(project_id, session, mode)
    if message is None:
        _converse(project_id, chat_session, history)
        return
    if fmt is Format.table:
        _show_history(chat_session["id"], history, project_id)
    _one_turn(project_id, chat_session["id"], message, fmt)


def _session(project_id: str, chat_session_id: str, mode: Mode) -> dict[str, Any]:
    """The session asked for, else the project's latest of this mode, else a new one."""
    if chat_session_id:
        found: dict[str, Any] = call("GET", f"/api/chat-sessions/{chat_session_id}")
        if found["project_id"] != project_id:
            refused = f"error: chat session {chat_session_id} is not one of project {project_id}"
            errors.print(Text(refused, "red"), soft_wrap=True)
            raise typer.Exit(1)
        return found
    token = ""
    while True:
        # Newest first: the first of the mode is the latest.
        page = call("GET", f"/api/projects/{project_id}/chat-sessions", params={"page_size": 100, "page_token": token})
        latest: dict[str, Any] | None = next((s for s in page["chat_sessions"] if s["mode"] == mode), None)
        if latest is not None:
            return latest
        token = page["next_page_token"]
        if not token:
            break
    created: dict[str, Any] = call(
        "POST", f"/api/projects/{project_id}/chat-sessions", json={"title": f"{mode} chat", "mode": mode}
    )
    errors.print(Text(f"new {mode} chat session {created['id']}", "dim"))
    return created


def _show_history(chat_session_id: str, count: int, project_id: str) -> None:
    """The session's last ``count`` messages, oldest first (the API lists them in that order only)."""
    if not count:
        return
    last: deque[dict[str, Any]] = deque(maxlen=count)
    token = ""
    while True:
        page = call(
            "GET", f"/api/chat-sessions/{chat_session_id}/messages", params={"page_size": 1000, "page_token": token}
        )
        last.extend(page["chat_messages"])
        token = page["next_page_token"]
        if not token:
            break
    for message in last:
        _show_message(message, project_id)


def _one_turn(project_id: str, chat_session_id: str, content: str, fmt: Format) -> None:
    body = {"content": content, "chat_message_id": str(uuid.uuid4())}
    turn = call("POST", f"/api/chat-sessions/{chat_session_id}/turns", json=body, timeout=TURN_TIMEOUT_S)
    if fmt is Format.json:
        console.print_json(json.dumps(turn))
    else:
        _show_message(turn["agent_message"], project_id)


def _converse(project_id: str, chat_session: dict[str, Any], history: int) -> None:
    console.print(
        Text.assemble(
            ("Chatting with the Architect", "bold"),
            f" in {chat_session['mode']} session {chat_session['id']}.\n",
            (f"/quit or Ctrl-D leaves, Ctrl-C stops a reply, {RETRY} sends a failed turn again.", "dim"),
        )
    )
    _show_history(chat_session["id"], history, project_id)
    socket = ChatSocket(chat_session["id"])
    # The last turn that failed: sent again under the same id, its message is stored once.
    failed: tuple[str, str] | None = None
    try:
        while True:
            try:
                line = console.input("[bold green]you>[/bold green] ").strip()
            except (EOFError, KeyboardInterrupt):
                console.print()
                return
            if line in QUIT:
                return
            if not line:
                continue
            if line == RETRY:
                if failed is None:
                    console.print(Text("no failed turn to send again", "dim"))
                    continue
                content, message_id = failed
            else:
                content, message_id = line, str(uuid.uuid4())
            try:
                answered = _stream_turn(socket, content, message_id, project_id)
            except KeyboardInterrupt:
                socket.interrupt()
                console.print(Text("\n(reply stopped)", "dim"))
                answered = False
            failed = None if answered else (content, message_id)
    except ChatDropped as exc:
        errors.print(Text(f"\nerror: {exc}", "red"), soft_wrap=True)
        raise typer.Exit(1) from exc
    finally:
        socket.close()


def _stream_turn(socket: ChatSocket, content: str, message_id: str, project_id: str) -> bool:
    """Prints the reply as it is written, then what the message carries; False when the turn failed."""
    printed: str | None = None  # the reply so far, once its first piece is on the screen
    for event in socket.turn(content, message_id):
        kind = event["type"]
        if kind == "reconnected" or (kind == "reply.delta" and event["restart"]):
            why = "the connection dropped; asking again" if kind == "reconnected" else "the model was retried"
            if printed is not None or kind == "reconnected":
                console.print(Text(f"\n({why}: the reply starts over)", "dim"))
            printed = None
        if kind == "reply.delta" and event["text"]:
            if printed is None:
                console.print(_speaker("agent"), end="")
                printed = ""
            printed += event["text"]
            # soft_wrap: the terminal wraps the reply, piece by piece, as one paragraph.
            console.print(Text(event["text"]), end="", soft_wrap=True)
        elif kind == "agent_message":
            message = event["message"]
            reply: str = message["content"]
            if printed is None:
                console.print(_speaker("agent"), end="")
                printed = ""
            # The stored message is the whole reply; what streamed is normally its beginning.
            rest = reply[len(printed) :] if reply.startswith(printed) else "\n" + reply
            console.print(Text(rest), soft_wrap=True)
            _show_panels(message, project_id)
            return True
        elif kind == "error":
            if printed is not None:
                console.print()
            console.print(Text(f"error: {problem_text(event['problem'])}", "red"), soft_wrap=True)
            console.print(Text(f"({RETRY} sends it again)", "dim"))
            return False
    return False


def _speaker(role: str) -> Text:
    name, style = ROLES.get(role, (role, "bold"))
    return Text(f"{name}> ", style)


def _show_message(message: dict[str, Any], project_id: str) -> None:
    metadata = message["metadata"]
    # A post-run summary's text says what its panel shows.
    if not isinstance(metadata.get("run_summary"), dict):
        console.print(Text.assemble(_speaker(message["role"]), message["content"]), soft_wrap=True)
    _show_panels(message, project_id)


def _show_panels(message: dict[str, Any], project_id: str) -> None:
    metadata = message["metadata"]
    recommendation = metadata.get("recommended_run_config")
    if isinstance(recommendation, dict):
        console.print(recommendation_panel(recommendation))
        if recommendation.get("status") == "ready":
            # Below the panel and unwrapped: a command to copy whole.
            console.print(Text("to start it yourself:", "dim"))
            console.print(Text(_start_command(recommendation, message, project_id), "bold"), soft_wrap=True)
    summary = metadata.get("run_summary")
    if isinstance(summary, dict):
        rejections = metadata.get("run_rejections")
        console.print(summary_panel(summary, rejections if isinstance(rejections, list) else []))


def recommendation_panel(config: dict[str, Any]) -> Panel:
    """seed 001's ``recommended_run_config``: what to run, what it would cost, what blocks it."""
    status = str(config.get("status", "info"))
    rows = _rows(
        ("status", Text(status, {"ready": "green", "blocked": "red"}.get(status, "blue"))),
        ("mode", config.get("mode")),
        ("parameters", parameters_text(config["parameters"]) if isinstance(config.get("parameters"), dict) else None),
        ("estimated cost", _cost(config.get("estimated_cost"))),
        ("prerequisites", _prerequisites(config.get("prerequisites"))),
        ("expires", _when(config.get("expires_at"))),
    )
    parts: list[RenderableType] = [rows]
    if config.get("rationale"):
        parts.append(Text(str(config["rationale"])))
    # Messages come from the service: shown as they are, never read as rich markup.
    details = config.get("blocker_details") or [{"code": code, "message": ""} for code in config.get("blockers", [])]
    for blocker in details:
        where = f" ({blocker['field']})" if blocker.get("field") else ""
        line = Text.assemble(("✘ ", "red"), (f"{blocker.get('code', '')}{where}", "bold"))
        if blocker.get("message"):
            line.append(f": {blocker['message']}")
        parts.append(line)
    parts.extend(Text.assemble(("! ", "yellow"), str(warning)) for warning in config.get("warnings") or [])
    parts.extend(Text(f"· {note}") for note in config.get("notes") or [])
    parts.append(Text(NO_RUN_FROM_CHAT, "italic"))
    colour = {"ready": "green", "blocked": "red"}.get(status, "blue")
    return Panel(Group(*parts), title="Run recommendation", title_align="left", border_style=colour)


def summary_panel(summary: dict[str, Any], rejections: list[dict[str, Any]] | None = None) -> Panel:
    """A post-run summary (``run_summary``): how the run ended, its best candidates, and those it
    rejected (``run_rejections``) with where they broke a hard constraint."""
    run_id = str(summary.get("run_id", ""))
    status = str(summary.get("status", ""))
    counts = summary.get("counts") or {}
    duration = summary.get("duration_seconds")
    rows = _rows(
        ("run", run_id),
        ("mode", summary.get("mode")),
        ("status", Text(status, "green" if status == "COMPLETED" else "red")),
        ("duration", f"{duration:.1f} s" if isinstance(duration, int | float) else None),
        (
            "counts",
            f"{pairs(counts.get('candidates', 0), counts.get('scenarios', 0))}, "
            f"{counted(counts.get('evaluations', 0), 'evaluation')}",
        ),
    )
    parts: list[RenderableType] = [rows]
    top = summary.get("top_candidates") or []
    if top:
        table = compact_table(
            "#",
            wide_id_column("candidate"),
            Column("I", justify="right"),
            Column("P", justify="right"),
            Column("R", justify="right"),
        )
        for position, c in enumerate(top, start=1):
            cell = Text.assemble((str(c.get("label", "")), "bold"), "\n", str(c.get("candidate_id", "")))
            if c.get("notes"):
                cell.append(f"\n{c['notes']}", "dim")
            table.add_row(str(position), cell, score(c.get("I")), score(c.get("P")), score(c.get("R")))
        parts.append(table)
    else:
        parts.append(Text("No candidate could be ranked."))
    # Metadata any writer may have put there: what is not shaped as the run service writes it is left out.
    for r in rejections or []:
        if not (isinstance(r, dict) and isinstance(r.get("violated_constraints"), list)):
            continue
        if isinstance(r.get("title"), str) and isinstance(r.get("evaluations"), int):
            where = violations_text(r["violated_constraints"], r["evaluations"])
            parts.append(Text.assemble("rejected: ", (r["title"], "bold"), f", {where}", style="red"))
    link = (summary.get("links") or {}).get("results_view")
    parts.append(Text(f"results: crucible run results {run_id}" + (f" · {link}" if link else "")))
    title = str(summary.get("summary_label") or f"Run {run_id[:8]} summary")
    return Panel(
        Group(*parts), title=title, title_align="left", border_style="green" if status == "COMPLETED" else "red"
    )


def _rows(*rows: tuple[str, str | Text | None]) -> Table:
    """Label and value, one a line; a value the message does not carry is left out."""
    table = Table.grid(Column(style="bold"), Column(overflow="fold"), padding=(0, 2))
    for label, value in rows:
        if value is not None and value != "":
            table.add_row(label, value if isinstance(value, Text) else Text(str(value)))
    return table


def _cost(cost: Any) -> str | None:
    if not isinstance(cost, dict):
        return None
    tokens = cost.get("tokens")
    if tokens is None and cost.get("usd") is None:
        # Nothing was estimated (the run service was not asked): not the same as unpriced.
        return None
    return usd(cost.get("usd")) + (f", {tokens} tokens" if tokens is not None else "")


def _prerequisites(prerequisites: Any) -> str | None:
    if not isinstance(prerequisites, dict):
        return None
    # The seed's order; metadata keeps none (a protobuf Struct is a map).
    names = [*PREREQUISITES, *sorted(set(prerequisites) - set(PREREQUISITES))]
    return ", ".join(f"{n} {'✔' if prerequisites[n] else '✘'}" for n in names if n in prerequisites)


def _when(value: Any) -> str | None:
    return str(value)[:19].replace("T", " ") if value else None


def _start_command(config: dict[str, Any], message: dict[str, Any], project_id: str) -> str:
    """``crucible run start`` with the recommended settings, traced to the message that recommended them."""
    p = config.get("parameters") or {}
    words = ["crucible", "run", "start", str(config.get("project_id") or project_id)]
    if config.get("mode"):
        words += ["--mode", str(config["mode"])]
    options = {
        "--candidates": p.get("num_candidates"),
        "--scenarios": p.get("num_scenarios"),
        "--budget-usd": p.get("budget_usd"),
        "--budget-tokens": p.get("budget_tokens"),
        "--max-runtime": p.get("max_runtime_s"),
    }
    words += [w for option, value in options.items() if value for w in (option, str(value))]
    for seed in p.get("seed_candidate_ids") or []:
        words += ["--seed", str(seed)]
    words += ["--chat-session-id", message["chat_session_id"], "--recommended-message-id", message["id"]]
    return shlex.join(words)
