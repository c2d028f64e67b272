"""The MCP server: snapshots and run reads as tools for AI agents, served as streamable HTTP at /mcp.

The tools call the same route functions as the REST API, with the gateway's own gRPC clients, so
an agent gets the REST API's JSON (a report here is byte for byte what ``POST
/api/snapshots/run-tests`` answers) and its problem bodies as tool errors, and the server needs
no address of its own. ``crucible mcp`` offers the same tools over stdio by relaying to /mcp.

/mcp follows /api's rule: with ``CRUCIBLE_API_TOKEN`` set, a request needs ``Authorization:
Bearer <token>``. It is stateless (every POST stands alone), so any gateway replica answers any
request, and a tool's progress goes back on that request's own event stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from http import HTTPStatus
from typing import Annotated, Any

import grpc
from fastapi import APIRouter, FastAPI, HTTPException
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ToolAnnotations
from pydantic import Field, FiniteFloat, TypeAdapter, ValidationError
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from crucible_common.settings import Settings
from crucible_gateway import errors
from crucible_gateway.api import runs, snapshots
from crucible_gateway.auth import request_token_ok
from crucible_gateway.clients import ServiceClients
from crucible_gateway.schemas.runs import RunList, RunRead, RunResults, RunStatistics, RunStatus
from crucible_gateway.schemas.snapshots import (
    InvariantBody,
    ReplayMode,
    ReplayPhases,
    ReplayResult,
    ReportList,
    ReportRead,
    ReportStarted,
    RunSnapshotCreate,
    SnapshotCreate,
    SnapshotList,
    SnapshotRead,
    SnapshotReplay,
    SnapshotTestOptions,
    SnapshotTestResultRead,
    SnapshotTestRun,
)

PATH = "/mcp"

INSTRUCTIONS = """\
Crucible freezes a project's state as a snapshot (ProblemSpec, WorldModel, run configuration,
the metrics of a source run) with invariants a replay must keep, and replays snapshots as
regression tests of Crucible itself. Typical loop: list_snapshots (by tag) -> run_snapshot_tests
with a cost_limit_usd -> read each failed invariant's expected vs actual and the flagged
metrics_delta -> get_run / get_run_results of replay_run_id to see why. replay_mode "recorded"
answers every model call from the source run's recording: $0, same ranking, so a difference is
Crucible's own code. create_snapshot with run_id alone snapshots a run (a failed one is tagged
"failure"). Replays and suites call language models and cost money unless recorded.
"""

READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
# Replays start runs that call language models: outside effects and cost, though nothing is destroyed.
RUNS_MODELS = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)

# As in the REST bodies, ranges are the services' to judge: the schemas keep numbers within what the
# wire carries, so an absurd value is refused with the field named, never a crash.
INT32_MAX = 2**31 - 1
SnapshotId = Annotated[str, Field(description="A snapshot's id", max_length=100)]
RunId = Annotated[str, Field(description="A run's id", max_length=100)]
PageSize = Annotated[int, Field(ge=0, le=1000, description="0: the default (50)")]
PageToken = Annotated[str, Field(max_length=1024, description="next_page_token of the previous page")]
Count = Annotated[int | None, Field(ge=1, le=INT32_MAX, description="Override the snapshot's run configuration")]


@contextlib.contextmanager
def _problems() -> Iterator[None]:
    """A failure as the REST API would answer it: the problem body, as the tool error's text."""
    try:
        yield
    except grpc.aio.AioRpcError as exc:
        raise ToolError(json.dumps(errors.problem_json(exc))) from exc
    except HTTPException as exc:
        body = errors.problem(exc.status_code, str(exc.detail), reason=HTTPStatus(exc.status_code).name).body
        raise ToolError(bytes(body).decode()) from exc
    except ValidationError as exc:
        raise ToolError(bytes(errors.validation_problem(exc.errors(), "arguments").body).decode()) from exc


