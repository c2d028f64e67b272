"""``crucible spec``: a task, the planning interview's questions, your answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

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
    when,
)
from crucible_common.wording import counted

spec_app = typer.Typer(
    help="Specs: a task, clarifying questions from a planning interview, answers.", no_args_is_help=True
)

Mode = Literal["dual_subagent", "single", "stub"]


def _fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {escape(message)}", markup=True, highlight=False)
    return typer.Exit(2)


def _show(spec: dict[str, Any], fmt: Format) -> None:
    if fmt is Format.json:
        console.print_json(json.dumps(spec))
        return
    planning = spec["artifacts"]["planning"]
    header = Table(show_header=False)
    # Texts from people and models are shown as they are, never read as rich markup.
    for key in ("id", "title", "status", "task"):
        header.add_row(key, Text(str(spec[key])))
    header.add_row("planning", planning["status"])
    meta = planning["metadata"]
    header.add_row("interview", Text(_interview_summary(meta)))
    console.print(header)
    answers = {a["question"]: a["answer"] for a in planning["answers"]}
    questions = Table("#", "question", "rationale", "answer")
    for i, q in enumerate(planning["questions"], 1):
        questions.add_row(str(i), Text(q["question"]), Text(q["rationale"]), Text(answers.get(q["question"], "—")))
    console.print(questions)
    judge = meta.get("judge")
    if judge and judge.get("rationale"):
        console.print(
            f"judge ({judge['provider']}/{judge['model_name']}): {judge['rationale']}", markup=False, highlight=False
        )


def _interview_summary(meta: dict[str, Any]) -> str:
    selected = meta.get("selected_candidate")
    summary = str(meta.get("mode", ""))
    if selected:
        summary += f", questions by {selected['provider']}/{selected['model_name']}"
    judge = meta.get("judge")
    if judge and judge.get("fallback"):
        summary += f" (fallback rule: {judge.get('fallback_reason', '')})"
    return summary


@spec_app.command("create")
def spec_create(
    task: str,
    title: Annotated[str, typer.Option("--title", "-t", help="Default: the task's first words.")] = "",
    max_questions: Annotated[int, typer.Option("--max-questions", "-n", help="1 to 10 (0: 5).")] = 0,
    mode: Annotated[Mode, typer.Option("--mode", help="stub asks no model (cheap checks only).")] = "dual_subagent",
    fmt: FormatOption = Format.table,
) -> None:
    """Run the planning interview on TASK and store a draft spec with its questions."""
    body = {"task": task, "title": title, "max_questions": max_questions, "mode": mode}
    _show(call("POST", "/api/specs", json=body, timeout=900), fmt)


@spec_app.command("answer")
def spec_answer(
    spec_id: str,
    answer: Annotated[
        list[str] | None,
        typer.Option("--answer", "-a", help='"QUESTION=ANSWER", QUESTION exactly or its number (1, 2, …); repeatable.'),
    ] = None,
    answers_file: Annotated[
        Path | None,
        typer.Option(help='JSON: [{"question": …, "answer": …}] or {"question": "answer", …}.'),
    ] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Answer some or all of a spec's planning questions."""
    answers = _answers_from_file(answers_file) if answers_file else []
    pairs = [_pair(a) for a in answer or []]
    if any(key.isdigit() for key, _ in pairs):
        questions = [q["question"] for q in call("GET", f"/api/specs/{spec_id}")["artifacts"]["planning"]["questions"]]
        pairs = [(_numbered(key, questions), text) for key, text in pairs]
    answers += [{"question": key, "answer": text} for key, text in pairs]
    if not answers:
        raise _fail("give at least one --answer or an --answers-file")
    result = call("POST", f"/api/specs/{spec_id}/answers", json={"answers": answers})
    if fmt is Format.json:
        console.print_json(json.dumps(result))
        return
    _show(result["spec"], fmt)
    remaining = result["unanswered_questions"]
    console.print(
        f"{counted(len(remaining), 'question')} still unanswered" if remaining else "every question is answered"
    )


@spec_app.command("show")
def spec_show(spec_id: str, fmt: FormatOption = Format.table) -> None:
    """Show a spec with its questions and answers."""
    _show(call("GET", f"/api/specs/{spec_id}"), fmt)


@spec_app.command("list")
def spec_list(
    page_size: Annotated[int, typer.Option(help="Specs per request.")] = 100,
    limit: Annotated[int, typer.Option(help="Stop after this many (0: all).")] = 0,
    fmt: FormatOption = Format.table,
) -> None:
    """List specs, newest first."""
    specs: list[dict[str, Any]] = []
    token = ""
    while True:
        page = call("GET", "/api/specs", params={"page_size": page_size, "page_token": token})
        specs.extend(page["specs"])
        token = page["next_page_token"]
        if not token or (limit and len(specs) >= limit):
            break
    specs = specs[:limit] if limit else specs
    if fmt is Format.json:
        console.print_json(json.dumps(specs))
        return
    table = compact_table(id_column("spec"), fixed_column("status"), fixed_column("planning"), fixed_column("created"))
    for s in specs:
        title = Text.assemble((s["title"], "bold"), "\n", s["id"])
        table.add_row(fit_id(title), s["status"], s["artifacts"]["planning"]["status"], when(s["created_at"])[:16])
    console.print(table)


def _pair(value: str) -> tuple[str, str]:
    question, sep, text = value.partition("=")
    if not sep or not question.strip():
        raise _fail(f'--answer takes "QUESTION=ANSWER", got {value!r}')
    return question.strip(), text.strip()


def _numbered(key: str, questions: list[str]) -> str:
    if not key.isdigit():
        return key
    if not 1 <= int(key) <= len(questions):
        raise _fail(f"question number {key} is not between 1 and {len(questions)}")
    return questions[int(key) - 1]


def _answers_from_file(path: Path) -> list[dict[str, str]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot read {path}: {exc}") from exc
    if isinstance(data, dict) and all(isinstance(v, str) for v in data.values()):
        return [{"question": q, "answer": a} for q, a in data.items()]
    if isinstance(data, list) and all(
        isinstance(x, dict) and isinstance(x.get("question"), str) and isinstance(x.get("answer"), str) for x in data
    ):
        return [{"question": x["question"], "answer": x["answer"]} for x in data]
    raise _fail(f'{path} must hold [{{"question": …, "answer": …}}, …] or {{"question": "answer", …}}')
