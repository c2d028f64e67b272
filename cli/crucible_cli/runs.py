"""``crucible run …``: preflight a configuration, create and start runs explicitly, follow them, read results.

Each command that creates a run is itself the explicit action the run advisor contract asks for:
it sends a fresh trigger id with the source ``cli_tool``, so the run records where it came from.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from rich.text import Text

from crucible_cli.output import (
    Format,
    FormatOption,
    call,
    compact_table,
    console,
    errors,
    fixed_column,
    id_column,
    json_objects_file,
    parameters_text,
    print_json,
    score,
    usd,
    violations_text,
    websocket_events,
    when,
    wide_id_column,
)
from crucible_common.wording import counted, pairs

run_app = typer.Typer(
    help="Runs: candidates designed, tried in scenarios, evaluated and ranked by I = P / R.", no_args_is_help=True
)

Mode = Literal["full_search", "eval_only", "seeded"]
Status = Literal["CREATED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"]
TRIGGER_SOURCE = "cli_tool"

ModeOption = Annotated[Mode, typer.Option("--mode", help="What the run does.")]
CandidatesOption = Annotated[
    int, typer.Option("--candidates", help="New candidates (0: the default for the problem's resolution).")
]
ScenariosOption = Annotated[
    int, typer.Option("--scenarios", help="Scenarios (0: the default for the problem's resolution).")
]
SeedOption = Annotated[
    list[str] | None, typer.Option("--seed", help="A candidate of an earlier run to evaluate; repeatable.")
]
SeedFileOption = Annotated[
    Path | None,
    typer.Option(
        "--seed-file",
        help="Seeds given whole (for a project without runs to name them from): a JSON list of "
        '{"title", "description", "approach", "assumptions": [...]}.',
        exists=True,
        dir_okay=False,
    ),
]
BudgetUsdOption = Annotated[float | None, typer.Option("--budget-usd", help="Stop before spending more.")]
BudgetTokensOption = Annotated[int | None, typer.Option("--budget-tokens", help="Stop before using more.")]
MaxRuntimeOption = Annotated[int | None, typer.Option("--max-runtime", help="Seconds; stop after that long.")]
RecommendationOption = Annotated[
    str, typer.Option("--recommended-message-id", help="The Architect message whose recommendation this follows.")
]
ChatSessionOption = Annotated[str, typer.Option("--chat-session-id", help="The chat the recommendation is in.")]


def _config(
    *,
    mode: str,
    candidates: int,
    scenarios: int,
    seeds: list[str] | None,
    seed_file: Path | None,
    budget_usd: float | None,
    budget_tokens: int | None,
    max_runtime: int | None,
    chat_session_id: str,
    recommended_message_id: str,
) -> dict[str, Any]:
    parameters: dict[str, Any] = {
        "num_candidates": candidates,
        "num_scenarios": scenarios,
        "seed_candidate_ids": seeds or [],
        "seed_candidates": _seed_candidates(seed_file),
    }
    limits = {"budget_usd": budget_usd, "budget_tokens": budget_tokens, "max_runtime_s": max_runtime}
    parameters.update({k: v for k, v in limits.items() if v is not None})
    return {
        "mode": mode,
        "parameters": parameters,
        "chat_session_id": chat_session_id,
        "recommended_message_id": recommended_message_id,
    }


def _seed_candidates(path: Path | None) -> list[dict[str, Any]]:
    if path is None:
        return []
    return json_objects_file(path, "seed candidates", "{title, description, approach, assumptions}")


def _usage(u: dict[str, Any]) -> str:
    cost = f"${u['usd']:.4f}"
    if u["unpriced_calls"]:
        cost += f" + unpriced ({counted(u['unpriced_calls'], 'call')})"
    return f"{cost}, {counted(u['calls'], 'call')}, {counted(u['input_tokens'] + u['output_tokens'], 'token')}"


def _show_preflight(result: dict[str, Any], out: Console) -> None:
    config = result["normalized_config"]
    cost = result["estimated_cost"]
    if result["ready"]:
        out.print("[green]ready[/green]: nothing stands in the way")
    else:
        out.print(f"[red]blocked[/red]: {counted(len(result['blockers']), 'blocker')}")
    # Messages come from the service: shown as they are, never read as rich markup.
    for b in result["blocker_details"]:
        where = f" ({b['field']})" if b["field"] else ""
        out.print(Text.assemble(("✘ ", "red"), (b["code"] + where, "bold"), "\n  ", b["message"]))
    for w in result["warning_details"]:
        out.print(Text.assemble(("! ", "yellow"), (w["code"], "bold"), "\n  ", w["message"]))
    out.print(Text(f"mode {config['mode']}: {parameters_text(config['parameters'])}"))
    out.print(
        Text(f"estimated cost {usd(cost['usd'])}, {counted(cost['calls'], 'call')}, {counted(cost['tokens'], 'token')}")
    )
    for note in result["notes"]:
        out.print(Text(f"· {note}"))


def _show_run(run: dict[str, Any]) -> None:
    table = Table(Column(style="bold"), Column(min_width=36, overflow="fold"), show_header=False, box=box.SIMPLE)
    trigger = run["trigger"] or {}
    counts = run["counts"]
    rows = [
        ("id", run["id"]),
        ("project", run["project_id"]),
        ("status", run["status"]),
        ("mode", run["mode"]),
        ("parameters", parameters_text(run["parameters"])),
        ("phases", ", ".join(run["phases"]) or "—"),
        ("trigger", trigger.get("source", "—")),
        ("trigger id", trigger.get("id", "—")),
        ("triggered at", when(trigger.get("at"))),
        ("recommended by", run["recommended_message_id"] or "—"),
        ("summary message", run["run_summary_message_id"] or "—"),
        (
            "counts",
            f"{pairs(counts['candidates'], counts['scenarios'])}, "
            f"{counted(counts['evaluations'], 'evaluation')} ({counts['failed_evaluations']} failed)",
        ),
        ("cost", _usage(run["usage"])),
        ("created", when(run["created_at"])),
        ("started", when(run["started_at"])),
        ("ended", when(run["ended_at"])),
        ("duration", f"{run['duration_seconds']:.1f} s"),
        ("failure", run["failure_reason"] or "—"),
        ("errors", run["error_summary"] or "—"),
        ("trace", run["trace_id"] or "—"),
    ]
    for key, value in rows:
        table.add_row(key, Text(str(value)))
    console.print(table)


def _show_results(results: dict[str, Any]) -> None:
    table = compact_table(
        "#",
        # The title above the id, which is never cut.
        wide_id_column("candidate"),
        Column("I", justify="right"),
        Column("P", justify="right"),
        Column("R", justify="right"),
        "label",
    )
    for c in results["candidates"]:
        cell = Text.assemble((c["title"], "bold"), "\n", c["candidate_id"])
        if c["violated_constraints"]:
            cell.append(f"\n{violations_text(c['violated_constraints'], c['evaluations'])}", "red")
        label = Text(c["label"], "red" if c["rejected"] else "")
        table.add_row(str(c["rank"]), cell, score(c["I"]), score(c["P"]), score(c["R"]), label)
    console.print(table)


def _run_body(project_id: str, config: dict[str, Any], command: str) -> dict[str, Any]:
    return {
        "project_id": project_id,
        **config,
        # This invocation is the explicit action: one id per command, so the command's own retry of
        # an unanswered create (``call(idempotent=True)``) creates no second run.
        "ui_trigger_id": str(uuid.uuid4()),
        "ui_trigger_source": TRIGGER_SOURCE,
        "ui_trigger_metadata": {"command": command},
    }


@run_app.command("preflight")
def preflight(
    project_id: str,
    mode: ModeOption = "full_search",
    candidates: CandidatesOption = 0,
    scenarios: ScenariosOption = 0,
    seed: SeedOption = None,
    seed_file: SeedFileOption = None,
    budget_usd: BudgetUsdOption = None,
    budget_tokens: BudgetTokensOption = None,
    max_runtime: MaxRuntimeOption = None,
    recommended_message_id: RecommendationOption = "",
    chat_session_id: ChatSessionOption = "",
    fmt: FormatOption = Format.table,
) -> None:
    """What a run would need and cost; nothing is created. Exits 1 when something blocks it."""
    config = _config(
        mode=mode,
        candidates=candidates,
        scenarios=scenarios,
        seeds=seed,
        seed_file=seed_file,
        budget_usd=budget_usd,
        budget_tokens=budget_tokens,
        max_runtime=max_runtime,
        chat_session_id=chat_session_id,
        recommended_message_id=recommended_message_id,
    )
    result = call("POST", f"/api/projects/{project_id}/runs/preflight", json=config)
    if fmt is Format.json:
        print_json(result)
    else:
        _show_preflight(result, console)
    raise typer.Exit(0 if result["ready"] else 1)


@run_app.command("create")
def create(
    project_id: str,
    mode: ModeOption = "full_search",
    candidates: CandidatesOption = 0,
    scenarios: ScenariosOption = 0,
    seed: SeedOption = None,
    seed_file: SeedFileOption = None,
    budget_usd: BudgetUsdOption = None,
    budget_tokens: BudgetTokensOption = None,
    max_runtime: MaxRuntimeOption = None,
    recommended_message_id: RecommendationOption = "",
    chat_session_id: ChatSessionOption = "",
    fmt: FormatOption = Format.table,
) -> None:
    """Create a run (CREATED); nothing runs until `crucible run execute` or `start`."""
    config = _config(
        mode=mode,
        candidates=candidates,
        scenarios=scenarios,
        seeds=seed,
        seed_file=seed_file,
        budget_usd=budget_usd,
        budget_tokens=budget_tokens,
        max_runtime=max_runtime,
        chat_session_id=chat_session_id,
        recommended_message_id=recommended_message_id,
    )
    run = call("POST", "/api/runs", json=_run_body(project_id, config, "run create"), idempotent=True)
    if fmt is Format.json:
        print_json(run)
    else:
        _show_run(run)


class Phase(StrEnum):
    design = "design"
    scenarios = "scenarios"
    evaluate = "evaluate"
    rank = "rank"


PhaseOption = Annotated[
    list[Phase] | None,
    typer.Option(
        "--phase",
        help="A phase to run (repeat for several; the ones it needs are added); default: all of them.",
    ),
]


@run_app.command("execute")
def execute(run_id: str, phase: PhaseOption = None, fmt: FormatOption = Format.table) -> None:
    """Start a CREATED run's phases in the background; `crucible run watch` follows it."""
    run = call("POST", f"/api/runs/{run_id}/execute", json={"phases": [p.value for p in phase] if phase else "all"})
    if fmt is Format.json:
        print_json(run)
    else:
        _show_run(run)


