"""The spec service over real gRPC against a real, migrated Postgres."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from grpc_status import rpc_status
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from crucible.common.v1 import actor_pb2
from crucible.spec.v1 import spec_service_pb2 as pb
from crucible_common.errors import decode_status
from crucible_common.protobuf import struct, struct_to_dict

if TYPE_CHECKING:  # the async stub type exists only in the generated .pyi
    from crucible.spec.v1.spec_service_pb2_grpc import SpecServiceAsyncStub

pytestmark = pytest.mark.integration


async def _error(call: object) -> tuple[grpc.StatusCode, object]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    error = info.value
    details = decode_status(error.code(), error.details() or "", rpc_status.from_call(error))
    return error.code(), details


async def _project(stub: SpecServiceAsyncStub, title: str = "P") -> pb.Project:
    return (await stub.CreateProject(pb.CreateProjectRequest(title=title))).project


async def test_project_lifecycle(spec_stub: SpecServiceAsyncStub) -> None:
    created = (await spec_stub.CreateProject(pb.CreateProjectRequest(title="  Bridge  ", description="d"))).project
    assert created.title == "Bridge"
    fetched = (await spec_stub.GetProject(pb.GetProjectRequest(project_id=created.id))).project
    assert fetched == created

    updated = (
        await spec_stub.UpdateProject(
            pb.UpdateProjectRequest(
                project_id=created.id, update_mask=FieldMask(paths=["description"]), description="new"
            )
        )
    ).project
    assert (updated.title, updated.description) == ("Bridge", "new")
    assert updated.update_time.ToDatetime() > created.update_time.ToDatetime()

    await spec_stub.DeleteProject(pb.DeleteProjectRequest(project_id=created.id))
    code, details = await _error(spec_stub.GetProject(pb.GetProjectRequest(project_id=created.id)))
    assert code is grpc.StatusCode.NOT_FOUND
    assert details.reason == "PROJECT_NOT_FOUND"  # type: ignore[attr-defined]


async def test_validation_errors_carry_reasons_and_field_violations(spec_stub: SpecServiceAsyncStub) -> None:
    code, details = await _error(spec_stub.CreateProject(pb.CreateProjectRequest(title=" ", description="x" * 10_001)))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert details.reason == "VALIDATION_FAILED"  # type: ignore[attr-defined]
    assert {v.field for v in details.field_violations} == {"title", "description"}  # type: ignore[attr-defined]

    code, details = await _error(spec_stub.GetProject(pb.GetProjectRequest(project_id="not-a-uuid")))
    assert (code, details.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ID")  # type: ignore[attr-defined]

    project = await _project(spec_stub)
    code, details = await _error(
        spec_stub.UpdateProject(pb.UpdateProjectRequest(project_id=project.id, update_mask=FieldMask(paths=["owner"])))
    )
    assert (code, details.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_UPDATE_MASK")  # type: ignore[attr-defined]

    code, details = await _error(
        spec_stub.CreateChatSession(pb.CreateChatSessionRequest(project_id=project.id, mode=42))  # type: ignore[arg-type]
    )
    assert (code, details.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_ENUM_VALUE")  # type: ignore[attr-defined]

    code, _ = await _error(spec_stub.CreateChatSession(pb.CreateChatSessionRequest(project_id=project.id)))
    assert code is grpc.StatusCode.INVALID_ARGUMENT


async def test_oversized_payload_is_refused(spec_stub: SpecServiceAsyncStub) -> None:
    project = await _project(spec_stub)
    session = (
        await spec_stub.CreateChatSession(
            pb.CreateChatSessionRequest(project_id=project.id, mode=pb.CHAT_SESSION_MODE_SETUP)
        )
    ).chat_session
    code, details = await _error(
        spec_stub.CreateChatMessage(
            pb.CreateChatMessageRequest(
                chat_session_id=session.id,
                role=pb.MESSAGE_ROLE_USER,
                content="hi",
                metadata=struct({"blob": "x" * (70 * 1024)}),
            )
        )
    )
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in details.field_violations] == ["metadata"]  # type: ignore[attr-defined]
    # Nothing was stored, and the session's sequence was not consumed.
    listed = await spec_stub.ListChatMessages(pb.ListChatMessagesRequest(chat_session_id=session.id))
    assert list(listed.chat_messages) == []


async def test_a_project_made_to_replay_a_snapshot_is_listed_only_when_asked_for(
    spec_stub: SpecServiceAsyncStub,
) -> None:
    snapshot_id = str(uuid.uuid4())
    own = await _project(spec_stub, "mine")
    replay = (
        await spec_stub.CreateProject(
            pb.CreateProjectRequest(title="Replay: mine", replay_of_snapshot_id=snapshot_id.upper())
        )
    ).project
    assert (own.replay_of_snapshot_id, replay.replay_of_snapshot_id) == ("", snapshot_id)
    got = await spec_stub.GetProject(pb.GetProjectRequest(project_id=replay.id))
    assert got.project.replay_of_snapshot_id == snapshot_id

    listed = await spec_stub.ListProjects(pb.ListProjectsRequest(page_size=1000))
    ids = [p.id for p in listed.projects]
    assert own.id in ids
    assert replay.id not in ids
    every = await spec_stub.ListProjects(pb.ListProjectsRequest(page_size=1000, include_replays=True))
    assert {own.id, replay.id} <= {p.id for p in every.projects}
    # A page token of one list does not page the other (their pages would skip or repeat projects).
    first = await spec_stub.ListProjects(pb.ListProjectsRequest(page_size=1, include_replays=True))
    code, details = await _error(
        spec_stub.ListProjects(pb.ListProjectsRequest(page_size=1, page_token=first.next_page_token))
    )
    assert (code, details.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN")  # type: ignore[attr-defined]

    code, details = await _error(
        spec_stub.CreateProject(pb.CreateProjectRequest(title="Replay", replay_of_snapshot_id="not-a-snapshot"))
    )
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in details.field_violations] == ["replay_of_snapshot_id"]  # type: ignore[attr-defined]


async def test_projects_paginate_without_gaps_or_repeats(spec_stub: SpecServiceAsyncStub) -> None:
    for i in range(7):
        await _project(spec_stub, f"page-{i}")
    seen: list[str] = []
    token = ""
    while True:
        page = await spec_stub.ListProjects(pb.ListProjectsRequest(page_size=3, page_token=token))
        assert len(page.projects) <= 3
        seen.extend(p.id for p in page.projects)
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen))
    everything = await spec_stub.ListProjects(pb.ListProjectsRequest(page_size=1000))
    assert seen == [p.id for p in everything.projects]
    times = [p.create_time.ToDatetime() for p in everything.projects]
    assert times == sorted(times, reverse=True)

    code, details = await _error(spec_stub.ListProjects(pb.ListProjectsRequest(page_token="garbage")))
    assert (code, details.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN")  # type: ignore[attr-defined]


async def test_chat_messages_keep_order_and_metadata(spec_stub: SpecServiceAsyncStub) -> None:
    project = await _project(spec_stub)
    session = (
        await spec_stub.CreateChatSession(
            pb.CreateChatSessionRequest(project_id=project.id, mode=pb.CHAT_SESSION_MODE_ANALYSIS, title="A")
        )
    ).chat_session
    assert session.mode == pb.CHAT_SESSION_MODE_ANALYSIS
    metadata = {"recommended_run_config": {"mode": "full_search", "num_candidates": 5, "blockers": []}}

    async def send(i: int) -> pb.ChatMessage:
        request = pb.CreateChatMessageRequest(
            chat_session_id=session.id, role=pb.MESSAGE_ROLE_AGENT, content=f"m{i}", metadata=struct(metadata)
        )
        return (await spec_stub.CreateChatMessage(request)).chat_message

    # Concurrent appends still get distinct, gap-free sequence numbers.
    sent = await asyncio.gather(*(send(i) for i in range(12)))
    assert sorted(m.sequence for m in sent) == list(range(1, 13))

    listed: list[pb.ChatMessage] = []
    token = ""
    while True:
        page = await spec_stub.ListChatMessages(
            pb.ListChatMessagesRequest(chat_session_id=session.id, page_size=5, page_token=token)
        )
        listed.extend(page.chat_messages)
        token = page.next_page_token
        if not token:
            break
    assert [m.sequence for m in listed] == list(range(1, 13))
    assert struct_to_dict(listed[0].metadata) == metadata

    sessions = await spec_stub.ListChatSessions(pb.ListChatSessionsRequest(project_id=project.id))
    assert [s.id for s in sessions.chat_sessions] == [session.id]

    code, _ = await _error(
        spec_stub.CreateChatMessage(
            pb.CreateChatMessageRequest(chat_session_id=str(uuid.uuid4()), role=pb.MESSAGE_ROLE_USER, content="x")
        )
    )
    assert code is grpc.StatusCode.NOT_FOUND


async def test_problem_spec_versions_and_provenance(spec_stub: SpecServiceAsyncStub) -> None:
    project = await _project(spec_stub)
    code, details = await _error(spec_stub.GetProblemSpec(pb.GetProblemSpecRequest(project_id=project.id)))
    assert (code, details.reason) == (grpc.StatusCode.NOT_FOUND, "PROBLEM_SPEC_NOT_FOUND")  # type: ignore[attr-defined]

    first = (
        await spec_stub.UpdateProblemSpec(
            pb.UpdateProblemSpecRequest(
                problem_spec=pb.ProblemSpec(
                    project_id=project.id,
                    constraints=[pb.Constraint(name="budget", description="under 1M", weight=100)],
                    goals=[pb.Goal(description="maximise throughput")],
                    resolution=pb.RESOLUTION_FINE,
                ),
                allow_missing=True,
                actor=actor_pb2.Actor(kind=actor_pb2.ACTOR_KIND_ARCHITECT, id="turn-1"),
                reason="from the first chat turn",
            )
        )
    ).problem_spec
    assert (first.version, first.resolution, first.mode) == (1, pb.RESOLUTION_FINE, pb.RUN_MODE_FULL_SEARCH)

    second = (
        await spec_stub.UpdateProblemSpec(
            pb.UpdateProblemSpecRequest(
                problem_spec=pb.ProblemSpec(project_id=project.id, mode=pb.RUN_MODE_EVAL_ONLY),
                update_mask=FieldMask(paths=["mode"]),
                expected_version=1,
            )
        )
    ).problem_spec
    assert second.version == 2
    assert second.mode == pb.RUN_MODE_EVAL_ONLY
    assert list(second.constraints) == list(first.constraints)

    code, details = await _error(
        spec_stub.UpdateProblemSpec(
            pb.UpdateProblemSpecRequest(
                problem_spec=pb.ProblemSpec(project_id=project.id, goals=[pb.Goal(description="g")]),
                update_mask=FieldMask(paths=["goals"]),
                expected_version=1,
            )
        )
    )
    assert (code, details.reason) == (grpc.StatusCode.ABORTED, "VERSION_MISMATCH")  # type: ignore[attr-defined]

    code, details = await _error(
        spec_stub.UpdateProblemSpec(
            pb.UpdateProblemSpecRequest(
                problem_spec=pb.ProblemSpec(
                    project_id=project.id,
                    constraints=[pb.Constraint(name="a", weight=101), pb.Constraint(name="b", weight=-1)],
                ),
                update_mask=FieldMask(paths=["constraints"]),
            )
        )
    )
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in details.field_violations] == ["constraints[0].weight", "constraints[1].weight"]  # type: ignore[attr-defined]

    log = await spec_stub.ListProblemSpecProvenance(pb.ListProblemSpecProvenanceRequest(project_id=project.id))
    assert [(e.version, e.action) for e in log.entries] == [(1, "created"), (2, "updated")]
    assert log.entries[0].actor.kind == actor_pb2.ACTOR_KIND_ARCHITECT
    assert log.entries[0].reason == "from the first chat turn"
    assert list(log.entries[1].changed_fields) == ["mode"]
    assert struct_to_dict(log.entries[1].changes) == {"mode": "eval_only"}


async def test_world_model_sections_and_provenance(spec_stub: SpecServiceAsyncStub) -> None:
    project = await _project(spec_stub)
    data = {"actors": [{"name": "operator"}], "assumptions": ["demand is stable"]}
    created = (
        await spec_stub.UpdateWorldModel(
            pb.UpdateWorldModelRequest(
                world_model=pb.WorldModel(project_id=project.id, model_data=struct(data)), allow_missing=True
            )
        )
    ).world_model
    stored = struct_to_dict(created.model_data)
    assert stored["actors"] == [{"name": "operator"}]
    assert set(stored) == {"actors", "mechanisms", "resources", "constraints", "assumptions", "simplifications"}

    patched = (
        await spec_stub.UpdateWorldModel(
            pb.UpdateWorldModelRequest(
                world_model=pb.WorldModel(
                    project_id=project.id, model_data=struct({"resources": [{"name": "cpu", "units": 8}]})
                ),
                update_mask=FieldMask(paths=["model_data.resources"]),
            )
        )
    ).world_model
    after = struct_to_dict(patched.model_data)
    assert after["resources"] == [{"name": "cpu", "units": 8}]
    assert after["actors"] == [{"name": "operator"}]

    code, details = await _error(
        spec_stub.UpdateWorldModel(
            pb.UpdateWorldModelRequest(
                world_model=pb.WorldModel(project_id=project.id, model_data=struct({"actor": []})),
            )
        )
    )
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert details.field_violations[0].field == "model_data.actor"  # type: ignore[attr-defined]

    log = await spec_stub.ListWorldModelProvenance(pb.ListWorldModelProvenanceRequest(project_id=project.id))
    assert [e.version for e in log.entries] == [1, 2]
    assert list(log.entries[1].changed_fields) == ["model_data.resources"]


async def test_concurrent_first_writes_create_one_problem_spec(spec_stub: SpecServiceAsyncStub) -> None:
    project = await _project(spec_stub)

    async def write(i: int) -> pb.ProblemSpec:
        request = pb.UpdateProblemSpecRequest(
            problem_spec=pb.ProblemSpec(project_id=project.id, goals=[pb.Goal(description=f"goal {i}")]),
            update_mask=FieldMask(paths=["goals"]),
            allow_missing=True,
        )
        return (await spec_stub.UpdateProblemSpec(request)).problem_spec

    results = await asyncio.gather(*(write(i) for i in range(6)))
    assert sorted(r.version for r in results) == [1, 2, 3, 4, 5, 6]
    log = await spec_stub.ListProblemSpecProvenance(pb.ListProblemSpecProvenanceRequest(project_id=project.id))
    assert [e.action for e in log.entries] == ["created"] + ["updated"] * 5


async def test_provenance_is_append_only_in_the_database(
    spec_stub: SpecServiceAsyncStub, spec_engine: AsyncEngine
) -> None:
    project = await _project(spec_stub)
    await spec_stub.UpdateProblemSpec(
        pb.UpdateProblemSpecRequest(problem_spec=pb.ProblemSpec(project_id=project.id), allow_missing=True)
    )
    async with spec_engine.connect() as conn:
        with pytest.raises(DBAPIError, match="append-only"):
            await conn.execute(text("UPDATE spec.provenance_entries SET reason = 'rewritten'"))


async def test_deleting_a_project_removes_its_data(spec_stub: SpecServiceAsyncStub, spec_engine: AsyncEngine) -> None:
    project = await _project(spec_stub)
    session = (
        await spec_stub.CreateChatSession(
            pb.CreateChatSessionRequest(project_id=project.id, mode=pb.CHAT_SESSION_MODE_SETUP)
        )
    ).chat_session
    await spec_stub.CreateChatMessage(
        pb.CreateChatMessageRequest(chat_session_id=session.id, role=pb.MESSAGE_ROLE_USER, content="hello")
    )
    await spec_stub.UpdateWorldModel(
        pb.UpdateWorldModelRequest(world_model=pb.WorldModel(project_id=project.id), allow_missing=True)
    )
    await spec_stub.DeleteProject(pb.DeleteProjectRequest(project_id=project.id))
    async with spec_engine.connect() as conn:
        for table in ("chat_sessions", "world_models", "provenance_entries"):
            count = await conn.scalar(
                text(f"SELECT count(*) FROM spec.{table} WHERE project_id = :p"), {"p": project.id}
            )
            assert count == 0, table
    code, _ = await _error(spec_stub.DeleteProject(pb.DeleteProjectRequest(project_id=project.id)))
    assert code is grpc.StatusCode.NOT_FOUND
