"""The gateway over the real processes: REST, error mapping, health, OpenAPI, gRPC agreement."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import httpx
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from crucible.spec.v1 import spec_service_pb2 as pb
from crucible.spec.v1.spec_service_pb2_grpc import SpecServiceStub
from tests.system.conftest import Stack

if TYPE_CHECKING:  # the async stub type exists only in the generated .pyi
    pass

pytestmark = pytest.mark.system


def _problem(response: httpx.Response, status: int, reason: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert (body["status"], body["reason"]) == (status, reason)
    assert body["detail"]
    return body  # type: ignore[no-any-return]


async def test_healthz_reports_four_serving_services(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "services": dict.fromkeys(["spec", "run", "snapshot", "agent"], "SERVING"),
        "not_serving": [],
    }


async def test_project_created_over_rest_is_readable_over_grpc(stack: Stack, http: httpx.AsyncClient) -> None:
    created = await http.post("/api/projects", json={"title": "Grid", "description": "power grid study"})
    assert created.status_code == 201
    project = created.json()
    async with grpc.aio.insecure_channel(stack.addresses["spec"]) as channel:
        fetched = (await SpecServiceStub(channel).GetProject(pb.GetProjectRequest(project_id=project["id"]))).project
    assert (fetched.id, fetched.title, fetched.description) == (project["id"], "Grid", "power grid study")

    patched = await http.patch(f"/api/projects/{project['id']}", json={"title": "Grid v2"})
    assert patched.json()["title"] == "Grid v2"
    assert patched.json()["description"] == "power grid study"
    assert (await http.delete(f"/api/projects/{project['id']}")).status_code == 204
    _problem(await http.get(f"/api/projects/{project['id']}"), 404, "PROJECT_NOT_FOUND")


async def test_project_reads_see_every_write_whoever_makes_it(stack: Stack, http: httpx.AsyncClient) -> None:
    """The gateway keeps the projects it reads (crucible_gateway/project_cache.py); none of its
    answers may outlive a change: its own writes show at once, others' once the spec service's
    change feed brings them."""
    project_id = (await http.post("/api/projects", json={"title": "Grid"})).json()["id"]
    path = f"/api/projects/{project_id}"

    async def title() -> str:
        response = await http.get(path)
        assert response.status_code == 200, response.text
        return str(response.json()["title"])

    async def eventually(expected: int | str) -> None:
        async with asyncio.timeout(5):
            while True:
                response = await http.get(path)
                if expected in (response.status_code, response.json().get("title")):
                    return
                await asyncio.sleep(0.01)

    assert [await title(), await title()] == ["Grid", "Grid"]
    # Written through the gateway: read back at once.
    assert (await http.patch(path, json={"title": "Grid v2"})).json()["title"] == "Grid v2"
    assert await title() == "Grid v2"

    async with grpc.aio.insecure_channel(stack.addresses["spec"]) as channel:
        spec = SpecServiceStub(channel)
        # Written by another client of the spec service: seen through the gateway's feed.
        await spec.UpdateProject(
            pb.UpdateProjectRequest(project_id=project_id, update_mask=FieldMask(paths=["title"]), title="Grid v3")
        )
        await eventually("Grid v3")
        assert await title() == "Grid v3"
        # Asked for, a read from the spec service itself, whatever the gateway keeps.
        fresh = await http.get(path, headers={"Cache-Control": "no-cache"})
        assert fresh.json()["title"] == "Grid v3"

        await spec.DeleteProject(pb.DeleteProjectRequest(project_id=project_id))
        await eventually(404)
        _problem(await http.get(path), 404, "PROJECT_NOT_FOUND")


async def test_bad_requests_get_4xx_problem_bodies(http: httpx.AsyncClient) -> None:
    body = _problem(await http.post("/api/projects", json={"title": ""}), 400, "VALIDATION_FAILED")
    assert body["field_violations"] == [{"field": "title", "description": "must not be empty"}]
    _problem(await http.post("/api/projects", json={"description": "no title"}), 400, "VALIDATION_FAILED")
    _problem(await http.post("/api/projects", json={"title": "x", "owner": "y"}), 400, "VALIDATION_FAILED")
    _problem(
        await http.post("/api/projects", content=b"{not json", headers={"content-type": "application/json"}),
        400,
        "VALIDATION_FAILED",
    )
    # A malformed id is refused by the gateway itself, named like any other bad field.
    malformed = _problem(await http.get("/api/projects/not-a-uuid"), 400, "VALIDATION_FAILED")
    assert [v["field"] for v in malformed["field_violations"]] == ["path.project_id"]  # type: ignore[attr-defined]
    _problem(await http.get("/api/projects?page_token=bogus"), 400, "INVALID_PAGE_TOKEN")
    _problem(await http.get("/api/projects?page_size=-1"), 400, "VALIDATION_FAILED")
    _problem(await http.get("/api/nowhere"), 404, "NOT_FOUND")
    _problem(await http.post("/api/projects", content=b"x" * (3 * 1024 * 1024)), 413, "PAYLOAD_TOO_LARGE")

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"x" * (1024 * 1024)

    _problem(await http.post("/api/projects", content=chunked()), 413, "PAYLOAD_TOO_LARGE")


async def test_problem_spec_and_world_model_over_rest(http: httpx.AsyncClient) -> None:
    project = (await http.post("/api/projects", json={"title": "Factory"})).json()
    base = f"/api/projects/{project['id']}"
    _problem(await http.get(f"{base}/problem-spec"), 404, "PROBLEM_SPEC_NOT_FOUND")

    spec = await http.put(
        f"{base}/problem-spec",
        json={
            "constraints": [{"name": "safety", "description": "no injuries", "weight": 100}],
            "goals": [{"description": "double output"}],
            "resolution": "coarse",
            "reason": "initial",
        },
    )
    assert spec.status_code == 200, spec.text
    assert spec.json()["version"] == 1
    assert spec.json()["mode"] == "full_search"

    bad = _problem(
        await http.patch(f"{base}/problem-spec", json={"constraints": [{"name": "c", "weight": 150}]}),
        400,
        "VALIDATION_FAILED",
    )
    assert bad["field_violations"][0]["field"] == "constraints[0].weight"  # type: ignore[index]
    _problem(await http.patch(f"{base}/problem-spec", json={"mode": "sideways"}), 400, "VALIDATION_FAILED")
    _problem(
        await http.patch(f"{base}/problem-spec", json={"mode": "seeded", "expected_version": 7}),
        409,
        "VERSION_MISMATCH",
    )
    patched = await http.patch(f"{base}/problem-spec", json={"mode": "seeded", "expected_version": 1})
    assert (patched.json()["mode"], patched.json()["version"]) == ("seeded", 2)

    log = (await http.get(f"{base}/problem-spec/provenance")).json()
    assert [(e["version"], e["action"], e["changed_fields"]) for e in log["entries"]] == [
        (1, "created", ["constraints", "goals", "resolution", "mode"]),
        (2, "updated", ["mode"]),
    ]

    model = await http.put(f"{base}/world-model", json={"model_data": {"actors": ["crew"], "resources": []}})
    assert model.status_code == 200, model.text
    assert model.json()["model_data"]["actors"] == ["crew"]
    patched_model = await http.patch(f"{base}/world-model", json={"model_data": {"assumptions": ["24/7 power"]}})
    assert patched_model.json()["model_data"]["actors"] == ["crew"]
    assert patched_model.json()["model_data"]["assumptions"] == ["24/7 power"]
    _problem(await http.patch(f"{base}/world-model", json={"model_data": {"actors": "crew"}}), 400, "VALIDATION_FAILED")


async def test_chat_over_rest(http: httpx.AsyncClient) -> None:
    project = (await http.post("/api/projects", json={"title": "Chatty"})).json()
    session = await http.post(f"/api/projects/{project['id']}/chat-sessions", json={"mode": "setup"})
    assert session.status_code == 201
    sid = session.json()["id"]
    for i, role in enumerate(["user", "agent", "system"]):
        sent = await http.post(
            f"/api/chat-sessions/{sid}/messages", json={"role": role, "content": f"#{i}", "metadata": {"n": i}}
        )
        assert sent.status_code == 201
    listed = (await http.get(f"/api/chat-sessions/{sid}/messages", params={"page_size": 2})).json()
    assert [m["content"] for m in listed["chat_messages"]] == ["#0", "#1"]
    rest = (
        await http.get(f"/api/chat-sessions/{sid}/messages", params={"page_token": listed["next_page_token"]})
    ).json()
    assert [(m["sequence"], m["role"], m["metadata"]) for m in rest["chat_messages"]] == [(3, "system", {"n": 2})]
    _problem(
        await http.post(f"/api/chat-sessions/{sid}/messages", json={"role": "robot", "content": "x"}),
        400,
        "VALIDATION_FAILED",
    )
    sessions = (await http.get(f"/api/projects/{project['id']}/chat-sessions")).json()
    assert [s["id"] for s in sessions["chat_sessions"]] == [sid]


async def test_openapi_docs_and_home_page(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/api/openapi.json")).json()
    assert {"/api/projects", "/api/projects/{project_id}", "/api/chat-sessions/{chat_session_id}/messages"} <= set(
        spec["paths"]
    )
    docs = await http.get("/api/docs")
    assert docs.status_code == 200
    # Everything the docs page loads comes from the gateway itself: it works offline.
    assert "cdn." not in docs.text
    for asset in ("/api/docs/assets/swagger-ui-bundle.js", "/api/docs/assets/swagger-ui.css"):
        assert asset in docs.text
        assert (await http.get(asset)).status_code == 200
    # The web UI (built by make) at / and at every client-side route; an unknown API path stays a 404 problem.
    home = await http.get("/")
    assert home.status_code == 200
    assert '<div id="root">' in home.text
    assert "cdn." not in home.text
    assert (await http.get("/projects/anything")).text == home.text
    unknown = await http.get("/api/nothing-here")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