@run_app.command("start")
def start(
    project_id: str,
    mode: ModeOption = "full_search",
    candidates: CandidatesOption = 0,
    scenarios: ScenariosOption = 0,
    seed: SeedOption = None,
    seed_file: SeedFileOption = None,
    budget_usd: BudgetUsdOption = None,
    budget_tokens: BudgetTokensOption = None,
    max_runtime: MaxRuntimeOption = None,
    recommended_message_id: RecommendationOption = "",
    chat_session_id: ChatSessionOption = "",
    fmt: FormatOption = Format.table,
) -> None:
    """Preflight, create, execute and follow a run; exits 0 when it completes, 1 otherwise.

    With --format json, the progress goes to stderr and stdout gets the finished run's JSON.

    When something blocks the run, stdout gets the preflight's JSON instead, which says what.
    """
    config = _config(
        mode=mode,
        candidates=candidates,
        scenarios=scenarios,
        seeds=seed,
        seed_file=seed_file,
        budget_usd=budget_usd,
        budget_tokens=budget_tokens,
        max_runtime=max_runtime,
        chat_session_id=chat_session_id,
        recommended_message_id=recommended_message_id,
    )
    out = errors if fmt is Format.json else console
    check = call("POST", f"/api/projects/{project_id}/runs/preflight", json=config)
    if not check["ready"]:
        if fmt is Format.json:
            print_json(check)
        else:
            _show_preflight(check, console)
        raise typer.Exit(1)
    # Sent again under the same trigger id if unanswered: the run service answers with the same run.
    run = call("POST", "/api/runs", json=_run_body(project_id, config, "run start"), idempotent=True)
    out.print(Text(f"run {run['id']} created; estimated cost {usd(check['estimated_cost']['usd'])}"))
    try:
        call("POST", f"/api/runs/{run['id']}/execute", json={"phases": "all"})
    except (typer.Exit, KeyboardInterrupt):
        errors.print(Text(f"run {run['id']} was created but maybe not started: `crucible run execute {run['id']}`"))
        raise
    _follow(run["id"], 0, fmt)


