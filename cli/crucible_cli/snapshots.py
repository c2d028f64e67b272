"""``crucible snapshot …``: freeze a project's state, replay it, and gate CI on a suite of replays.

``test`` exits 0 when every snapshot passed, 1 when one failed (an invariant broken), and 2 when
the harness itself could not judge (the report FAILED, a snapshot it could not replay, the
gateway unreachable, bad input), so a CI job tells a regression from a broken pipeline.
"""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import typer
from pydantic import BaseModel, Field, ValidationError
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from rich.text import Text

from crucible_cli.api_client import ApiClient, ApiError
from crucible_cli.output import (
    Format,
    FormatOption,
    call,
    comma_list,
    compact_table,
    console,
    errors,
    fit_id,
    fixed_column,
    id_column,
    json_objects_file,
    print_json,
    text_column,
    usd,
    websocket_events,
    when,
    wide_id_column,
)
from crucible_common.errors import field_path
from crucible_common.wording import counted, pairs

snapshot_app = typer.Typer(
    help="Snapshots: a project's state frozen with the invariants its replays must keep; suites of replays.",
    no_args_is_help=True,
)

EXIT_PASSED, EXIT_FAILED, EXIT_HARNESS = 0, 1, 2
FILE_FORMAT: Final = "crucible-snapshots"
PAGE_SIZE = 100

Phases = Literal["all", "full", "design", "evaluate"]
ReplayMode = Literal["live", "recorded"]

TagsOption = Annotated[str, typer.Option("--tags", help="Comma-separated: a,b.")]
PhasesOption = Annotated[Phases, typer.Option("--phases", help="Which phases a replay runs.")]
CandidatesOption = Annotated[
    int | None, typer.Option("--num-candidates", min=1, help="Override the snapshot's run configuration.")
]
ScenariosOption = Annotated[
    int | None, typer.Option("--num-scenarios", min=1, help="Override the snapshot's run configuration.")
]
ReplayModeOption = Annotated[
    ReplayMode,
    typer.Option("--replay-mode", help="live calls the models; recorded answers from the source run's calls, at $0."),
]


# ---------------------------------------------------------------- create, list, show, delete


def _invariants(path: Path | None) -> list[dict[str, Any]]:
    """A JSON array of invariants (or ``{"invariants": [...]}``)."""
    if path is None:
        return []
    return json_objects_file(path, "invariants", "{type, value, description}", key="invariants", exit_code=EXIT_HARNESS)