def build_server(clients: ServiceClients) -> MCPServer[Any]:
    """The tools over these clients; the SDK derives each argument schema from the typed signature."""
    server: MCPServer[Any] = MCPServer(
        "crucible", instructions=INSTRUCTIONS, version="0.1.0", tools=_run_reads(clients)
    )

    @server.tool(annotations=READ)
    async def list_snapshots(
        tags: Annotated[list[str] | None, Field(description="Every tag must match")] = None,
        project_id: Annotated[str, Field(max_length=100, description="Only this project's")] = "",
        name: Annotated[str, Field(max_length=200, description="A case-insensitive part of the name")] = "",
        page_size: PageSize = 0,
        page_token: PageToken = "",
    ) -> SnapshotList:
        """Snapshots, newest first, without their data (get_snapshot has it)."""
        with _problems():
            return await snapshots.list_snapshots(
                clients,
                tags=tags or [],
                project_id=project_id,
                name=name,
                page_size=page_size,
                page_token=page_token,
            )

    @server.tool(annotations=READ)
    async def get_snapshot(snapshot_id: SnapshotId) -> SnapshotRead:
        """A snapshot with its full data: ProblemSpec, WorldModel, run configuration, chat context,
        the source run's reference metrics and the invariants its replays must keep."""
        with _problems():
            return await snapshots.get_snapshot(snapshot_id, clients)

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False))
    async def create_snapshot(
        name: Annotated[
            str, Field(description="Unique; may be left empty with run_id (named after its project and the run)")
        ] = "",
        project_id: Annotated[str, Field(description="Freeze this project's current state")] = "",
        run_id: Annotated[
            str,
            Field(
                description="Its configuration and metrics become the reference. Alone (no project_id): snapshot "
                'the run in one call, in its project, tagged "failure" when it failed'
            ),
        ] = "",
        parent_snapshot_id: Annotated[str, Field(description="A new snapshot of this one's data")] = "",
        description: str = "",
        tags: list[str] | None = None,
        invariants: Annotated[
            list[InvariantBody] | None, Field(description="What every replay must keep; checked when created")
        ] = None,
    ) -> SnapshotRead:
        """Create an immutable snapshot from a project, a run, or an existing snapshot (new tags or invariants)."""
        with _problems():
            if run_id and not project_id and not parent_snapshot_id:
                body = RunSnapshotCreate(
                    name=name, description=description, tags=tags or [], invariants=invariants or []
                )
                return await snapshots.snapshot_run(run_id, clients, body)
            request = SnapshotCreate(
                name=name,
                project_id=project_id,
                run_id=run_id,
                parent_snapshot_id=parent_snapshot_id,
                description=description,
                tags=tags or [],
                invariants=invariants or [],
            )
            return await snapshots.create_snapshot(request, clients)

    @server.tool(annotations=RUNS_MODELS)
    async def replay_snapshot(
        snapshot_id: SnapshotId,
        phases: ReplayPhases = "all",
        num_candidates: Count = None,
        num_scenarios: Count = None,
        replay_mode: ReplayMode = "live",
        reuse_project: Annotated[bool, Field(description="Restore into the source project, not a new one")] = False,
        wait: Annotated[bool, Field(description="Answer once the run ended, its invariants checked")] = True,
    ) -> ReplayResult:
        """Restore a snapshot into a new project and run it. recorded mode costs $0; live calls the models."""
        with _problems():
            body = SnapshotReplay(
                phases=phases,
                num_candidates=num_candidates,
                num_scenarios=num_scenarios,
                replay_mode=replay_mode,
                reuse_project=reuse_project,
                wait=wait,
            )
            return await snapshots.replay_snapshot(snapshot_id, clients, body)

    @server.tool(annotations=RUNS_MODELS)
    async def run_snapshot_tests(
        ctx: Context,
        snapshot_ids: Annotated[list[str] | None, Field(description="null: every snapshot")] = None,
        cost_limit_usd: Annotated[
            FiniteFloat | None, Field(ge=0, description="Replays whose estimate would cross it are skipped")
        ] = None,
        max_snapshots: Annotated[int, Field(ge=0, le=INT32_MAX, description="0: all chosen")] = 0,
        phases: ReplayPhases = "all",
        num_candidates: Count = None,
        num_scenarios: Count = None,
        replay_mode: ReplayMode = "live",
        repetitions: Annotated[int, Field(ge=1, le=INT32_MAX, description="Replays of each snapshot")] = 1,
        min_pass_rate: Annotated[
            FiniteFloat | None, Field(ge=0, le=1, description="Share of repetitions each invariant must hold in")
        ] = None,
        stop_on_first_failure: bool = False,
        concurrency: Annotated[int, Field(ge=0, le=INT32_MAX, description="Replays at once; 0: the default")] = 0,
        wait: Annotated[
            bool, Field(description="Follow the suite to its report; false: answer at once with the running report")
        ] = True,
    ) -> ReportRead:
        """Replay snapshots and check their invariants: the report (summary, per-snapshot invariants with
        expected vs actual, metric deltas against the baseline, cost). Progress is reported per snapshot."""
        with _problems():
            body = SnapshotTestRun(
                snapshot_ids=snapshot_ids,
                wait=wait,
                options=SnapshotTestOptions(
                    max_snapshots=max_snapshots,
                    phases=phases,
                    num_candidates=num_candidates,
                    num_scenarios=num_scenarios,
                    stop_on_first_failure=stop_on_first_failure,
                    cost_limit_usd=cost_limit_usd,
                    concurrency=concurrency,
                    replay_mode=replay_mode,
                    repetitions=repetitions,
                    min_pass_rate=min_pass_rate,
                ),
            )

            async def progress(done: int, total: int, result: SnapshotTestResultRead) -> None:
                await ctx.report_progress(done, total, f"{result.snapshot_name}: {result.status}")

            outcome = await snapshots.run_suite(body, clients, progress)
            if isinstance(outcome, ReportStarted):
                # Still running in the service: its report so far, to be read again with get_test_report.
                return await snapshots.get_test_report(outcome.report_id, clients)
            return outcome

    @server.tool(annotations=READ)
    async def get_test_report(report_id: Annotated[str, Field(max_length=100)]) -> ReportRead:
        """A suite's report, finished or still running (status says which)."""
        with _problems():
            return await snapshots.get_test_report(report_id, clients)

    @server.tool(annotations=READ)
    async def list_test_reports(page_size: PageSize = 0, page_token: PageToken = "") -> ReportList:
        """Suites' reports, newest first."""
        with _problems():
            return await snapshots.list_test_reports(clients, page_size=page_size, page_token=page_token)

    return server