@run_app.command("watch")
def watch(
    run_id: str,
    after: Annotated[int, typer.Option(help="Only events after this sequence number.")] = 0,
    fmt: FormatOption = Format.table,
) -> None:
    """Follow a run's phases and evaluations live; exits 0 when it completes, 1 otherwise."""
    _follow(run_id, after, fmt)


def _follow(run_id: str, after: int, fmt: Format) -> None:
    out = errors if fmt is Format.json else console
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out,
    ) as progress:
        task = progress.add_task("evaluations", total=None)
        last = after
        try:
            for event in _events(run_id, after):
                _render(event, progress, task)
                last = event.get("sequence", last)
        except KeyboardInterrupt:
            # Only the following stops: the run is the service's, and goes on.
            progress.stop()
            errors.print(
                Text(f"stopped following run {run_id}, which goes on: `crucible run watch {run_id} --after {last}`")
            )
            raise typer.Exit(130) from None
    run = call("GET", f"/api/runs/{run_id}")
    if fmt is Format.json:
        print_json(run)
    else:
        _show_run(run)
        if run["status"] == "COMPLETED":
            _show_results(call("GET", f"/api/runs/{run_id}/results"))
    raise typer.Exit(0 if run["status"] == "COMPLETED" else 1)


def _events(run_id: str, after: int) -> Iterator[dict[str, Any]]:
    """The run's events from the gateway's WebSocket, resuming after the last one seen when it drops."""
    last = after

    def path() -> str:
        return f"/api/ws/runs/{run_id}?after={last}"

    for event in websocket_events(path, "the run's event stream"):
        last = event.get("sequence", last)
        yield event


