"""The gateway serves the UI's build: files, index.html for client routes, never over /api or /healthz."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from crucible_gateway import ui


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    build = tmp_path / "ui"
    (build / "assets").mkdir(parents=True)
    (build / "index.html").write_text("<!doctype html><title>Crucible UI</title>")
    (build / "assets" / "index-abc123.js").write_text("console.log('ui')")
    (build / "favicon.svg").write_text("<svg/>")
    app = FastAPI()

    @app.get("/api/projects")
    async def projects() -> dict[str, list[str]]:
        return {"projects": []}

    ui.install(app, build)
    return TestClient(app)


@pytest.mark.parametrize("path", ["/", "/projects/p1", "/runs/r1?tab=matrix", "/snapshot-reports/x", "/apiary"])
def test_client_routes_get_index_html(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert "Crucible UI" in response.text
    assert response.headers["cache-control"] == "no-cache"


def test_hashed_assets_are_served_and_cached_for_good(client: TestClient) -> None:
    response = client.get("/assets/index-abc123.js")
    assert response.status_code == 200
    assert "immutable" in response.headers["cache-control"]
    assert client.get("/assets/missing.js").status_code == 404
    assert client.get("/favicon.svg").text == "<svg/>"


@pytest.mark.parametrize("path", ["/api/nope", "/api", "/healthz/x", "/mcp", "/mcp/anything"])
def test_reserved_paths_are_never_the_ui(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404
    assert client.post(path).status_code == 404


def test_the_api_still_answers(client: TestClient) -> None:
    assert client.get("/api/projects").json() == {"projects": []}


def test_nothing_outside_the_build_is_served(client: TestClient, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("secret")
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/assets/../../secret.txt"):
        assert "secret" not in client.get(path).text


def test_without_a_build_the_placeholder_says_how_to_build_it(tmp_path: Path) -> None:
    app = FastAPI()
    ui.install(app, tmp_path / "missing")
    response = TestClient(app).get("/projects/p1")
    assert response.status_code == 200
    assert "make" in response.text
