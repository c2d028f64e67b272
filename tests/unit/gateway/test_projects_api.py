"""/api/projects and /healthz over the fake spec service."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from crucible.spec.v1 import spec_service_pb2 as spec_pb
from crucible_common.errors import NotFound
from tests.unit.gateway.conftest import assert_refused, serve
from tests.unit.gateway.fakes import PROJECT_ID, Fakes, plain_error, project, rpc_error

PROJECT = f"/api/projects/{PROJECT_ID}"

INVALID = [
    pytest.param("POST", "/api/projects", {"json": {}}, "title", id="create-without-title"),
    pytest.param("POST", "/api/projects", {"json": {"title": 5}}, "title", id="create-title-not-text"),
    pytest.param("POST", "/api/projects", {"json": {"title": "x", "owner": "y"}}, "owner", id="create-unknown-field"),
    pytest.param("POST", "/api/projects", {"json": ["x"]}, None, id="create-not-an-object"),
    pytest.param(
        "POST",
        "/api/projects",
        {"content": b"{not json", "headers": {"content-type": "application/json"}},
        None,
        id="create-malformed-json",
    ),
    pytest.param("GET", "/api/projects?page_size=-1", {}, "query.page_size", id="list-negative-page-size"),
    pytest.param("GET", "/api/projects?page_size=1001", {}, "query.page_size", id="list-page-size-too-big"),
    pytest.param("GET", "/api/projects?page_size=ten", {}, "query.page_size", id="list-page-size-not-a-number"),
    pytest.param(
        "GET", f"/api/projects?page_token={'t' * 1025}", {}, "query.page_token", id="list-page-token-too-long"
    ),
    pytest.param("PATCH", PROJECT, {"json": {"owner": "y"}}, "owner", id="patch-unknown-field"),
    pytest.param("PATCH", PROJECT, {"json": {"title": ["x"]}}, "title", id="patch-title-not-text"),
    pytest.param(
        "PATCH",
        PROJECT,
        {"json": {"auto_snapshot_failed_runs": "yes"}},
        "auto_snapshot_failed_runs",
        id="patch-setting-not-a-boolean",
    ),
]


@pytest.mark.parametrize(("method", "url", "kwargs", "field"), INVALID)
async def test_invalid_input_is_refused_before_the_service(
    fakes: Fakes, http: httpx.AsyncClient, method: str, url: str, kwargs: dict[str, Any], field: str | None
) -> None:
    assert_refused(await http.request(method, url, **kwargs), fakes, field)


async def test_create(fakes: Fakes, http: httpx.AsyncClient) -> None:
    response = await http.post("/api/projects", json={"title": "Grid", "description": "power grid study"})

    assert response.status_code == 201
    assert response.json() == {
        "id": PROJECT_ID,
        "title": "Grid",
        "description": "power grid study",
        "created_at": "2025-01-02T03:04:05Z",
        "updated_at": "2025-01-02T03:05:06Z",
        "auto_snapshot_failed_runs": False,
        "replay_of_snapshot_id": "",
    }
    call = fakes.spec.only_call()
    assert call.request == spec_pb.CreateProjectRequest(title="Grid", description="power grid study")
    assert call.timeout == 10.0


async def test_list_passes_the_page(fakes: Fakes, http: httpx.AsyncClient) -> None:
    response = await http.get("/api/projects", params={"page_size": 2, "page_token": "tok"})

    assert response.json()["next_page_token"] == "next"
    assert [p["id"] for p in response.json()["projects"]] == [PROJECT_ID]
    assert fakes.spec.only_call().request == spec_pb.ListProjectsRequest(page_size=2, page_token="tok")


async def test_the_list_includes_replay_projects_only_when_asked(fakes: Fakes, http: httpx.AsyncClient) -> None:
    await http.get("/api/projects", params={"include_replays": "true"})
    assert fakes.spec.calls[-1].request == spec_pb.ListProjectsRequest(include_replays=True)
    for unclear in ("maybe", "1", "yes"):
        assert (await http.get("/api/projects", params={"include_replays": unclear})).status_code == 400


async def test_get_and_delete_pass_the_id_as_given(fakes: Fakes, http: httpx.AsyncClient) -> None:
    assert (await http.get(PROJECT)).json()["id"] == PROJECT_ID
    deleted = await http.delete(PROJECT)

    assert (deleted.status_code, deleted.content) == (204, b"")
    assert [c.request for c in fakes.spec.calls] == [
        spec_pb.GetProjectRequest(project_id=PROJECT_ID),
        spec_pb.DeleteProjectRequest(project_id=PROJECT_ID),
    ]


async def test_patch_sends_the_fields_given(fakes: Fakes, http: httpx.AsyncClient) -> None:
    response = await http.patch(PROJECT, json={"title": "Grid v2"})

    assert response.json()["title"] == "Grid v2"
    assert fakes.spec.only_call().request == spec_pb.UpdateProjectRequest(
        project_id=PROJECT_ID, update_mask=FieldMask(paths=["title"]), title="Grid v2"
    )


async def test_patch_turns_the_failure_snapshot_setting_on_alone(fakes: Fakes, http: httpx.AsyncClient) -> None:
    setting_on = spec_pb.Project()
    setting_on.CopyFrom(project())
    setting_on.auto_snapshot_failed_runs = True
    fakes.spec.responses["UpdateProject"] = spec_pb.UpdateProjectResponse(project=setting_on)

    response = await http.patch(PROJECT, json={"auto_snapshot_failed_runs": True})

    assert response.json()["auto_snapshot_failed_runs"] is True
    assert fakes.spec.only_call().request == spec_pb.UpdateProjectRequest(
        project_id=PROJECT_ID,
        update_mask=FieldMask(paths=["auto_snapshot_failed_runs"]),
        auto_snapshot_failed_runs=True,
    )


async def test_an_empty_patch_reads_the_project(fakes: Fakes, http: httpx.AsyncClient) -> None:
    response = await http.patch(PROJECT, json={})

    assert response.status_code == 200
    assert fakes.spec.only_call().request == spec_pb.GetProjectRequest(project_id=PROJECT_ID)


async def test_a_followed_project_is_read_once_until_a_write_or_a_fresh_read(fakes: Fakes) -> None:
    fakes.spec.follows_changes = True
    async with serve(fakes) as http:
        # The app follows the feed from its start; reads are kept once it is ready.
        async with asyncio.timeout(5):
            while True:
                fakes.spec.calls.clear()
                await http.get(PROJECT)
                await http.get(PROJECT)
                if len(fakes.spec.calls) == 1:  # the second read came from the gateway's copy
                    break
                await asyncio.sleep(0.01)
        fakes.spec.calls.clear()

        assert (await http.get(PROJECT)).json()["title"] == "Grid"
        assert fakes.spec.calls == []

        fakes.spec.responses["GetProject"] = spec_pb.GetProjectResponse(project=project("Grid v2"))
        for header in ("no-cache", "max-age=0", "No-Cache, max-age=60"):
            response = await http.get(PROJECT, headers={"Cache-Control": header})
            assert response.json()["title"] == "Grid v2"
        assert [c.method for c in fakes.spec.calls] == ["GetProject"] * 3
        fakes.spec.calls.clear()
        assert (await http.get(PROJECT, headers={"Cache-Control": "max-age=60"})).json()["title"] == "Grid v2"
        assert fakes.spec.calls == []

        # Its own write drops the copy, whatever the write's answer (it may have committed).
        fakes.spec.fail("UpdateProject", plain_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"))
        assert (await http.patch(PROJECT, json={"title": "Grid v3"})).status_code == 504
        fakes.spec.responses["GetProject"] = spec_pb.GetProjectResponse(project=project("Grid v3"))
        assert (await http.get(PROJECT)).json()["title"] == "Grid v3"
        assert (await http.delete(PROJECT)).status_code == 204
        fakes.spec.fail("GetProject", rpc_error(NotFound("no such project", reason="PROJECT_NOT_FOUND")))
        assert (await http.get(PROJECT)).status_code == 404
    assert [c.method for c in fakes.spec.calls] == ["UpdateProject", "GetProject", "DeleteProject", "GetProject"]


async def test_health_reports_services_not_serving(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fakes.statuses["agent"] = "UNAVAILABLE"

    response = await http.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "degraded",
        "services": {"spec": "SERVING", "run": "SERVING", "snapshot": "SERVING", "agent": "UNAVAILABLE"},
        "not_serving": ["agent"],
    }