def _render(event: dict[str, Any], progress: Progress, task: TaskID) -> None:
    kind, data = event.get("type", ""), event.get("data", {})
    say = progress.console.print
    if kind == "error":
        problem = event.get("problem", {})
        say(Text(f"error: {problem.get('detail', problem)}", "red"))
    elif kind == "phase.started":
        # A phase continued by another runner (the one before it stopped) is not a second phase.
        continued = " (continued after its runner stopped)" if data.get("continued") else ""
        say(Text(f"▶ {data.get('phase', '')}{continued}", "bold"))
    elif kind == "phase.completed":
        say(Text(f"✔ {data.get('phase', '')}", "green"))
    elif kind == "candidate.added":
        say(Text(f"  + candidate {data.get('title', '')}"))
    elif kind == "scenario.added":
        say(Text(f"  + scenario {data.get('title', '')} ({data.get('severity', '')})"))
    elif kind in ("evaluation.completed", "evaluation.failed"):
        progress.update(task, completed=data.get("done", 0), total=data.get("total") or None)
        if kind == "evaluation.failed":
            say(Text(f"  evaluation failed: {data.get('reason', '')}", "red"))
    elif kind == "run.ranked":
        say(Text(f"ranked {counted(data.get('ranked', 0), 'candidate')}, {data.get('rejected', 0)} rejected"))
    elif kind in ("run.completed", "run.failed", "run.cancelled"):
        colour = "green" if kind == "run.completed" else "red"
        say(Text(f"{kind} {data.get('reason', '')}".rstrip(), colour))
        # The stream ends with the summary, which waits for the spec service: say what is awaited.
        if kind == "run.cancelled":
            # One cancelled before it started has no summary; one that ran waits for its calls in flight.
            say(Text("if it had started, the run posts its summary to the chat once its calls in flight end…", "dim"))
        else:
            say(Text("posting the run's summary to the chat…", "dim"))
    elif kind == "summary.posted":
        say(Text(f"summary posted to the chat: {data.get('message_id') or '—'}"))


@run_app.command("show")
def show(run_id: str, fmt: FormatOption = Format.table) -> None:
    """Show a run with its trigger, recommendation, counts and cost."""
    run = call("GET", f"/api/runs/{run_id}")
    if fmt is Format.json:
        print_json(run)
    else:
        _show_run(run)


@run_app.command("results")
def results(run_id: str, fmt: FormatOption = Format.table) -> None:
    """The ranking: candidates best first (I = P / R), rejected ones last."""
    ranking = call("GET", f"/api/runs/{run_id}/results")
    if fmt is Format.json:
        print_json(ranking)
    else:
        _show_results(ranking)


