"""The CLI against the in-process gateway over the fake services."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from starlette.testclient import TestClient

from crucible_cli import output
from crucible_cli.api_client import ApiClient
from tests.unit.gateway.conftest import BASE_URL, starlette_client
from tests.unit.gateway.fakes import Fakes


class Gateway(httpx.BaseTransport):
    """The CLI's HTTP requests, answered by the in-process gateway (through Starlette's test client)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.client.request(
            request.method, request.url.raw_path.decode(), headers=dict(request.headers), content=request.read()
        )
        return httpx.Response(answer.status_code, headers=list(answer.headers.items()), content=answer.content)


class GatewayClient(ApiClient):
    """The CLI's own client, over the in-process gateway."""

    def __init__(self, gateway: TestClient) -> None:
        super().__init__(base_url=BASE_URL)
        self._http.close()
        self._http = httpx.Client(base_url=BASE_URL, transport=Gateway(gateway))


@pytest.fixture(autouse=True)
def no_reconnect_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dropped stream is reopened at once: the pause is for a service restarting, not for tests."""
    monkeypatch.setattr(output, "RECONNECT_PAUSE_SECONDS", 0.0)


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
def rest_gateway(fakes: Fakes, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The gateway every REST call of the CLI goes to; WebSockets are each test module's to route."""
    with starlette_client(fakes) as client:
        monkeypatch.setattr(output, "ApiClient", lambda: GatewayClient(client))
        yield client