@snapshot_app.command("create")
def create(
    project_id: Annotated[str, typer.Option("--project-id", help="Freeze this project's current state.")] = "",
    run_id: Annotated[str, typer.Option("--run-id", help="Its configuration and metrics become the reference.")] = "",
    from_run: Annotated[
        str, typer.Option("--from-run", help='Snapshot this run in one call (its project; "failure" if it failed).')
    ] = "",
    from_snapshot: Annotated[
        str, typer.Option("--from-snapshot", help="A new snapshot of this one's data (new tags or invariants).")
    ] = "",
    name: Annotated[str, typer.Option("--name", help="Unique. Optional with --from-run.")] = "",
    description: Annotated[str, typer.Option("--description")] = "",
    tags: TagsOption = "",
    invariants_file: Annotated[
        Path | None, typer.Option("--invariants-file", help="A JSON array of {type, value, description}.")
    ] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Create an immutable snapshot from a project, a run, or another snapshot."""
    invariants = _invariants(invariants_file)
    if from_run:
        body = {"name": name, "description": description, "tags": comma_list(tags), "invariants": invariants}
        snapshot = call("POST", f"/api/runs/{from_run}/snapshot", json=body)
    else:
        if not (project_id or from_snapshot) or not name:
            errors.print(Text("error: give --name and --project-id (or --from-snapshot), or --from-run", "red"))
            raise typer.Exit(EXIT_HARNESS)
        body = {
            "name": name,
            "project_id": project_id,
            "run_id": run_id,
            "parent_snapshot_id": from_snapshot,
            "description": description,
            "tags": comma_list(tags),
            "invariants": invariants,
        }
        snapshot = call("POST", "/api/snapshots", json=body)
    if fmt is Format.json:
        print_json(snapshot)
    else:
        _show_snapshot(snapshot)


def _pages(params: dict[str, Any], limit: int = 0, *, exit_code: int = 1) -> Iterator[dict[str, Any]]:
    """Every snapshot matching ``params``, newest first, a page at a time."""
    token, seen = "", 0
    while True:
        page = call(
            "GET",
            "/api/snapshots",
            params={**params, "page_size": PAGE_SIZE, "page_token": token},
            exit_code=exit_code,
        )
        for snapshot in page["snapshots"]:
            yield snapshot
            seen += 1
            if limit and seen >= limit:
                return
        token = page["next_page_token"]
        if not token:
            return


def _filters(tags: str, project_id: str = "", name: str = "") -> dict[str, Any]:
    params: dict[str, Any] = {"tags": comma_list(tags)}
    if project_id:
        params["project_id"] = project_id
    if name:
        params["name"] = name
    return params


@snapshot_app.command("list")
def list_snapshots(
    tags: Annotated[str, typer.Option("--tags", help="Comma-separated; every tag must match.")] = "",
    project_id: Annotated[str, typer.Option("--project-id")] = "",
    name: Annotated[str, typer.Option("--name", help="A case-insensitive part of the name.")] = "",
    limit: Annotated[int, typer.Option(help="Stop after this many (0: all).")] = 0,
    fmt: FormatOption = Format.table,
) -> None:
    """Snapshots, newest first."""
    found = list(_pages(_filters(tags, project_id, name), limit))
    if fmt is Format.json:
        print_json(found)
        return
    table = compact_table(
        id_column("snapshot"), text_column("tags"), fixed_column("source run"), fixed_column("created")
    )
    for s in found:
        table.add_row(
            fit_id(Text.assemble((s["name"], "bold"), "\n", s["id"])),
            Text(", ".join(s["tags"])),
            "yes" if s["run_id"] else "—",
            when(s["created_at"])[:16],
        )
    console.print(table)


def _metrics_text(m: dict[str, Any] | None) -> str:
    if m is None:
        return "— (no source run)"
    top = "—" if m["top_i"] is None else f"I {m['top_i']:.2f} (P {m['top_p']:.2f}, R {m['top_r']:.2f})"
    duration = "—" if m["duration_seconds"] is None else f"{m['duration_seconds']:.1f} s"
    return (
        f"{m['status']}: {pairs(m['candidates'], m['scenarios'])}, {counted(m['evaluations'], 'evaluation')} "
        f"({m['failed_evaluations']} failed), coverage {m['coverage']:.0%}, top {top}, {duration}, ${m['usd']:.4f}"
    )


def _show_snapshot(s: dict[str, Any]) -> None:
    table = Table(Column(style="bold"), Column(min_width=36, overflow="fold"), show_header=False, box=box.SIMPLE)
    rows = [
        ("id", s["id"]),
        ("name", s["name"]),
        ("description", s["description"] or "—"),
        ("tags", ", ".join(s["tags"]) or "—"),
        ("project", s["project_id"]),
        ("source run", s["run_id"] or "—"),
        ("parent", s["parent_id"] or "—"),
        ("data version", s["version"]),
        ("reference", _metrics_text(s["reference_metrics"])),
        ("created", when(s["created_at"])),
    ]
    data = s.get("snapshot_data")
    if data:
        spec = data.get("problem_spec", {})
        config = data.get("run_config", {})
        constraints, goals = len(spec.get("constraints", [])), len(spec.get("goals", []))
        rows.append(("problem spec", f"{counted(constraints, 'constraint')}, {counted(goals, 'goal')}"))
        rows.append(("run config", json.dumps(config) if config else "—"))
        rows.append(("chat context", counted(len(data.get("chat_context", [])), "message")))
    for key, value in rows:
        table.add_row(key, Text(str(value)))
    console.print(table)
    for i in s["invariants"]:
        console.print(
            Text.assemble(("• ", "cyan"), (i["type"], "bold"), f" {json.dumps(i['value'])}  {i['description']}")
        )
    reference = s.get("reference_results") or []
    if reference:
        # An invariant the source run broke fails every replay that behaves like it: said here, not
        # first in a suite's report.
        broken = sum(1 for r in reference if r["status"] != "passed")
        console.print(Text(f"on the reference run: {len(reference) - broken} of {len(reference)} hold"))
        for line in _invariant_lines(reference, only_failures=True):
            console.print(line)


@snapshot_app.command("show")
def show(snapshot_id: str, fmt: FormatOption = Format.table) -> None:
    """A snapshot with its data, reference metrics and invariants."""
    snapshot = call("GET", f"/api/snapshots/{snapshot_id}")
    if fmt is Format.json:
        print_json(snapshot)
    else:
        _show_snapshot(snapshot)


@snapshot_app.command("delete")
def delete(
    snapshot_id: str,
    confirm: Annotated[bool, typer.Option("--confirm", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete a snapshot (asks first unless --confirm)."""
    if not confirm:
        typer.confirm(f"Delete snapshot {snapshot_id}? This cannot be undone", abort=True)
    call("DELETE", f"/api/snapshots/{snapshot_id}", params={"confirm": "true"})
    console.print(Text(f"deleted {snapshot_id}"))


# ---------------------------------------------------------------- replay


def _invariant_lines(
    invariants: list[dict[str, Any]], *, repetitions: int = 1, only_failures: bool = False
) -> Iterator[Text]:
    marks = {"passed": ("✔", "green"), "failed": ("✘", "red"), "error": ("!", "yellow")}
    for i in invariants:
        if only_failures and i["status"] == "passed":
            continue
        mark, colour = marks.get(i["status"], ("?", ""))
        line = Text.assemble((f"{mark} ", colour), (i["type"], "bold"))
        line.append(f"  expected {json.dumps(i['expected'])}, actual {json.dumps(i['actual'])}")
        if repetitions > 1:
            line.append(f", held in {i['pass_rate']:.0%} of {repetitions} repetitions")
        if i["message"]:
            line.append(f"\n    {i['message']}")
        yield line


@snapshot_app.command("replay")
def replay(
    snapshot_id: str,
    phases: PhasesOption = "all",
    num_candidates: CandidatesOption = None,
    num_scenarios: ScenariosOption = None,
    reuse_project: Annotated[
        bool, typer.Option("--reuse-project", help="Restore into the source project, not a new one.")
    ] = False,
    replay_mode: ReplayModeOption = "live",
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the run and check the invariants.")] = True,
    fmt: FormatOption = Format.table,
) -> None:
    """Replay a snapshot into a new project; exits 1 when an invariant fails."""
    body = {
        "phases": phases,
        "num_candidates": num_candidates,
        "num_scenarios": num_scenarios,
        "reuse_project": reuse_project,
        "replay_mode": replay_mode,
        "wait": wait,
        # This invocation is the explicit action: a retry of the same request is the same replay.
        "ui_trigger_id": f"cli-{uuid.uuid4()}",
    }
    out = errors if fmt is Format.json else console
    with out.status(f"replaying {snapshot_id} ({replay_mode})…", spinner="dots"):
        result = call("POST", f"/api/snapshots/{snapshot_id}/replay", json=body, timeout=None)
    failed = any(i["status"] != "passed" for i in result["invariants"])
    if fmt is Format.json:
        print_json(result)
    else:
        console.print(Text(f"run {result['run_id']} in project {result['project_id']}: {result['status']}"))
        if result["metrics"] is not None:
            console.print(Text(_metrics_text(result["metrics"])))
        for line in _invariant_lines(result["invariants"]):
            console.print(line)
        if not wait:
            console.print(Text(f"follow it: crucible run watch {result['run_id']}"))
    raise typer.Exit(EXIT_FAILED if failed else EXIT_PASSED)


# ---------------------------------------------------------------- test: a suite, for CI


def _suite_events(report_id: str) -> Iterator[dict[str, Any]]:
    """A suite's events; a reopened stream starts again from the beginning, so the caller skips
    results it has seen."""
    return websocket_events(
        lambda: f"/api/ws/snapshot-reports/{report_id}", "the suite's events", exit_code=EXIT_HARNESS
    )


def _result_line(r: dict[str, Any]) -> Text:
    marks = {"passed": ("✔", "green"), "failed": ("✘", "red"), "skipped": ("○", "yellow"), "error": ("!", "red")}
    mark, colour = marks.get(r["status"], ("?", ""))
    line = Text.assemble((f"{mark} ", colour), (r["snapshot_name"], "bold"), f" {r['status']}")
    if r["reason"]:
        line.append(f": {r['reason']}")
    return line


def _follow_suite(report_id: str, total: int, out: Console) -> dict[str, Any]:
    """The suite's report, with a progress bar of its snapshots until it arrives (and of its replays,
    with repetitions: a snapshot's result waits for all of its own)."""
    seen: set[str] = set()
    replays: TaskID | None = None
    repetitions = 1
    replays_over: set[tuple[str, int]] = set()
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=out
    ) as progress:
        task = progress.add_task("snapshots", total=total or None)
        for event in _suite_events(report_id):
            if event["type"] == "started" and event.get("repetitions", 1) > 1 and replays is None:
                repetitions = event["repetitions"]
                replays = progress.add_task("replays", total=len(event["snapshot_ids"]) * repetitions)
            elif event["type"] == "replay" and replays is not None and event["replay"]["state"] in ("ended", "skipped"):
                over = (event["replay"]["snapshot_id"], event["replay"]["repetition"])
                if over not in replays_over:
                    replays_over.add(over)
                    progress.advance(replays)
            elif event["type"] == "result" and event["result"]["snapshot_id"] not in seen:
                snapshot_id = event["result"]["snapshot_id"]
                seen.add(snapshot_id)
                progress.advance(task)
                if replays is not None:
                    # A snapshot's result ends its replays, those never told over too (some never ran).
                    untold = {(snapshot_id, r) for r in range(1, repetitions + 1)} - replays_over
                    if untold:
                        replays_over |= untold
                        progress.advance(replays, len(untold))
                progress.console.print(_result_line(event["result"]))
            elif event["type"] == "report":
                report: dict[str, Any] = event["report"]
                return report
            elif event["type"] == "error":
                problem = event.get("problem", {})
                errors.print(Text(f"error: {problem.get('detail', problem)}", "red"))
                raise typer.Exit(EXIT_HARNESS)
    # The stream closed without the report (the service restarted): the stored one is the truth.
    stored: dict[str, Any] = call("GET", f"/api/snapshot-reports/{report_id}", exit_code=EXIT_HARNESS)
    if stored["status"] == "running":
        errors.print(Text(f"error: the suite's stream ended while {report_id} is still running", "red"))
        raise typer.Exit(EXIT_HARNESS)
    return stored