def _run_reads(clients: ServiceClients) -> list[Tool]:
    """The run API's reads, as tools."""

    async def list_runs(
        project_id: Annotated[str, Field(max_length=100)],
        status: RunStatus | None = None,
        page_size: PageSize = 0,
        page_token: PageToken = "",
    ) -> RunList:
        """A project's runs, newest first."""
        with _problems():
            return await runs.list_runs(project_id, clients, status=status, page_size=page_size, page_token=page_token)

    async def get_run(run_id: RunId) -> RunRead:
        """A run: status, trigger, counts, usage and cost, failure reason."""
        with _problems():
            return await runs.get_run(run_id, clients)

    async def get_run_results(run_id: RunId) -> RunResults:
        """A run's ranking: candidates best first by I = P / R (those evaluated in fewer than half of the
        scenarios after the others), rejected ones last with the constraints they broke."""
        with _problems():
            return await runs.get_run_results(run_id, clients)

    async def get_run_statistics(run_id: RunId) -> RunStatistics:
        """A run's counts, coverage, missing pairs, failures, duration, usage and top candidate."""
        with _problems():
            return await runs.get_run_statistics(run_id, clients)

    tools = []
    for fn in (list_runs, get_run, get_run_results, get_run_statistics):
        tool = Tool.from_function(fn, annotations=READ)
        model = tool.fn_metadata.output_model
        # The SDK describes a result by its validation schema, but a run's scores are sent as REST
        # sends them, under their serialization aliases ("I", "P", "R"): that is the schema to publish
        # (the SDK reads the field anew on each call).
        tool.fn_metadata.output_schema = TypeAdapter(model).json_schema(mode="serialization")
        tools.append(tool)
    return tools


class _Endpoint:
    """/mcp: the token check, then this app's MCP server (see ``McpMount``)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = scope["app"]
        settings: Settings = app.state.settings
        if not request_token_ok(scope, settings.api_token):
            await errors.unauthorized()(scope, receive, send)
            return
        mount: McpMount = app.state.mcp
        await (await mount.app())(scope, receive, send)


class McpMount:
    """One app's MCP server over its clients, started by the first /mcp request and stopped with the app.

    Started on first use because building the tools' schemas costs about 50 ms, which a gateway
    nobody asks for MCP (and every in-process test app) need not pay. The SDK's session manager runs
    once per instance and holds an anyio task group for its whole life, which one task must enter
    and leave: it lives in a task of its own, whichever tasks start and stop the app.
    """

    def __init__(self, clients: ServiceClients) -> None:
        self._clients = clients
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._app: ASGIApp | None = None
        self._runner: asyncio.Task[None] | None = None

    async def app(self) -> ASGIApp:
        async with self._lock:
            if self._app is None:
                self._app = await self._start()
        return self._app

    async def _start(self) -> ASGIApp:
        mcp_app = build_server(self._clients).streamable_http_app(
            streamable_http_path=PATH,
            stateless_http=True,
            # Host and Origin are not checked, as /api does not check them: the gateway runs behind
            # other names (compose, Kubernetes), and the bearer token is what guards both.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        started = asyncio.Event()

        async def run() -> None:
            async with mcp_app.router.lifespan_context(mcp_app):
                started.set()
                await self._stop.wait()

        self._runner = asyncio.create_task(run(), name="mcp-session-manager")
        waiting = asyncio.create_task(started.wait())
        await asyncio.wait((self._runner, waiting), return_when=asyncio.FIRST_COMPLETED)
        if self._runner.done():
            waiting.cancel()
            self._runner.result()  # it failed to start: its error, raised here
        return mcp_app

    async def close(self) -> None:
        self._stop.set()
        if self._runner is not None:
            await self._runner


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.mcp = McpMount(app.state.clients)
    try:
        yield
    finally:
        await app.state.mcp.close()


router = APIRouter(lifespan=lifespan)
# A route to an ASGI app, not a request handler: every method (POST, GET, DELETE) reaches the transport.
router.routes.append(Route(PATH, _Endpoint(), include_in_schema=False))
