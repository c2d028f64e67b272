"""``crucible mcp``: the gateway's tools relayed over stdio, driven by the SDK's own client in memory."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from mcp import Client
from typer.testing import CliRunner

from crucible.snapshot.v1 import snapshot_service_pb2 as snap_pb
from crucible_cli import mcp
from crucible_cli.api_client import ApiClient
from crucible_cli.main import app
from crucible_common.errors import NotFound
from crucible_gateway.api.mcp_server import build_server
from tests.unit.gateway.conftest import BASE_URL, TOKEN, build_app
from tests.unit.gateway.fakes import (
    OTHER_SNAPSHOT_ID,
    REPORT_ID,
    SNAPSHOT_ID,
    Fakes,
    FakeSuite,
    rpc_error,
    suite_events,
    suite_report,
    suite_result,
)


@contextlib.asynccontextmanager
async def relayed(fakes: Fakes) -> AsyncIterator[tuple[Client, Client]]:
    """A client of the relay whose upstream is the gateway's MCP server over the fakes; and that upstream."""
    async with Client(build_server(fakes.clients())) as upstream, Client(mcp.relay(upstream)) as client:
        yield client, upstream


async def test_the_relay_offers_the_gateways_tools_as_they_are(fakes: Fakes) -> None:
    async with relayed(fakes) as (client, upstream):
        relayed_tools = (await client.list_tools()).tools
        direct_tools = (await upstream.list_tools()).tools
        instructions = client.instructions

    assert [t.model_dump() for t in relayed_tools] == [t.model_dump() for t in direct_tools]
    assert instructions is not None
    assert "snapshot" in instructions


async def test_a_call_goes_through_with_its_progress(fakes: Fakes) -> None:
    failed = suite_result(snap_pb.RESULT_STATUS_FAILED, OTHER_SNAPSHOT_ID, "Heavy constraints")
    fakes.snapshots.suites.append(FakeSuite(events=suite_events(suite_report(suite_result(), failed))))
    seen: list[tuple[float, float | None, str | None]] = []

    async def record(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with relayed(fakes) as (client, _):
        result = await client.call_tool("run_snapshot_tests", {"snapshot_ids": [SNAPSHOT_ID]}, progress_callback=record)

    assert not result.is_error
    assert result.structured_content is not None
    assert result.structured_content["id"] == REPORT_ID
    assert seen == [(1, 2, "Grid baseline: passed"), (2, 2, "Heavy constraints: failed")]


async def test_a_tool_error_comes_back_as_the_gateway_sent_it(fakes: Fakes) -> None:
    fakes.snapshots.fail(
        "GetSnapshot", rpc_error(NotFound("snapshot x not found", reason="SNAPSHOT_NOT_FOUND"), "snapshot.crucible")
    )

    async with relayed(fakes) as (client, _):
        result = await client.call_tool("get_snapshot", {"snapshot_id": "x"})

    assert result.is_error
    assert "SNAPSHOT_NOT_FOUND" in result.content[0].text  # type: ignore[union-attr]


class TokenClient(ApiClient):
    def __init__(self, token: str | None) -> None:
        super().__init__(base_url=BASE_URL, token=token)


@contextlib.asynccontextmanager
async def through_the_gateway(fakes: Fakes, token: str | None) -> AsyncIterator[Client]:
    """``gateway_client`` as ``crucible mcp`` builds it, over the gateway app in process."""
    gateway, fastapi = build_app(fakes, TOKEN)
    api = TokenClient(token)
    api.close()
    async with (
        fastapi.router.lifespan_context(fastapi),
        mcp.gateway_client(api, httpx2.ASGITransport(app=gateway)) as upstream,
    ):
        yield upstream


async def test_the_relays_upstream_is_the_gateways_mcp_endpoint_with_the_token(fakes: Fakes) -> None:
    async with through_the_gateway(fakes, TOKEN) as upstream, Client(mcp.relay(upstream)) as client:
        result = await client.call_tool("get_snapshot", {"snapshot_id": SNAPSHOT_ID})

    assert result.structured_content is not None
    assert result.structured_content["id"] == SNAPSHOT_ID


@pytest.mark.parametrize("token", [None, "wrong"])
async def test_a_refused_token_is_named(fakes: Fakes, token: str | None) -> None:
    with pytest.raises(ExceptionGroup) as refused:
        async with through_the_gateway(fakes, token):
            pass

    found = refused.value.subgroup(mcp.GatewayRefused)
    assert found is not None
    assert "401" in str(mcp._leaf(found))
    assert fakes.calls() == []


def test_crucible_mcp_says_when_the_gateway_cannot_be_reached(monkeypatch: pytest.MonkeyPatch) -> None:
    async def unreachable() -> None:
        raise ExceptionGroup("task group", [httpx2.ConnectError("All connection attempts failed")])

    monkeypatch.setattr(mcp, "serve_stdio", unreachable)

    result = CliRunner().invoke(app, ["mcp"])

    assert result.exit_code == 1
    assert "the gateway's MCP endpoint: All connection attempts failed" in result.stderr


def test_other_failures_are_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken() -> None:
        raise ExceptionGroup("task group", [KeyError("bug")])

    monkeypatch.setattr(mcp, "serve_stdio", broken)

    result: Any = CliRunner().invoke(app, ["mcp"])

    assert isinstance(result.exception, ExceptionGroup)