def exit_code(report: dict[str, Any]) -> int:
    """0 all passed; 1 a snapshot failed (a regression); 2 the harness could not judge."""
    if report["status"] == "failed":
        return EXIT_HARNESS
    statuses = {r["status"] for r in report["results"]}
    if "failed" in statuses:
        return EXIT_FAILED
    if "error" in statuses:
        return EXIT_HARNESS
    return EXIT_PASSED


def _show_report(report: dict[str, Any]) -> None:
    s = report["summary"]
    colour = "green" if exit_code(report) == EXIT_PASSED else "red"
    head = f"{report['status']}: {s['passed']} passed, {s['failed']} failed, {s['skipped']} skipped"
    if s["errors"]:
        head += f", {counted(s['errors'], 'error')}"
    console.print(Text(f"{head} of {s['total']}; total {usd(report['total_cost_usd'])}", colour))
    if report["error"]:
        console.print(Text(f"harness failure: {report['error']}", "red"))
    table = compact_table(fixed_column("status"), wide_id_column("snapshot"), fixed_column("cost", justify="right"))
    colours = {"passed": "green", "skipped": "yellow"}
    for r in report["results"]:
        cell = Text.assemble((r["snapshot_name"], "bold"), "\n", r["snapshot_id"])
        if r["replay_run_id"]:
            cell.append(f"\nreplay run {r['replay_run_id']}")
        for line in _invariant_lines(r["invariants"], repetitions=r["repetitions"], only_failures=True):
            cell.append("\n")
            cell.append(line)
        for key, d in r["metrics_delta"].items():
            if d["flagged"]:
                change = f"{_num(d['baseline'])} → {_num(d['replay'])} ({_num(d['delta'], sign=True)})"
                cell.append(f"\nΔ {key}: {change}", "yellow")
        if r["reason"]:
            cell.append(f"\n{r['reason']}")
        table.add_row(Text(r["status"], colours.get(r["status"], "red")), cell, usd(r["cost_usd"]))
    console.print(table)
    console.print(Text(f"report {report['id']}"))


