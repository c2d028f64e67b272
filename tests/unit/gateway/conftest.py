"""The gateway's app built by its factory over fake clients, driven in-process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient
from starlette.types import ASGIApp
from starlette.websockets import WebSocketDisconnect

from crucible_common.settings import Settings
from crucible_gateway.app import BodySizeLimit, HeadAsGet, create_app
from crucible_gateway.inputs import InputGuard
from crucible_gateway.slow_clients import BodyReadTimeout
from tests.unit.gateway.fakes import Fakes

TOKEN = "s3cret-token"
BASE_URL = "http://gateway"


def build_app(fakes: Fakes, token: str | None = None, **settings: Any) -> tuple[ASGIApp, FastAPI]:
    """The app as served (its ASGI middleware around it), and the FastAPI app inside."""
    app = create_app(Settings(api_token=token, **settings), fakes.clients())
    inner = app
    while not isinstance(inner, FastAPI):
        assert isinstance(inner, HeadAsGet | BodyReadTimeout | BodySizeLimit | InputGuard)
        inner = inner.app
    return app, inner


@contextlib.asynccontextmanager
async def serve(fakes: Fakes, token: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the app, its lifespan run (httpx's ASGI transport runs none)."""
    app, fastapi = build_app(fakes, token)
    async with (
        fastapi.router.lifespan_context(fastapi),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as http,
    ):
        yield http


@contextlib.contextmanager
def starlette_client(fakes: Fakes, token: str | None = None) -> Iterator[TestClient]:
    """Starlette's synchronous client of the app, for WebSockets (it runs the lifespan itself)."""
    app, _ = build_app(fakes, token)
    with TestClient(app, base_url=BASE_URL) as client:
        yield client


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
async def http(fakes: Fakes) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(fakes) as client:
        yield client


def assert_problem(response: httpx.Response, status: int, reason: str) -> dict[str, object]:
    """A JSON problem body with this status and reason; the body, for further checks."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = response.json()
    assert (body["status"], body["reason"]) == (status, reason)
    assert body["detail"]
    assert body["type"] == f"urn:crucible:problem:{reason.lower()}"
    return body


def assert_refused(response: httpx.Response, fakes: Fakes, field: str | None) -> None:
    """A 400 naming the field, answered by the gateway itself: no service was called."""
    body = assert_problem(response, 400, "VALIDATION_FAILED")
    violations = body["field_violations"]
    assert isinstance(violations, list)
    if field is not None:
        assert field in [v["field"] for v in violations], violations
    assert fakes.calls() == []


def assert_websocket_refused(client: TestClient, url: str, field: str) -> None:
    """A WebSocket refused as a bad query parameter is over HTTP: the 400 problem naming the field as
    an error frame, then a close with code 4400 and the problem's detail as its reason."""
    with client.websocket_connect(url) as ws:
        frame = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()

    assert frame["type"] == "error"
    problem = frame["problem"]
    assert (problem["status"], problem["reason"]) == (400, "VALIDATION_FAILED")
    assert field in [v["field"] for v in problem["field_violations"]], problem
    assert closed.value.code == 4400
    assert closed.value.reason
    assert closed.value.reason == problem["detail"][: len(closed.value.reason)]