@run_app.command("lineage")
def lineage(run_id: str, fmt: FormatOption = Format.table) -> None:
    """Where a run came from and what it led to: recommendation, trigger, trace, summary and the linking spans."""
    found = call("GET", f"/api/runs/{run_id}/lineage")
    if fmt is Format.json:
        print_json(found)
    else:
        _show_lineage(found)


def _message(message: dict[str, Any] | None) -> str:
    if message is None:
        return "—"
    label = message["label"] if message["found"] else "(not in the chat any more)"
    return f"{message['message_id']}\n{label}"


def _show_lineage(found: dict[str, Any]) -> None:
    trigger = found["trigger"]
    table = Table(Column(style="bold"), Column(min_width=36, overflow="fold"), show_header=False, box=box.SIMPLE)
    services = ", ".join(found["trace_services"])
    rows = [
        ("run", found["run_id"]),
        ("recommended by", _message(found["recommendation"])),
        ("config", json.dumps(found["recommended_config"]) if found["recommended_config"] is not None else "—"),
        ("trigger", trigger["source"]),
        ("trigger id", trigger["id"]),
        ("triggered at", when(trigger["at"])),
        ("trigger metadata", json.dumps(trigger["metadata"])),
        ("trace", found["trace_id"] or "— (not executed yet)"),
        ("spans in trace", f"{found['trace_span_count']} ({services})" if services else "—"),
        ("summary", _message(found["summary"])),
    ]
    for key, value in rows:
        table.add_row(key, Text(value))
    console.print(table)
    if not found["spans_stored_locally"]:
        console.print(Text(found["spans_note"], "yellow"))
    for span in found["spans"]:
        console.print(_span(span))


def _span(span: dict[str, Any]) -> Text:
    """A span of the chain: its role and name, its ids whole (never cut), its links."""
    if span["found"]:
        took = _duration(span["started_at"], span["ended_at"])
        text = Text.assemble((span["role"], "bold"), f"  {span['name']} ({span['service']}) {took}")
    else:
        text = Text.assemble((span["role"], "bold"), ("  not in the local trace files", "yellow"))
    text.append(f"\n  trace {span['trace_id']}\n  span  {span['span_id']}")
    for link in span["links"]:
        kind = link["attributes"].get("crucible.link", "link")
        text.append(f"\n  → {kind} {link['trace_id']}/{link['span_id']}", "cyan")
    return text


def _duration(started: str | None, ended: str | None) -> str:
    if not started or not ended:
        return ""
    seconds = (datetime.fromisoformat(ended) - datetime.fromisoformat(started)).total_seconds()
    return f"{seconds:.3f} s"


@run_app.command("cancel")
def cancel(
    run_id: str,
    reason: Annotated[str, typer.Option("--reason", "-r")] = "",
    fmt: FormatOption = Format.table,
) -> None:
    """Stop a run; what it has done so far is kept."""
    run = call("POST", f"/api/runs/{run_id}/cancel", json={"reason": reason})
    if fmt is Format.json:
        print_json(run)
    else:
        _show_run(run)


@run_app.command("list")
def list_runs(
    project_id: str,
    status: Annotated[Status | None, typer.Option("--status", help="Only runs in this status.")] = None,
    page_size: Annotated[int, typer.Option(help="Runs per page (0: the service's default).")] = 0,
    page_token: Annotated[str, typer.Option(help="next_page_token of the previous page.")] = "",
    fmt: FormatOption = Format.table,
) -> None:
    """A project's runs, newest first, a page at a time."""
    params: dict[str, Any] = {"page_size": page_size, "page_token": page_token}
    if status:
        params["status"] = status
    page = call("GET", f"/api/projects/{project_id}/runs", params=params)
    if fmt is Format.json:
        print_json(page)
        return
    table = compact_table(id_column(), fixed_column("status"), fixed_column("mode"), fixed_column("created"))
    for r in page["runs"]:
        table.add_row(r["id"], r["status"], r["mode"], when(r["created_at"])[:16])
    console.print(table)
    if page["next_page_token"]:
        console.print(Text(f"more: --page-token {page['next_page_token']}"))
