"""The MCP server over the fake services, driven by the SDK's own client: in memory, and over
streamable HTTP through the gateway app (/mcp, with the bearer-token rule of /api)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, Tool

from crucible.run.v1 import run_service_pb2 as run_pb
from crucible.snapshot.v1 import snapshot_service_pb2 as snap_pb
from crucible_common.errors import NotFound
from crucible_gateway.api.mcp_server import build_server
from tests.unit.gateway.conftest import BASE_URL, TOKEN, build_app
from tests.unit.gateway.fakes import (
    OTHER_SNAPSHOT_ID,
    PROJECT_ID,
    REPORT_ID,
    RUN_ID,
    SNAPSHOT_ID,
    Fakes,
    FakeSuite,
    rpc_error,
    run,
    suite_events,
    suite_report,
    suite_result,
)

TOOLS = {
    "list_snapshots",
    "get_snapshot",
    "create_snapshot",
    "replay_snapshot",
    "run_snapshot_tests",
    "get_test_report",
    "list_test_reports",
    "list_runs",
    "get_run",
    "get_run_results",
    "get_run_statistics",
}


# A session per call rather than a fixture: the SDK's client holds an anyio task group, which the
# task that opened it must close, and pytest-asyncio finishes a fixture in another task.
async def call(
    fakes: Fakes, tool: str, arguments: dict[str, Any], progress: ProgressFnT | None = None
) -> CallToolResult:
    async with Client(build_server(fakes.clients())) as client:
        return await client.call_tool(tool, arguments, progress_callback=progress)


async def listed(fakes: Fakes) -> dict[str, Tool]:
    async with Client(build_server(fakes.clients())) as client:
        return {t.name: t for t in (await client.list_tools()).tools}


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    content: dict[str, Any] | None = result.structured_content
    assert content is not None
    return content


def problem(result: CallToolResult) -> dict[str, Any]:
    """The problem body a failed call carries, as REST would answer it."""
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    body: dict[str, Any] = json.loads(text[text.index("{") :])
    return body


async def test_every_tool_has_an_argument_schema_and_a_result_schema(fakes: Fakes) -> None:
    tools = await listed(fakes)

    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description, tool.name
        assert tool.input_schema["type"] == "object", tool.name
        assert tool.output_schema is not None, tool.name
    suite = tools["run_snapshot_tests"].input_schema["properties"]
    assert suite["phases"]["enum"] == ["all", "full", "design", "evaluate"]
    assert suite["replay_mode"]["enum"] == ["live", "recorded"]
    assert tools["get_snapshot"].input_schema["required"] == ["snapshot_id"]
    assert tools["get_run"].annotations is not None
    assert tools["get_run"].annotations.read_only_hint is True
    assert tools["replay_snapshot"].annotations is not None
    assert tools["replay_snapshot"].annotations.open_world_hint is True
    # A run's scores are described as they are sent: I, P and R.
    ranking = tools["get_run_results"].output_schema
    assert ranking is not None
    assert {"I", "P", "R"} <= ranking["$defs"]["RankedCandidateRead"]["properties"].keys()
    # An invariant's parts are spelled out for the agent that writes one.
    invariant = tools["create_snapshot"].input_schema["$defs"]["InvariantBody"]
    assert set(invariant["properties"]) == {"type", "value", "description"}
    assert "min_evaluation_coverage" in invariant["properties"]["type"]["description"]


async def test_a_snapshot_reads_as_the_rest_api_answers_it(fakes: Fakes, http: httpx.AsyncClient) -> None:
    result = structured(await call(fakes, "get_snapshot", {"snapshot_id": SNAPSHOT_ID}))

    assert result == (await http.get(f"/api/snapshots/{SNAPSHOT_ID}")).json()


async def test_list_snapshots_filters_by_tags(fakes: Fakes) -> None:
    page = structured(await call(fakes, "list_snapshots", {"tags": ["grid", "failure"], "name": "grid"}))

    assert [s["id"] for s in page["snapshots"]] == [SNAPSHOT_ID]
    (sent,) = fakes.snapshots.calls
    assert sent.request == snap_pb.ListSnapshotsRequest(tags=["grid", "failure"], name="grid")


async def test_a_suite_reports_progress_per_snapshot_and_answers_the_report(fakes: Fakes) -> None:
    failed = suite_result(snap_pb.RESULT_STATUS_FAILED, OTHER_SNAPSHOT_ID, "Heavy constraints")
    fakes.snapshots.suites.append(FakeSuite(events=suite_events(suite_report(suite_result(), failed))))
    seen: list[tuple[float, float | None, str | None]] = []

    async def record(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    result = await call(fakes, "run_snapshot_tests", {"cost_limit_usd": 2.5, "replay_mode": "recorded"}, record)

    report = structured(result)
    assert report["summary"] == {"total": 2, "passed": 1, "failed": 1, "skipped": 0, "errors": 0}
    assert report["results"][1]["invariants"][1]["actual"] == "FAILED"
    assert seen == [(1, 2, "Grid baseline: passed"), (2, 2, "Heavy constraints: failed")]
    (sent,) = fakes.snapshots.calls
    request = sent.request
    assert isinstance(request, snap_pb.RunSnapshotTestsRequest)
    assert request.all
    assert (request.options.cost_limit_usd, request.options.replay_mode) == (2.5, snap_pb.REPLAY_MODE_RECORDED)


async def test_a_suite_not_waited_for_answers_its_running_report(fakes: Fakes) -> None:
    suite = FakeSuite(hold=True)
    fakes.snapshots.suites.append(suite)
    running = suite_report(status=snap_pb.REPORT_STATUS_RUNNING)
    fakes.snapshots.answer("GetTestReport", snap_pb.GetTestReportResponse(report=running))

    report = structured(await call(fakes, "run_snapshot_tests", {"snapshot_ids": [SNAPSHOT_ID], "wait": False}))

    assert (report["id"], report["status"]) == (REPORT_ID, "running")
    assert suite.cancelled


async def test_create_snapshot_with_a_run_alone_snapshots_the_run(fakes: Fakes) -> None:
    fakes.runs.answer("GetRun", run_pb.GetRunResponse(run=run(run_pb.RUN_STATUS_FAILED)))

    structured(await call(fakes, "create_snapshot", {"run_id": RUN_ID, "tags": ["nightly"]}))

    (request,) = [c.request for c in fakes.snapshots.calls]
    assert isinstance(request, snap_pb.CreateSnapshotRequest)
    assert (request.project_id, request.run_id, list(request.tags)) == (PROJECT_ID, RUN_ID, ["failure", "nightly"])
    # Unnamed: the snapshot service names it after the project and the run.
    assert request.name == ""


async def test_create_snapshot_of_a_project_with_invariants(fakes: Fakes) -> None:
    arguments = {
        "name": "Grid",
        "project_id": PROJECT_ID,
        "invariants": [{"type": "custom", "value": "coverage >= 0.9", "description": "covered"}],
    }

    structured(await call(fakes, "create_snapshot", arguments))

    (request,) = [c.request for c in fakes.snapshots.calls]
    assert isinstance(request, snap_pb.CreateSnapshotRequest)
    assert (request.name, request.project_id, request.run_id) == ("Grid", PROJECT_ID, "")
    assert request.invariants[0].value.string_value == "coverage >= 0.9"
    assert fakes.runs.calls == []


async def test_replay_forwards_its_options(fakes: Fakes) -> None:
    arguments = {"snapshot_id": SNAPSHOT_ID, "phases": "design", "num_scenarios": 2, "replay_mode": "recorded"}

    replayed = structured(await call(fakes, "replay_snapshot", arguments))

    assert replayed["invariants"][0]["status"] == "passed"
    (request,) = [c.request for c in fakes.snapshots.calls]
    assert isinstance(request, snap_pb.ReplaySnapshotRequest)
    assert request.wait
    assert request.options == snap_pb.ReplayOptions(
        phases=snap_pb.REPLAY_PHASES_DESIGN, num_scenarios=2, replay_mode=snap_pb.REPLAY_MODE_RECORDED
    )


async def test_a_service_refusal_is_a_tool_error_with_the_problem_body(fakes: Fakes) -> None:
    fakes.snapshots.fail(
        "GetSnapshot", rpc_error(NotFound("snapshot x not found", reason="SNAPSHOT_NOT_FOUND"), "snapshot.crucible")
    )

    body = problem(await call(fakes, "get_snapshot", {"snapshot_id": "x"}))

    assert (body["status"], body["reason"], body["detail"]) == (404, "SNAPSHOT_NOT_FOUND", "snapshot x not found")


async def test_arguments_outside_the_schema_never_reach_a_service(fakes: Fakes) -> None:
    result = await call(fakes, "replay_snapshot", {"snapshot_id": SNAPSHOT_ID, "phases": "rank"})

    assert result.is_error
    assert fakes.calls() == []


@pytest.mark.parametrize(
    ("tool", "path"),
    [
        ("get_run", f"/api/runs/{RUN_ID}"),
        ("get_run_results", f"/api/runs/{RUN_ID}/results"),
        ("get_run_statistics", f"/api/runs/{RUN_ID}/statistics"),
    ],
)
async def test_the_run_reads_are_the_rest_apis(fakes: Fakes, http: httpx.AsyncClient, tool: str, path: str) -> None:
    assert structured(await call(fakes, tool, {"run_id": RUN_ID})) == (await http.get(path)).json()


async def test_list_runs_by_status(fakes: Fakes) -> None:
    page = structured(await call(fakes, "list_runs", {"project_id": PROJECT_ID, "status": "FAILED"}))

    assert page["next_page_token"] == "r2"
    (sent,) = fakes.runs.calls
    assert sent.request == run_pb.ListRunsRequest(project_id=PROJECT_ID, status=run_pb.RUN_STATUS_FAILED)


# ---------------------------------------------------------------- streamable HTTP at /mcp


@contextlib.asynccontextmanager
async def over_http(fakes: Fakes, token: str | None, sent: str | None) -> AsyncIterator[Client]:
    """The SDK's client of the gateway's /mcp, in process (httpx2's ASGI transport), the app's lifespan run."""
    app, fastapi = build_app(fakes, token)
    headers = {"Authorization": f"Bearer {sent}"} if sent else {}
    async with (
        fastapi.router.lifespan_context(fastapi),
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=BASE_URL, headers=headers) as http,
        Client(streamable_http_client(f"{BASE_URL}/mcp", http_client=http)) as client,
    ):
        yield client


async def test_the_gateway_serves_the_tools_over_streamable_http(fakes: Fakes) -> None:
    async with over_http(fakes, TOKEN, TOKEN) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        report = structured(await client.call_tool("get_test_report", {"report_id": REPORT_ID}))

    assert names == TOOLS
    assert report["id"] == REPORT_ID


async def test_mcp_needs_the_token_when_one_is_set(fakes: Fakes) -> None:
    app, fastapi = build_app(fakes, TOKEN)
    async with (
        fastapi.router.lifespan_context(fastapi),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as http,
    ):
        refused = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})

    assert refused.status_code == 401
    assert refused.json()["reason"] == "UNAUTHORIZED"
    assert refused.headers["www-authenticate"] == "Bearer"
    # The SDK's client fails to connect; its task groups deliver that inside an exception group.
    with pytest.raises(ExceptionGroup) as failed:
        async with over_http(fakes, TOKEN, "wrong"):
            pass
    assert failed.value.subgroup(MCPError) is not None
    assert fakes.calls() == []