def _num(value: float | None, *, sign: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+g}" if sign else f"{value:g}"


@snapshot_app.command("test")
def run_tests(
    snapshot_ids: Annotated[str, typer.Option("--snapshot-ids", help="Comma-separated ids.")] = "",
    all_snapshots: Annotated[bool, typer.Option("--all", help="Every snapshot.")] = False,
    tags: Annotated[str, typer.Option("--tags", help="The snapshots with every one of these tags: a,b.")] = "",
    max_snapshots: Annotated[int, typer.Option("--max-snapshots", min=0, help="At most this many (0: all).")] = 0,
    phases: PhasesOption = "all",
    num_candidates: CandidatesOption = None,
    num_scenarios: ScenariosOption = None,
    stop_on_failure: Annotated[bool, typer.Option("--stop-on-failure", help="Skip the rest after a failure.")] = False,
    cost_limit_usd: Annotated[
        float | None, typer.Option("--cost-limit-usd", min=0, help="Skip replays that would cross it.")
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=0, help="Replays at once (0: default).")] = 0,
    replay_mode: ReplayModeOption = "live",
    repetitions: Annotated[int, typer.Option("--repetitions", min=1, help="Replays of each snapshot.")] = 1,
    min_pass_rate: Annotated[
        float | None,
        typer.Option("--min-pass-rate", min=0, max=1, help="Share of repetitions each invariant must hold in (1.0)."),
    ] = None,
    junit_xml: Annotated[
        Path | None, typer.Option("--junit-xml", help="Write a JUnit report: a case per snapshot and invariant.")
    ] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Replay snapshots and check their invariants. Exits 0 all passed, 1 a snapshot failed, 2 the harness failed.

    With --format json the progress goes to stderr and stdout gets the report's JSON alone.
    """
    ids = comma_list(snapshot_ids)
    if sum((bool(ids), bool(tags), all_snapshots)) != 1:
        errors.print(Text("error: give one of --snapshot-ids a,b, --tags a,b or --all", "red"))
        raise typer.Exit(EXIT_HARNESS)
    if tags:
        # A suite is chosen by ids or all: tags are resolved to ids here, in the list's order.
        ids = [s["id"] for s in _pages(_filters(tags), exit_code=EXIT_HARNESS)]
        if not ids:
            errors.print(Text(f"error: no snapshot has every tag of {tags}", "red"))
            raise typer.Exit(EXIT_HARNESS)
    options: dict[str, Any] = {
        "max_snapshots": max_snapshots,
        "phases": phases,
        "num_candidates": num_candidates,
        "num_scenarios": num_scenarios,
        "stop_on_first_failure": stop_on_failure,
        "cost_limit_usd": cost_limit_usd,
        "concurrency": concurrency,
        "replay_mode": replay_mode,
        "repetitions": repetitions,
        "min_pass_rate": min_pass_rate,
    }
    body = {
        "snapshot_ids": ids or None,
        "options": options,
        # Started at once and followed on the WebSocket, for the progress bar.
        "wait": False,
        "ui_trigger_id": f"cli-{uuid.uuid4()}",
    }
    out = errors if fmt is Format.json else console
    started = call("POST", "/api/snapshots/run-tests", json=body, exit_code=EXIT_HARNESS)
    out.print(Text(f"suite {started['report_id']}: {counted(len(started['snapshot_ids']), 'snapshot')}"))
    report = _follow_suite(started["report_id"], len(started["snapshot_ids"]), out)
    if junit_xml is not None:
        write_junit(report, junit_xml)
        out.print(Text(f"JUnit XML: {junit_xml}"))
    if fmt is Format.json:
        print_json(report)
    else:
        _show_report(report)
    raise typer.Exit(exit_code(report))


def junit(report: dict[str, Any]) -> ET.Element:
    """The report as JUnit XML: a case per snapshot (its verdict) and one per invariant (classname: the
    snapshot), a failure carrying expected vs actual, a skipped snapshot skipped, the harness's own
    trouble an error."""
    suite = ET.Element("testsuite", name="crucible.snapshots", timestamp=report["created_at"])
    properties = ET.SubElement(suite, "properties")
    for key, value in (
        ("report_id", report["id"]),
        ("report_status", report["status"]),
        ("total_cost_usd", f"{report['total_cost_usd']:.6f}"),
    ):
        ET.SubElement(properties, "property", name=key, value=value)
    if report["error"]:
        # The harness's own failure belongs to no snapshot: a case of its own, so CI shows it.
        case = ET.SubElement(suite, "testcase", classname="crucible.snapshots", name="harness", time="0")
        ET.SubElement(case, "error", message=report["error"], type="harness")
    for r in report["results"]:
        _junit_snapshot(suite, r)
    cases = suite.findall("testcase")
    counts = {
        "tests": str(len(cases)),
        "failures": str(sum(c.find("failure") is not None for c in cases)),
        "errors": str(sum(c.find("error") is not None for c in cases)),
        "skipped": str(sum(c.find("skipped") is not None for c in cases)),
        "time": f"{_wall_seconds(report):.3f}",
    }
    for key, value in counts.items():
        suite.set(key, value)
    root = ET.Element("testsuites", name="crucible")
    for key, value in counts.items():
        root.set(key, value)
    root.append(suite)
    return root


def _wall_seconds(report: dict[str, Any]) -> float:
    if not report["ended_at"]:
        return 0.0
    return (datetime.fromisoformat(report["ended_at"]) - datetime.fromisoformat(report["created_at"])).total_seconds()


def _junit_snapshot(suite: ET.Element, r: dict[str, Any]) -> None:
    duration = r["metrics_delta"].get("duration_seconds", {}).get("replay") or 0.0
    case = ET.SubElement(suite, "testcase", classname="crucible.snapshots", name=r["snapshot_name"])
    case.set("time", f"{duration:.3f}")
    if r["status"] == "skipped":
        ET.SubElement(case, "skipped", message=r["reason"] or "skipped")
    elif r["status"] == "error":
        ET.SubElement(case, "error", message=r["reason"] or "the harness could not replay it", type="harness")
    elif r["status"] == "failed":
        broken = [i["type"] for i in r["invariants"] if i["status"] != "passed"]
        message = f"invariants not kept: {', '.join(broken)}" if broken else (r["reason"] or "failed")
        ET.SubElement(case, "failure", message=message, type="snapshot")
    lines = [f"snapshot {r['snapshot_id']}", f"replay runs: {', '.join(r['replay_run_ids']) or '—'}"]
    lines.append(f"cost_usd: {r['cost_usd']:.6f}")
    for key, d in r["metrics_delta"].items():
        flag = " FLAGGED" if d["flagged"] else ""
        lines.append(
            f"{key}: baseline {_num(d['baseline'])}, replay {_num(d['replay'])}, delta {_num(d['delta'])}{flag}"
        )
    ET.SubElement(case, "system-out").text = "\n".join(lines)
    names: dict[str, int] = {}
    for i in r["invariants"]:
        # A custom invariant is named by its expression, which the snapshot never changes: a CI's history
        # of the case stays one history. Two alike stay two cases.
        name = f"custom: {i['expected']}" if i["type"] == "custom" else i["type"]
        names[name] = names.get(name, 0) + 1
        if names[name] > 1:
            name = f"{name} #{names[name]}"
        invariant = ET.SubElement(suite, "testcase", classname=f"crucible.snapshots.{r['snapshot_name']}", name=name)
        invariant.set("time", "0")
        detail = f"expected {json.dumps(i['expected'])}, actual {json.dumps(i['actual'])}"
        if i["status"] == "failed":
            failure = ET.SubElement(invariant, "failure", message=detail, type=i["type"])
            failure.text = "\n".join(
                x for x in (i["description"], i["message"], f"pass rate {i['pass_rate']:.2f}") if x
            )
        elif i["status"] == "error":
            ET.SubElement(invariant, "error", message=i["message"] or detail, type=i["type"])


def write_junit(report: dict[str, Any], path: Path) -> None:
    tree = ET.ElementTree(junit(report))
    ET.indent(tree)
    try:
        tree.write(path, encoding="utf-8", xml_declaration=True)
    except OSError as exc:
        errors.print(Text(f"error: cannot write {path}: {exc}", "red"))
        raise typer.Exit(EXIT_HARNESS) from exc


# ---------------------------------------------------------------- export and import


class ExportedSnapshot(BaseModel):
    name: str = Field(min_length=1)
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    invariants: list[dict[str, Any]] = Field(default_factory=list)
    # Checked (and migrated from older versions) by the snapshot service.
    snapshot_data: dict[str, Any]
    reference_metrics: dict[str, Any] | None = None
    # What the snapshot was made from, for the reader.
    source: dict[str, Any] | None = None


class SnapshotFile(BaseModel):
    """``crucible snapshot export``'s file, which ``import`` reads (docs/examples/snapshots.json is one)."""

    format: Literal["crucible-snapshots"] = FILE_FORMAT
    version: Literal[1] = 1
    snapshots: list[ExportedSnapshot]


