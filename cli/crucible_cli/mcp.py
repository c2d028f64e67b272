"""``crucible mcp``: Crucible's MCP tools over stdio, for MCP clients that start a local command.

The tools live in the gateway (/mcp, streamable HTTP). This command relays every tools/list and
tools/call to it, with the CLI's usual ``CRUCIBLE_URL`` and ``CRUCIBLE_API_TOKEN``: it needs no
service address, and it offers exactly the gateway's tools, schemas and results, progress
included. Written against the SDK's low-level server because a relay has no typed signature to
derive schemas from: they come from the gateway as they are.

stdout carries the protocol alone; anything said to a person goes to stderr.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import typer
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.types import CallToolRequestParams, CallToolResult, ListToolsResult, PaginatedRequestParams
from rich.text import Text

from crucible_cli.api_client import ApiClient
from crucible_cli.output import errors

PATH = "/mcp"


def relay(upstream: Client) -> Server[Any]:
    """A server whose tools are ``upstream``'s: each list and call is forwarded, with its progress."""

    async def list_tools(ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None) -> ListToolsResult:
        return await upstream.list_tools(cursor=params.cursor if params else None)

    async def call_tool(ctx: ServerRequestContext[Any], params: CallToolRequestParams) -> CallToolResult:
        async def forward(progress: float, total: float | None, message: str | None) -> None:
            await ctx.session.report_progress(progress, total, message)

        return await upstream.call_tool(params.name, params.arguments, progress_callback=forward)

    return Server(
        "crucible",
        version="0.1.0",
        instructions=upstream.instructions,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


class GatewayRefused(Exception):
    """The gateway answered /mcp with 401 or 403: the token is missing or wrong."""


async def _refusal(response: httpx2.Response) -> None:
    # The SDK reports any HTTP error as "Server returned an error response"; a refused token is
    # the one a person can fix, so it is named here.
    if response.status_code in (401, 403):
        raise GatewayRefused(f"{response.status_code} from {response.request.url}: set CRUCIBLE_API_TOKEN")


@asynccontextmanager
async def gateway_client(api: ApiClient, transport: httpx2.AsyncBaseTransport | None = None) -> AsyncIterator[Client]:
    """An MCP client of the gateway's /mcp, with the CLI's bearer token (``transport``: tests' in-process one)."""
    http = httpx2.AsyncClient(
        headers=api.headers,
        # No read timeout here: the gateway bounds every call itself (a suite it waits for ends in
        # its running report), and a replay can be quiet for minutes.
        timeout=httpx2.Timeout(30.0, read=None),
        event_hooks={"response": [_refusal]},
        transport=transport,
    )
    async with http, Client(streamable_http_client(api.base_url + PATH, http_client=http)) as upstream:
        yield upstream


async def serve_stdio() -> None:
    api = ApiClient()
    api.close()
    async with gateway_client(api) as upstream, stdio_server() as (read, write):
        server = relay(upstream)
        await server.run(read, write, server.create_initialization_options())


def mcp() -> None:
    """Serve Crucible's MCP tools (snapshots, suites, run reads) over stdio; they run in the gateway.

    For an MCP client's configuration: command `crucible`, args ["mcp"].

    When the gateway is not at http://127.0.0.1:8080: CRUCIBLE_URL and CRUCIBLE_API_TOKEN in its environment.
    """
    try:
        anyio.run(serve_stdio)
    except (OSError, httpx2.HTTPError, GatewayRefused, ExceptionGroup) as exc:
        # The SDK's task groups deliver a transport failure inside an exception group.
        unreachable = (OSError, httpx2.HTTPError, GatewayRefused)
        failure = exc.subgroup(unreachable) if isinstance(exc, ExceptionGroup) else exc
        if failure is None:
            raise
        errors.print(Text(f"error: the gateway's MCP endpoint: {_leaf(failure)}", "red"))
        raise typer.Exit(1) from exc


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc
