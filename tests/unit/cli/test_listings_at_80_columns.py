"""Every listing of the CLI in an 80-column terminal: ids whole on one line, no line wider than the terminal.

The texts around the ids are long on purpose (titles, descriptions, tags, model names, summaries):
they are what has to give way.
"""

from __future__ import annotations

import inspect

import pytest
import typer
from starlette.testclient import TestClient
from typer.testing import CliRunner, Result

from crucible.agent.v1 import agent_service_pb2 as agent_pb
from crucible.agent.v1 import sprint_service_pb2 as sprint_pb
from crucible.run.v1 import run_service_pb2 as run_pb
from crucible.snapshot.v1 import snapshot_service_pb2 as snap_pb
from crucible.spec.v1 import spec_service_pb2 as spec_pb
from crucible_cli.main import app
from tests.unit.gateway.fakes import (
    AGENT_RUN_ID,
    CANDIDATE_ID,
    PROJECT_ID,
    RUN_ID,
    SNAPSHOT_ID,
    SPEC_ID,
    SPRINT_ID,
    Fakes,
    project,
    run,
    run_results,
    snapshot,
    spec,
    sprint,
    usage,
)

LONG = "A rather long title, about the resilience of a regional power grid under a heat wave"
WIDTH = 80


def at_80_columns(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": str(WIDTH)})


def assert_fits_with_whole_ids(result: Result, *ids: str) -> None:
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= WIDTH, result.output
    for id_ in ids:
        assert any(id_ in line for line in lines), f"{id_} is not whole on a line of:\n{result.output}"


@pytest.fixture
def long_texts(fakes: Fakes) -> Fakes:
    long_project = project(LONG)
    long_project.description = LONG + ". " + LONG
    fakes.spec.answer("ListProjects", spec_pb.ListProjectsResponse(projects=[long_project]))
    long_spec = spec()
    long_spec.title = LONG
    fakes.spec.answer("ListSpecs", spec_pb.ListSpecsResponse(specs=[long_spec]))
    long_sprint = sprint()
    long_sprint.name = LONG
    long_sprint.phases[0].summary = LONG + "\n" + LONG
    long_sprint.phases[1].agent_run_id = AGENT_RUN_ID
    fakes.sprints.answer("ListSprints", sprint_pb.ListSprintsResponse(sprints=[long_sprint]))
    fakes.sprints.answer("GetSprint", sprint_pb.GetSprintResponse(sprint=long_sprint))
    fakes.sprints.answer(
        "ListArtifacts",
        sprint_pb.ListArtifactsResponse(artifacts=[sprint_pb.Artifact(path="pkg/" + "very_long_name/" * 5 + "x.py")]),
    )
    total = usage(12)
    total.cancelled_calls = 2
    fakes.agent.answer(
        "GetUsage",
        agent_pb.GetUsageResponse(
            total=total,
            by_model=[
                agent_pb.ModelUsage(provider="anthropic", model_name="claude-haiku-4-5-20251001", usage=usage(7)),
                agent_pb.ModelUsage(provider="openai", model_name="gpt-4o-mini-2024-07-18", priced=True, usage=usage()),
            ],
        ),
    )
    long_run = run()
    fakes.runs.answer("ListRuns", run_pb.ListRunsResponse(runs=[long_run, long_run]))
    results = run_results()
    results.candidates[0].title = LONG
    fakes.runs.answer("GetRunResults", results)
    long_snapshot = snapshot(data=False)
    long_snapshot.name = LONG
    long_snapshot.tags[:] = ["nightly", "regression", "grid", "heat-wave", "resilience", "baseline"]
    fakes.snapshots.answer("ListSnapshots", snap_pb.ListSnapshotsResponse(snapshots=[long_snapshot]))
    return fakes


LISTINGS = [
    (["project", "list"], [PROJECT_ID]),
    (["spec", "list"], [SPEC_ID]),
    (["sprint", "list"], [SPRINT_ID]),
    (["sprint", "show", SPRINT_ID], [SPRINT_ID, SPEC_ID, AGENT_RUN_ID]),
    (["sprint", "artifacts", SPRINT_ID], []),
    # Model names are ids too.
    (["usage"], ["claude-haiku-4-5-20251001", "gpt-4o-mini-2024-07-18"]),
    (["run", "list", PROJECT_ID], [RUN_ID]),
    (["run", "results", RUN_ID], [CANDIDATE_ID]),
    (["snapshot", "list"], [SNAPSHOT_ID]),
]


@pytest.mark.parametrize(("command", "ids"), LISTINGS, ids=[" ".join(c[:2]) for c, _ in LISTINGS])
def test_a_listing_at_80_columns_shows_every_id_whole(
    long_texts: Fakes, rest_gateway: TestClient, command: list[str], ids: list[str]
) -> None:
    assert_fits_with_whole_ids(at_80_columns(*command), *ids)


def test_usage_counts_cancelled_calls_apart_from_the_usd(long_texts: Fakes, rest_gateway: TestClient) -> None:
    result = at_80_columns("usage")

    assert "0.123457 + cancelled (2 calls, cost unknown)" in " ".join(result.output.split())


def test_the_texts_that_give_way_are_folded_not_lost(long_texts: Fakes, rest_gateway: TestClient) -> None:
    result = at_80_columns("project", "list")

    assert " ".join(result.output.split()).count("heat wave") == 3


def _commands(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        return [path]
    return [p for name, sub in subcommands.items() for p in _commands(sub, (*path, name))]


@pytest.mark.parametrize("path", _commands(typer.main.get_command(app)), ids=" ".join)
def test_each_command_s_help_flows_its_paragraphs_to_the_terminal(path: tuple[str, ...]) -> None:
    """Typer keeps a docstring's line breaks after its first paragraph: one would cut a sentence
    short in the middle of an 80-column line. Each paragraph is written on one line."""
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=WIDTH, env={"COLUMNS": str(WIDTH)})

    assert result.exit_code == 0, result.output
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    _, *paragraphs = inspect.cleandoc(command.help or "").split("\n\n")
    assert all("\n" not in paragraph.strip() for paragraph in paragraphs), paragraphs
    assert max(len(line) for line in result.output.splitlines()) <= WIDTH