def _exported(s: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": s["name"],
        "description": s["description"],
        "tags": s["tags"],
        "invariants": s["invariants"],
        "snapshot_data": s["snapshot_data"],
        "reference_metrics": s["reference_metrics"],
        "source": {
            "id": s["id"],
            "project_id": s["project_id"],
            "run_id": s["run_id"],
            "parent_id": s["parent_id"],
            "version": s["version"],
            "created_at": s["created_at"],
        },
    }


@snapshot_app.command("export")
def export(
    path: Annotated[Path, typer.Argument(help="The JSON file to write; - for stdout.")],
    snapshot_ids: Annotated[str, typer.Option("--snapshot-ids", help="Comma-separated ids.")] = "",
    tags: Annotated[str, typer.Option("--tags", help="Comma-separated; every tag must match.")] = "",
    all_snapshots: Annotated[bool, typer.Option("--all", help="Every snapshot.")] = False,
) -> None:
    """Write snapshots, with their full data, to a JSON file that `crucible snapshot import` reads."""
    ids = comma_list(snapshot_ids)
    if sum((bool(ids), bool(tags), all_snapshots)) != 1:
        errors.print(Text("error: give one of --snapshot-ids a,b, --tags a,b or --all", "red"))
        raise typer.Exit(EXIT_HARNESS)
    if not ids:
        ids = [s["id"] for s in _pages(_filters(tags))]
    # The list leaves the data out: each snapshot is read whole.
    chosen = [_exported(call("GET", f"/api/snapshots/{i}")) for i in ids]
    text = json.dumps({"format": FILE_FORMAT, "version": 1, "snapshots": chosen}, indent=2, ensure_ascii=False)
    if str(path) == "-":
        typer.echo(text)
        return
    try:
        path.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        errors.print(Text(f"error: cannot write {path}: {exc}", "red"))
        raise typer.Exit(1) from exc
    console.print(Text(f"exported {counted(len(chosen), 'snapshot')} to {path}"))


