"""/api/projects/{id}/problem-spec and /world-model over the fake spec service."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from crucible.common.v1 import actor_pb2
from crucible.spec.v1 import spec_service_pb2 as spec_pb
from crucible_common.protobuf import struct
from tests.unit.gateway.conftest import assert_refused
from tests.unit.gateway.fakes import PROJECT_ID, Fakes, provenance_entry

SPEC = f"/api/projects/{PROJECT_ID}/problem-spec"
MODEL = f"/api/projects/{PROJECT_ID}/world-model"
USER = actor_pb2.Actor(kind=actor_pb2.ACTOR_KIND_USER)

INVALID = [
    pytest.param("PUT", SPEC, {"json": {"resolution": "ultra"}}, "resolution", id="put-unknown-resolution"),
    pytest.param("PATCH", SPEC, {"json": {"mode": "sideways"}}, "mode", id="patch-unknown-mode"),
    pytest.param("PATCH", SPEC, {"json": {"mode": "unspecified"}}, "mode", id="patch-mode-unspecified"),
    pytest.param(
        "PATCH", SPEC, {"json": {"constraints": [{"name": "c", "weight": 2**31}]}}, "constraints[0].weight", id="weight"
    ),
    pytest.param("PATCH", SPEC, {"json": {"constraints": [{"weight": 1}]}}, "constraints[0].name", id="no-name"),
    pytest.param("PATCH", SPEC, {"json": {"goals": [{}]}}, "goals[0].description", id="goal-without-description"),
    pytest.param("PATCH", SPEC, {"json": {"expected_version": -1}}, "expected_version", id="negative-version"),
    pytest.param("PATCH", SPEC, {"json": {"expected_version": 2**63}}, "expected_version", id="version-too-big"),
    pytest.param("PATCH", SPEC, {"json": {"actor": {"kind": "robot"}}}, "actor.kind", id="unknown-actor-kind"),
    pytest.param("PATCH", SPEC, {"json": {"owner": "x"}}, "owner", id="unknown-field"),
    pytest.param("GET", f"{SPEC}/provenance?page_size=2000", {}, "query.page_size", id="provenance-page-size"),
    pytest.param("PUT", MODEL, {"json": {}}, "model_data", id="model-without-data"),
    pytest.param("PATCH", MODEL, {"json": {"model_data": ["crew"]}}, "model_data", id="model-data-list"),
    pytest.param("PUT", MODEL, {"json": {"model_data": {}, "reason": 1}}, "reason", id="model-reason-number"),
    pytest.param("GET", f"{MODEL}/provenance?page_size=x", {}, "query.page_size", id="model-provenance-page-size"),
]


@pytest.mark.parametrize(("method", "url", "kwargs", "field"), INVALID)
async def test_invalid_input_is_refused_before_the_service(
    fakes: Fakes, http: httpx.AsyncClient, method: str, url: str, kwargs: dict[str, Any], field: str | None
) -> None:
    assert_refused(await http.request(method, url, **kwargs), fakes, field)


async def test_get_renders_the_enum_names(fakes: Fakes, http: httpx.AsyncClient) -> None:
    body = (await http.get(SPEC)).json()

    assert (body["resolution"], body["mode"], body["version"]) == ("coarse", "eval_only", 2)
    assert body["constraints"] == [{"name": "safety", "description": "no injuries", "weight": 100}]
    assert fakes.spec.only_call().request == spec_pb.GetProblemSpecRequest(project_id=PROJECT_ID)


async def test_put_replaces_every_field(fakes: Fakes, http: httpx.AsyncClient) -> None:
    response = await http.put(
        SPEC,
        json={
            "constraints": [{"name": "safety", "description": "no injuries", "weight": 100}],
            "goals": [{"description": "double output"}],
            "resolution": "fine",
            "reason": "initial",
            "actor": {"kind": "architect", "id": "a-1"},
        },
    )

    assert response.status_code == 200, response.text
    assert fakes.spec.only_call().request == spec_pb.UpdateProblemSpecRequest(
        problem_spec=spec_pb.ProblemSpec(
            project_id=PROJECT_ID,
            constraints=[spec_pb.Constraint(name="safety", description="no injuries", weight=100)],
            goals=[spec_pb.Goal(description="double output")],
            resolution=spec_pb.RESOLUTION_FINE,
            mode=spec_pb.RUN_MODE_FULL_SEARCH,
        ),
        update_mask=FieldMask(paths=["constraints", "goals", "resolution", "mode"]),
        allow_missing=True,
        reason="initial",
        actor=actor_pb2.Actor(kind=actor_pb2.ACTOR_KIND_ARCHITECT, id="a-1"),
    )


async def test_patch_sends_only_the_fields_given(fakes: Fakes, http: httpx.AsyncClient) -> None:
    await http.patch(SPEC, json={"mode": "seeded", "expected_version": 1})

    assert fakes.spec.only_call().request == spec_pb.UpdateProblemSpecRequest(
        problem_spec=spec_pb.ProblemSpec(project_id=PROJECT_ID, mode=spec_pb.RUN_MODE_SEEDED),
        update_mask=FieldMask(paths=["mode"]),
        allow_missing=True,
        expected_version=1,
        actor=USER,
    )


async def test_an_empty_patch_reads_the_problem_spec(fakes: Fakes, http: httpx.AsyncClient) -> None:
    await http.patch(SPEC, json={"mode": None, "reason": "nothing"})

    assert fakes.spec.only_call().request == spec_pb.GetProblemSpecRequest(project_id=PROJECT_ID)


async def test_provenance_renders_the_actor(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fakes.spec.answer(
        "ListProblemSpecProvenance",
        spec_pb.ListProblemSpecProvenanceResponse(
            entries=[provenance_entry(), provenance_entry(actor_pb2.ACTOR_KIND_UNSPECIFIED)]
        ),
    )

    body = (await http.get(f"{SPEC}/provenance", params={"page_size": 10})).json()

    # An entry without an actor kind reads as the default, "user".
    assert [e["actor"] for e in body["entries"]] == [
        {"kind": "architect", "id": "architect-1"},
        {"kind": "user", "id": "architect-1"},
    ]
    assert body["entries"][0]["changes"] == {"mode": "seeded"}
    assert fakes.spec.only_call().request == spec_pb.ListProblemSpecProvenanceRequest(
        project_id=PROJECT_ID, page_size=10
    )


async def test_put_world_model_replaces_the_model_data(fakes: Fakes, http: httpx.AsyncClient) -> None:
    response = await http.put(MODEL, json={"model_data": {"actors": ["crew"]}, "actor": {"kind": "system"}})

    assert response.json()["model_data"] == {"actors": ["crew"], "resources": []}
    assert fakes.spec.only_call().request == spec_pb.UpdateWorldModelRequest(
        world_model=spec_pb.WorldModel(project_id=PROJECT_ID, model_data=struct({"actors": ["crew"]})),
        update_mask=FieldMask(paths=["model_data"]),
        allow_missing=True,
        actor=actor_pb2.Actor(kind=actor_pb2.ACTOR_KIND_SYSTEM),
    )


async def test_patch_world_model_replaces_the_sections_given(fakes: Fakes, http: httpx.AsyncClient) -> None:
    await http.patch(MODEL, json={"model_data": {"assumptions": ["24/7 power"]}, "expected_version": 3})

    assert fakes.spec.only_call().request == spec_pb.UpdateWorldModelRequest(
        world_model=spec_pb.WorldModel(project_id=PROJECT_ID, model_data=struct({"assumptions": ["24/7 power"]})),
        update_mask=FieldMask(paths=["model_data.assumptions"]),
        allow_missing=True,
        expected_version=3,
        actor=USER,
    )


async def test_an_empty_world_model_patch_reads_it(fakes: Fakes, http: httpx.AsyncClient) -> None:
    await http.patch(MODEL, json={"model_data": {}})

    assert fakes.spec.only_call().request == spec_pb.GetWorldModelRequest(project_id=PROJECT_ID)


async def test_world_model_provenance(fakes: Fakes, http: httpx.AsyncClient) -> None:
    body = (await http.get(f"{MODEL}/provenance", params={"page_token": "tok"})).json()

    assert body["next_page_token"] == "n"
    assert fakes.spec.only_call().request == spec_pb.ListWorldModelProvenanceRequest(
        project_id=PROJECT_ID, page_token="tok"
    )