def _read_file(path: Path) -> SnapshotFile:
    try:
        return SnapshotFile.model_validate_json(path.read_bytes())
    except OSError as exc:
        errors.print(Text(f"error: cannot read {path}: {exc}", "red"))
        raise typer.Exit(EXIT_HARNESS) from exc
    except ValidationError as exc:
        problems = "; ".join(f"{field_path(e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        errors.print(Text(f"error: {path} is no snapshot file ({problems})", "red"))
        raise typer.Exit(EXIT_HARNESS) from exc


def _existing(client: ApiClient, name: str) -> str | None:
    """The id of the snapshot named exactly ``name`` (the list matches parts of names), if any."""
    token = ""
    while True:
        page = client.request(
            "GET", "/api/snapshots", params={"name": name, "page_size": PAGE_SIZE, "page_token": token}
        )
        for s in page["snapshots"]:
            if s["name"] == name:
                found: str = s["id"]
                return found
        token = page["next_page_token"]
        if not token:
            return None


def _import_one(client: ApiClient, entry: ExportedSnapshot) -> dict[str, str]:
    existing = _existing(client, entry.name)
    if existing is not None:
        return {"name": entry.name, "status": "exists", "id": existing, "detail": ""}
    # The service migrates and checks the data; the snapshot belongs to no project, and its replays
    # restore it into a new one.
    created = client.request(
        "POST",
        "/api/snapshots",
        json={
            "name": entry.name,
            "description": entry.description,
            "tags": entry.tags,
            "invariants": entry.invariants,
            "snapshot_data": entry.snapshot_data,
            "reference_metrics": entry.reference_metrics,
        },
    )
    return {"name": entry.name, "status": "created", "id": created["id"], "detail": f"version {created['version']}"}


@snapshot_app.command("import")
def import_snapshots(
    path: Annotated[Path, typer.Argument(help="A file written by `crucible snapshot export`.")],
    fmt: FormatOption = Format.table,
) -> None:
    """Create the file's snapshots from their data (replays restore each into a new project); a name that exists is
    reported and left alone, so importing twice creates nothing twice. Exits 1 when one could not be made."""
    loaded = _read_file(path)
    client = ApiClient()
    outcomes: list[dict[str, str]] = []
    try:
        for entry in loaded.snapshots:
            try:
                outcomes.append(_import_one(client, entry))
            except ApiError as exc:
                if exc.status is None:
                    errors.print(Text(f"error: {exc}", "red"))
                    raise typer.Exit(EXIT_HARNESS) from exc
                outcomes.append({"name": entry.name, "status": "failed", "id": "", "detail": str(exc)})
    finally:
        client.close()
    if fmt is Format.json:
        print_json(outcomes)
    else:
        table = compact_table(fixed_column("status"), wide_id_column("snapshot"))
        colours = {"created": "green", "exists": "yellow", "failed": "red"}
        for o in outcomes:
            cell = Text.assemble((o["name"], "bold"), *(f"\n{part}" for part in (o["id"], o["detail"]) if part))
            table.add_row(Text(o["status"], colours[o["status"]]), cell)
        console.print(table)
    raise typer.Exit(1 if any(o["status"] == "failed" for o in outcomes) else 0)
