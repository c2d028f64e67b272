"""The spec service's use cases, run against the in-memory repository and unit of work."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import replace
from typing import Any

import grpc
import pytest

from crucible_common.errors import CrucibleError, InvalidArgument, ValidationFailed
from crucible_common.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from crucible_spec.domain.errors import (
    ChatMessageIdTaken,
    ChatMessageNotFound,
    ChatSessionNotFound,
    ProblemSpecNotFound,
    ProjectNotFound,
    VersionConflict,
    WorldModelNotFound,
)
from crucible_spec.domain.model import (
    WORLD_MODEL_SECTIONS,
    Actor,
    ActorKind,
    ChatSession,
    ChatSessionMode,
    Constraint,
    Goal,
    MessageRole,
    Project,
    ProvenanceAction,
    Resolution,
    RunMode,
)
from crucible_spec.domain.validation import MAX_MESSAGE_CONTENT, MAX_METADATA_BYTES
from crucible_spec.service_layer import commands as c
from crucible_spec.service_layer import handlers as h
from tests.unit.spec.fakes import FakeUnitOfWork

MALFORMED_ID = "not-a-uuid"


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


def unknown_id() -> str:
    return str(uuid.uuid4())


def fields(error: CrucibleError) -> list[str]:
    assert isinstance(error, InvalidArgument)
    return [v.field for v in error.violations]


async def new_project(uow: FakeUnitOfWork, title: str = "Bridge") -> Project:
    return await h.create_project(c.CreateProject(title, "a river crossing"), uow)


async def new_session(uow: FakeUnitOfWork, project_id: str) -> ChatSession:
    return await h.create_chat_session(c.CreateChatSession(project_id, ChatSessionMode.SETUP, "setup"), uow)


def forged_token(scope: str, key: str) -> str:
    raw = json.dumps({"s": scope, "k": key, "i": unknown_id()}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# ---------------------------------------------------------------- projects


async def test_create_project_stores_it_and_commits(uow: FakeUnitOfWork) -> None:
    project = await h.create_project(c.CreateProject("  Bridge  ", "a river crossing"), uow)

    assert uow.committed
    assert project.title == "Bridge"
    assert project.description == "a river crossing"
    assert project.created_at == project.updated_at
    assert uuid.UUID(project.id)
    assert await h.get_project(c.GetProject(project.id), uow) == project


@pytest.mark.parametrize(
    ("title", "description", "bad_fields"),
    [
        ("", "", ["title"]),
        ("   ", "", ["title"]),
        ("x" * 201, "", ["title"]),
        ("ok", "d" * 10_001, ["description"]),
        ("", "d" * 10_001, ["title", "description"]),
    ],
)
async def test_create_project_rejects_bad_fields(
    uow: FakeUnitOfWork, title: str, description: str, bad_fields: list[str]
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await h.create_project(c.CreateProject(title, description), uow)

    assert fields(caught.value) == bad_fields
    assert caught.value.reason == "VALIDATION_FAILED"
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert not uow.repo.tables.projects


async def test_get_project_accepts_any_uuid_spelling(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)

    assert await h.get_project(c.GetProject(project.id.upper()), uow) == project


async def test_get_project_with_malformed_id_is_invalid_argument(uow: FakeUnitOfWork) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await h.get_project(c.GetProject(MALFORMED_ID), uow)

    assert caught.value.reason == "INVALID_ID"
    assert fields(caught.value) == ["project_id"]


async def test_get_unknown_project_is_project_not_found(uow: FakeUnitOfWork) -> None:
    project_id = unknown_id()

    with pytest.raises(ProjectNotFound) as caught:
        await h.get_project(c.GetProject(project_id), uow)

    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert caught.value.reason == "PROJECT_NOT_FOUND"
    assert caught.value.metadata == {"project_id": project_id}


async def test_list_projects_pages_through_all_newest_first(uow: FakeUnitOfWork) -> None:
    created = [await new_project(uow, f"p{i}") for i in range(7)]
    expected = [p.id for p in sorted(created, key=lambda p: (p.created_at, p.id), reverse=True)]

    seen: list[str] = []
    sizes: list[int] = []
    token = ""
    while True:
        page = await h.list_projects(c.ListProjects(page_size=3, page_token=token), uow)
        seen += [p.id for p in page.items]
        sizes.append(len(page.items))
        token = page.next_page_token
        if not token:
            break

    assert seen == expected
    assert sizes == [3, 3, 1]


async def test_list_projects_exact_multiple_ends_with_empty_token(uow: FakeUnitOfWork) -> None:
    for i in range(6):
        await new_project(uow, f"p{i}")

    first = await h.list_projects(c.ListProjects(page_size=3), uow)
    second = await h.list_projects(c.ListProjects(3, first.next_page_token), uow)

    assert len(first.items) == len(second.items) == 3
    assert first.next_page_token
    assert second.next_page_token == ""


async def test_list_projects_when_empty(uow: FakeUnitOfWork) -> None:
    page = await h.list_projects(c.ListProjects(), uow)

    assert page.items == []
    assert page.next_page_token == ""


async def test_list_projects_default_and_maximum_page_size(uow: FakeUnitOfWork) -> None:
    for i in range(DEFAULT_PAGE_SIZE + 1):
        await new_project(uow, f"p{i}")

    default = await h.list_projects(c.ListProjects(page_size=0), uow)
    clamped = await h.list_projects(c.ListProjects(page_size=MAX_PAGE_SIZE * 10), uow)

    assert len(default.items) == DEFAULT_PAGE_SIZE
    assert default.next_page_token
    assert len(clamped.items) == DEFAULT_PAGE_SIZE + 1
    assert clamped.next_page_token == ""


async def test_list_projects_rejects_negative_page_size(uow: FakeUnitOfWork) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await h.list_projects(c.ListProjects(page_size=-1), uow)

    assert fields(caught.value) == ["page_size"]


@pytest.mark.parametrize("token", ["garbage", "!!!", "e30", "bnVsbA", "W10"])
async def test_list_projects_rejects_garbage_token(uow: FakeUnitOfWork, token: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await h.list_projects(c.ListProjects(page_token=token), uow)

    assert caught.value.reason == "INVALID_PAGE_TOKEN"
    assert fields(caught.value) == ["page_token"]


async def test_list_projects_rejects_token_of_another_listing(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)
    for _ in range(2):
        await new_session(uow, project.id)
    sessions = await h.list_chat_sessions(c.ListChatSessions(project.id, page_size=1), uow)
    assert sessions.next_page_token

    with pytest.raises(InvalidArgument) as caught:
        await h.list_projects(c.ListProjects(page_token=sessions.next_page_token), uow)

    assert caught.value.reason == "INVALID_PAGE_TOKEN"


async def test_list_projects_rejects_forged_token_with_bad_time(uow: FakeUnitOfWork) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await h.list_projects(c.ListProjects(page_token=forged_token("projects", "yesterday")), uow)

    assert caught.value.reason == "INVALID_PAGE_TOKEN"


async def test_update_project_without_mask_replaces_both(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)

    updated = await h.update_project(c.UpdateProject(project.id, (), " New ", "new text"), uow)

    assert uow.committed
    assert (updated.title, updated.description) == ("New", "new text")
    assert updated.created_at == project.created_at
    assert updated.updated_at >= project.updated_at
    assert await h.get_project(c.GetProject(project.id), uow) == updated


async def test_update_project_with_mask_changes_only_masked_field(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)

    updated = await h.update_project(c.UpdateProject(project.id, ("title",), "New", ""), uow)

    assert updated.title == "New"
    assert updated.description == project.description
    assert await h.get_project(c.GetProject(project.id), uow) == updated


async def test_update_project_mask_skips_validation_of_unmasked_fields(
    uow: FakeUnitOfWork,
) -> None:
    project = await new_project(uow)

    updated = await h.update_project(
        c.UpdateProject(project.id, ("description",), title="", description="only this"), uow
    )

    assert updated.title == project.title
    assert updated.description == "only this"


async def test_auto_snapshot_failed_runs_is_off_and_changes_only_when_named(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)
    assert not project.auto_snapshot_failed_runs

    on = await h.update_project(
        c.UpdateProject(project.id, ("auto_snapshot_failed_runs",), auto_snapshot_failed_runs=True), uow
    )
    # An empty mask is title and description, as before the setting: it stays on.
    renamed = await h.update_project(c.UpdateProject(project.id, (), "Renamed", "text"), uow)
    off = await h.update_project(c.UpdateProject(project.id, ("auto_snapshot_failed_runs",)), uow)

    assert (on.auto_snapshot_failed_runs, on.title) == (True, project.title)
    assert (renamed.auto_snapshot_failed_runs, renamed.title) == (True, "Renamed")
    assert (off.auto_snapshot_failed_runs, off.title) == (False, "Renamed")
    assert await h.get_project(c.GetProject(project.id), uow) == off


async def test_update_project_rejects_unknown_mask_path(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)

    with pytest.raises(InvalidArgument) as caught:
        await h.update_project(c.UpdateProject(project.id, ("title", "owner"), "New"), uow)

    assert caught.value.reason == "INVALID_UPDATE_MASK"
    assert fields(caught.value) == ["update_mask"]
    assert await h.get_project(c.GetProject(project.id), uow) == project


async def test_update_project_rejects_empty_title(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)

    with pytest.raises(ValidationFailed) as caught:
        await h.update_project(c.UpdateProject(project.id, (), "  ", "text"), uow)

    assert fields(caught.value) == ["title"]


async def test_update_project_bad_and_unknown_ids(uow: FakeUnitOfWork) -> None:
    with pytest.raises(InvalidArgument) as malformed:
        await h.update_project(c.UpdateProject(MALFORMED_ID, (), "t"), uow)
    with pytest.raises(ProjectNotFound):
        await h.update_project(c.UpdateProject(unknown_id(), (), "t"), uow)

    assert malformed.value.reason == "INVALID_ID"
    assert not uow.committed


async def test_delete_project_then_get_is_not_found(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)

    await h.delete_project(c.DeleteProject(project.id), uow)

    assert uow.committed
    with pytest.raises(ProjectNotFound):
        await h.get_project(c.GetProject(project.id), uow)


async def test_delete_project_removes_what_belongs_to_it(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)
    other = await new_project(uow, "Other")
    session = await new_session(uow, project.id)
    await h.create_chat_message(c.CreateChatMessage(session.id, MessageRole.USER, "hi"), uow)
    await h.update_problem_spec(c.UpdateProblemSpec(project.id, allow_missing=True), uow)
    await h.update_world_model(c.UpdateWorldModel(project.id, {}, allow_missing=True), uow)
    await h.update_problem_spec(c.UpdateProblemSpec(other.id, allow_missing=True), uow)

    await h.delete_project(c.DeleteProject(project.id), uow)

    with pytest.raises(ChatSessionNotFound):
        await h.get_chat_session(c.GetChatSession(session.id), uow)
    with pytest.raises(ProjectNotFound):
        await h.get_problem_spec(c.GetProblemSpec(project.id), uow)
    tables = uow.repo.tables
    assert tables.chat_messages == []
    assert project.id not in tables.world_models
    assert [e.project_id for _, e in tables.provenance] == [other.id]
    assert (await h.get_problem_spec(c.GetProblemSpec(other.id), uow)).version == 1


async def test_delete_project_bad_and_unknown_ids(uow: FakeUnitOfWork) -> None:
    with pytest.raises(InvalidArgument) as malformed:
        await h.delete_project(c.DeleteProject(MALFORMED_ID), uow)
    with pytest.raises(ProjectNotFound):
        await h.delete_project(c.DeleteProject(unknown_id()), uow)

    assert malformed.value.reason == "INVALID_ID"
    assert not uow.committed


# ---------------------------------------------------------------- chat sessions


async def test_create_chat_session(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)

    session = await h.create_chat_session(
        c.CreateChatSession(project.id.upper(), ChatSessionMode.ANALYSIS, " Why? "), uow
    )

    assert uow.committed
    assert session.project_id == project.id
    assert session.mode is ChatSessionMode.ANALYSIS
    assert session.title == "Why?"
    assert await h.get_chat_session(c.GetChatSession(session.id), uow) == session


async def test_create_chat_session_without_title_gets_one_from_mode(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)

    session = await h.create_chat_session(c.CreateChatSession(project.id, ChatSessionMode.SETUP), uow)

    assert session.title == "setup chat"


async def test_create_chat_session_rejects_missing_mode_and_long_title(
    uow: FakeUnitOfWork,
) -> None:
    project = await new_project(uow)

    with pytest.raises(ValidationFailed) as caught:
        await h.create_chat_session(c.CreateChatSession(project.id, None, "t" * 201), uow)

    assert fields(caught.value) == ["mode", "title"]
    assert not uow.repo.tables.chat_sessions


async def test_create_chat_session_bad_and_unknown_project(uow: FakeUnitOfWork) -> None:
    with pytest.raises(InvalidArgument) as malformed:
        await h.create_chat_session(c.CreateChatSession(MALFORMED_ID, ChatSessionMode.SETUP), uow)
    with pytest.raises(ProjectNotFound):
        await h.create_chat_session(c.CreateChatSession(unknown_id(), ChatSessionMode.SETUP), uow)

    assert malformed.value.reason == "INVALID_ID"
    assert not uow.repo.tables.chat_sessions


async def test_get_chat_session_bad_and_unknown_ids(uow: FakeUnitOfWork) -> None:
    session_id = unknown_id()

    with pytest.raises(InvalidArgument) as malformed:
        await h.get_chat_session(c.GetChatSession(MALFORMED_ID), uow)
    with pytest.raises(ChatSessionNotFound) as missing:
        await h.get_chat_session(c.GetChatSession(session_id), uow)

    assert malformed.value.reason == "INVALID_ID"
    assert fields(malformed.value) == ["chat_session_id"]
    assert missing.value.reason == "CHAT_SESSION_NOT_FOUND"
    assert missing.value.metadata == {"chat_session_id": session_id}


async def test_list_chat_sessions_pages_through_one_project(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)
    other = await new_project(uow, "Other")
    created = [await new_session(uow, project.id) for _ in range(5)]
    await new_session(uow, other.id)
    expected = [s.id for s in sorted(created, key=lambda s: (s.created_at, s.id), reverse=True)]

    seen: list[str] = []
    token = ""
    while True:
        page = await h.list_chat_sessions(c.ListChatSessions(project.id, 2, token), uow)
        seen += [s.id for s in page.items]
        token = page.next_page_token
        if not token:
            break

    assert seen == expected


async def test_list_chat_sessions_token_is_tied_to_its_project(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)
    other = await new_project(uow, "Other")
    for _ in range(2):
        await new_session(uow, project.id)
    page = await h.list_chat_sessions(c.ListChatSessions(project.id, 1), uow)

    with pytest.raises(InvalidArgument) as caught:
        await h.list_chat_sessions(c.ListChatSessions(other.id, 1, page.next_page_token), uow)

    assert caught.value.reason == "INVALID_PAGE_TOKEN"


async def test_list_chat_sessions_bad_and_unknown_project(uow: FakeUnitOfWork) -> None:
    with pytest.raises(InvalidArgument) as malformed:
        await h.list_chat_sessions(c.ListChatSessions(MALFORMED_ID), uow)
    with pytest.raises(ProjectNotFound):
        await h.list_chat_sessions(c.ListChatSessions(unknown_id()), uow)
    with pytest.raises(InvalidArgument) as negative:
        await h.list_chat_sessions(c.ListChatSessions(unknown_id(), page_size=-5), uow)

    assert malformed.value.reason == "INVALID_ID"
    assert fields(negative.value) == ["page_size"]


# ---------------------------------------------------------------- chat messages


async def test_messages_get_consecutive_sequences_and_list_in_order(
    uow: FakeUnitOfWork,
) -> None:
    project = await new_project(uow)
    session = await new_session(uow, project.id)
    roles = [MessageRole.USER, MessageRole.AGENT, MessageRole.SYSTEM]

    sent = [
        await h.create_chat_message(c.CreateChatMessage(session.id, role, f"m{i}", {"i": i}), uow)
        for i, role in enumerate(roles)
    ]
    page = await h.list_chat_messages(c.ListChatMessages(session.id), uow)

    assert [m.sequence for m in sent] == [1, 2, 3]
    assert page.items == sent
    assert [m.role for m in page.items] == roles
    assert page.items[1].metadata == {"i": 1}
    assert page.next_page_token == ""
    stored_session = await h.get_chat_session(c.GetChatSession(session.id), uow)
    assert stored_session.updated_at == sent[-1].created_at


async def test_message_sequences_are_per_session(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)
    first, second = await new_session(uow, project.id), await new_session(uow, project.id)

    await h.create_chat_message(c.CreateChatMessage(first.id, MessageRole.USER, "a"), uow)
    other = await h.create_chat_message(c.CreateChatMessage(second.id, MessageRole.USER, "b"), uow)

    assert other.sequence == 1
    listed = await h.list_chat_messages(c.ListChatMessages(first.id), uow)
    assert [m.content for m in listed.items] == ["a"]


async def test_a_message_with_a_chosen_id_is_created_once(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)
    session = await new_session(uow, project.id)
    chosen = unknown_id()

    first = await h.create_chat_message(
        c.CreateChatMessage(session.id, MessageRole.AGENT, "Run summary", {"run_summary": {"run_id": "r"}}, chosen), uow
    )
    again = await h.create_chat_message(
        c.CreateChatMessage(session.id, MessageRole.AGENT, "Run summary", {}, chosen), uow
    )

    assert first.id == again.id == chosen
    assert again == first
    listed = await h.list_chat_messages(c.ListChatMessages(session.id), uow)
    assert [m.id for m in listed.items] == [chosen]
    message, project_id = await h.get_chat_message(c.GetChatMessage(chosen), uow)
    assert (message, project_id) == (first, project.id)


async def test_a_chosen_id_of_another_session_or_malformed_is_refused(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)
    first, second = await new_session(uow, project.id), await new_session(uow, project.id)
    chosen = unknown_id()
    await h.create_chat_message(c.CreateChatMessage(first.id, MessageRole.AGENT, "a", {}, chosen), uow)

    with pytest.raises(ChatMessageIdTaken):
        await h.create_chat_message(c.CreateChatMessage(second.id, MessageRole.AGENT, "b", {}, chosen), uow)
    with pytest.raises(InvalidArgument) as info:
        await h.create_chat_message(c.CreateChatMessage(first.id, MessageRole.AGENT, "b", {}, MALFORMED_ID), uow)
    assert fields(info.value) == ["chat_message_id"]
    with pytest.raises(ChatMessageNotFound):
        await h.get_chat_message(c.GetChatMessage(unknown_id()), uow)


async def test_list_chat_messages_pages(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)
    session = await new_session(uow, project.id)
    for i in range(5):
        await h.create_chat_message(c.CreateChatMessage(session.id, MessageRole.USER, f"m{i}"), uow)

    sequences: list[int] = []
    token = ""
    while True:
        page = await h.list_chat_messages(c.ListChatMessages(session.id, 2, token), uow)
        sequences += [m.sequence for m in page.items]
        token = page.next_page_token
        if not token:
            break

    assert sequences == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("content", ["", "  \n\t "])
async def test_create_chat_message_rejects_empty_content(uow: FakeUnitOfWork, content: str) -> None:
    project = await new_project(uow)
    session = await new_session(uow, project.id)

    with pytest.raises(ValidationFailed) as caught:
        await h.create_chat_message(c.CreateChatMessage(session.id, MessageRole.USER, content), uow)

    assert fields(caught.value) == ["content"]
    assert uow.repo.tables.message_counts[session.id] == 0


async def test_create_chat_message_accepts_content_at_the_limit(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)
    session = await new_session(uow, project.id)

    message = await h.create_chat_message(
        c.CreateChatMessage(session.id, MessageRole.USER, "x" * MAX_MESSAGE_CONTENT), uow
    )

    assert len(message.content) == 100_000


async def test_create_chat_message_rejects_oversized_content(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)
    session = await new_session(uow, project.id)

    with pytest.raises(ValidationFailed) as caught:
        await h.create_chat_message(
            c.CreateChatMessage(session.id, MessageRole.USER, "x" * (MAX_MESSAGE_CONTENT + 1)),
            uow,
        )

    assert fields(caught.value) == ["content"]
    assert uow.repo.tables.chat_messages == []


async def test_create_chat_message_rejects_oversized_metadata(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)
    session = await new_session(uow, project.id)
    metadata = {"blob": "x" * MAX_METADATA_BYTES}

    with pytest.raises(ValidationFailed) as caught:
        await h.create_chat_message(c.CreateChatMessage(session.id, MessageRole.USER, "hi", metadata), uow)

    assert fields(caught.value) == ["metadata"]
    assert uow.repo.tables.chat_messages == []


async def test_create_chat_message_reports_every_violation(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)
    session = await new_session(uow, project.id)

    with pytest.raises(ValidationFailed) as caught:
        await h.create_chat_message(c.CreateChatMessage(session.id, None, "", {"blob": "x" * MAX_METADATA_BYTES}), uow)

    assert fields(caught.value) == ["role", "content", "metadata"]


async def test_create_chat_message_bad_and_unknown_session(uow: FakeUnitOfWork) -> None:
    with pytest.raises(InvalidArgument) as malformed:
        await h.create_chat_message(c.CreateChatMessage(MALFORMED_ID, MessageRole.USER, "hi"), uow)
    with pytest.raises(ChatSessionNotFound):
        await h.create_chat_message(c.CreateChatMessage(unknown_id(), MessageRole.USER, "hi"), uow)

    assert malformed.value.reason == "INVALID_ID"
    assert not uow.committed


async def test_list_chat_messages_bad_and_unknown_session(uow: FakeUnitOfWork) -> None:
    with pytest.raises(InvalidArgument) as malformed:
        await h.list_chat_messages(c.ListChatMessages(MALFORMED_ID), uow)
    with pytest.raises(ChatSessionNotFound):
        await h.list_chat_messages(c.ListChatMessages(unknown_id()), uow)

    assert malformed.value.reason == "INVALID_ID"


async def test_list_chat_messages_rejects_token_of_another_session(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)
    first, second = await new_session(uow, project.id), await new_session(uow, project.id)
    for _ in range(2):
        await h.create_chat_message(c.CreateChatMessage(first.id, MessageRole.USER, "m"), uow)
    page = await h.list_chat_messages(c.ListChatMessages(first.id, 1), uow)

    with pytest.raises(InvalidArgument) as caught:
        await h.list_chat_messages(c.ListChatMessages(second.id, 1, page.next_page_token), uow)

    assert caught.value.reason == "INVALID_PAGE_TOKEN"


async def test_list_chat_messages_rejects_forged_token_with_bad_sequence(
    uow: FakeUnitOfWork,
) -> None:
    project = await new_project(uow)
    session = await new_session(uow, project.id)
    token = forged_token(f"chat_messages:{session.id}", "three")

    with pytest.raises(InvalidArgument) as caught:
        await h.list_chat_messages(c.ListChatMessages(session.id, page_token=token), uow)

    assert caught.value.reason == "INVALID_PAGE_TOKEN"


# ---------------------------------------------------------------- ProblemSpec

CONSTRAINTS = (Constraint("budget", "stay under 1M", 100), Constraint("noise", "", 30))
GOALS = (Goal("carry 10t trucks"),)


def full_spec(project_id: str, **changes: Any) -> c.UpdateProblemSpec:
    cmd = c.UpdateProblemSpec(
        project_id,
        constraints=CONSTRAINTS,
        goals=GOALS,
        resolution=Resolution.FINE,
        mode=RunMode.SEEDED,
        allow_missing=True,
        actor=Actor(ActorKind.ARCHITECT, "arch-1"),
        reason="first draft",
    )
    return replace(cmd, **changes)


async def test_get_problem_spec_before_create_is_not_found(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)

    with pytest.raises(ProblemSpecNotFound) as caught:
        await h.get_problem_spec(c.GetProblemSpec(project.id), uow)

    assert caught.value.reason == "PROBLEM_SPEC_NOT_FOUND"


async def test_get_problem_spec_bad_and_unknown_project(uow: FakeUnitOfWork) -> None:
    with pytest.raises(InvalidArgument) as malformed:
        await h.get_problem_spec(c.GetProblemSpec(MALFORMED_ID), uow)
    with pytest.raises(ProjectNotFound):
        await h.get_problem_spec(c.GetProblemSpec(unknown_id()), uow)

    assert malformed.value.reason == "INVALID_ID"


async def test_update_problem_spec_without_allow_missing_is_not_found(
    uow: FakeUnitOfWork,
) -> None:
    project = await new_project(uow)

    with pytest.raises(ProblemSpecNotFound):
        await h.update_problem_spec(full_spec(project.id, allow_missing=False), uow)

    assert not uow.committed
    assert uow.repo.tables.problem_specs == {}


async def test_update_problem_spec_bad_and_unknown_project(uow: FakeUnitOfWork) -> None:
    with pytest.raises(InvalidArgument) as malformed:
        await h.update_problem_spec(full_spec(MALFORMED_ID), uow)
    with pytest.raises(ProjectNotFound):
        await h.update_problem_spec(full_spec(unknown_id()), uow)

    assert malformed.value.reason == "INVALID_ID"


async def test_update_problem_spec_with_allow_missing_creates_version_1(
    uow: FakeUnitOfWork,
) -> None:
    project = await new_project(uow)

    spec = await h.update_problem_spec(full_spec(project.id), uow)

    assert uow.committed
    assert spec.version == 1
    assert spec.constraints == CONSTRAINTS
    assert spec.goals == GOALS
    assert (spec.resolution, spec.mode) == (Resolution.FINE, RunMode.SEEDED)
    assert spec.constraints[0].is_hard
    assert not spec.constraints[1].is_hard
    assert await h.get_problem_spec(c.GetProblemSpec(project.id), uow) == spec
    page = await h.list_provenance(c.ListProvenance(project.id), "problem_spec", uow)
    [entry] = page.items
    assert entry.version == 1
    assert entry.action is ProvenanceAction.CREATED
    assert entry.action.value == "created"
    assert entry.changed_fields == ("constraints", "goals", "resolution", "mode")
    assert entry.changes == spec.field_values()
    assert entry.actor == Actor(ActorKind.ARCHITECT, "arch-1")
    assert entry.reason == "first draft"
    assert entry.project_id == project.id


async def test_create_problem_spec_takes_defaults(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)

    spec = await h.update_problem_spec(c.UpdateProblemSpec(project.id, allow_missing=True), uow)

    assert spec.version == 1
    assert (spec.constraints, spec.goals) == ((), ())
    assert (spec.resolution, spec.mode) == (Resolution.MEDIUM, RunMode.FULL_SEARCH)


async def test_update_problem_spec_goals_only(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)
    first = await h.update_problem_spec(full_spec(project.id), uow)
    new_goals = (Goal("carry 40t trucks"), Goal("last 100 years"))

    second = await h.update_problem_spec(
        c.UpdateProblemSpec(project.id, goals=new_goals, update_mask=("goals",), reason="heavier traffic"),
        uow,
    )

    assert second.version == 2
    assert second.goals == new_goals
    assert second.constraints == first.constraints
    assert (second.resolution, second.mode) == (first.resolution, first.mode)
    assert second.created_at == first.created_at
    page = await h.list_provenance(c.ListProvenance(project.id), "problem_spec", uow)
    assert [e.version for e in page.items] == [1, 2]
    latest = page.items[-1]
    assert latest.action is ProvenanceAction.UPDATED
    assert latest.changed_fields == ("goals",)
    assert latest.changes == {"goals": [{"description": g.description} for g in new_goals]}
    assert latest.reason == "heavier traffic"
    assert latest.actor == Actor()


async def test_update_problem_spec_records_only_fields_that_changed(
    uow: FakeUnitOfWork,
) -> None:
    project = await new_project(uow)
    await h.update_problem_spec(full_spec(project.id), uow)

    spec = await h.update_problem_spec(full_spec(project.id, mode=RunMode.EVAL_ONLY), uow)

    assert spec.version == 2
    page = await h.list_provenance(c.ListProvenance(project.id), "problem_spec", uow)
    assert page.items[-1].changed_fields == ("mode",)
    assert page.items[-1].changes == {"mode": "eval_only"}


async def test_no_op_problem_spec_update_changes_nothing(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)
    first = await h.update_problem_spec(full_spec(project.id), uow)

    again = await h.update_problem_spec(full_spec(project.id), uow)
    masked = await h.update_problem_spec(
        c.UpdateProblemSpec(project.id, resolution=None, update_mask=("resolution",)), uow
    )

    assert again == masked == first
    assert not uow.committed
    assert await h.get_problem_spec(c.GetProblemSpec(project.id), uow) == first
    page = await h.list_provenance(c.ListProvenance(project.id), "problem_spec", uow)
    assert len(page.items) == 1


@pytest.mark.parametrize("weight", [-1, 101])
async def test_update_problem_spec_rejects_weight_out_of_range(uow: FakeUnitOfWork, weight: int) -> None:
    project = await new_project(uow)

    with pytest.raises(ValidationFailed) as caught:
        await h.update_problem_spec(full_spec(project.id, constraints=(Constraint("budget", "", weight),)), uow)

    assert fields(caught.value) == ["constraints[0].weight"]
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert uow.repo.tables.problem_specs == {}


@pytest.mark.parametrize("weight", [0, 100])
async def test_update_problem_spec_accepts_weight_bounds(uow: FakeUnitOfWork, weight: int) -> None:
    project = await new_project(uow)

    spec = await h.update_problem_spec(full_spec(project.id, constraints=(Constraint("budget", "", weight),)), uow)

    assert spec.constraints[0].weight == weight


async def test_update_problem_spec_rejects_duplicate_constraint_names(
    uow: FakeUnitOfWork,
) -> None:
    project = await new_project(uow)
    constraints = (Constraint("Budget", "", 10), Constraint(" budget ", "", 20))

    with pytest.raises(ValidationFailed) as caught:
        await h.update_problem_spec(full_spec(project.id, constraints=constraints), uow)

    assert fields(caught.value) == ["constraints[1].name"]
    assert "duplicate" in caught.value.violations[0].description


async def test_update_problem_spec_reports_all_violations_together(
    uow: FakeUnitOfWork,
) -> None:
    project = await new_project(uow)
    constraints = (Constraint("a", "", -1), Constraint("b", "", 101), Constraint("", "", 5))

    with pytest.raises(ValidationFailed) as caught:
        await h.update_problem_spec(
            full_spec(project.id, constraints=constraints, goals=(Goal(" "),), reason="r" * 2001),
            uow,
        )

    assert fields(caught.value) == [
        "constraints[0].weight",
        "constraints[1].weight",
        "constraints[2].name",
        "goals[0].description",
        "reason",
    ]


async def test_update_problem_spec_validates_only_masked_fields(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)
    await h.update_problem_spec(full_spec(project.id), uow)

    spec = await h.update_problem_spec(
        c.UpdateProblemSpec(
            project.id,
            constraints=(Constraint("x", "", 500),),
            goals=(Goal("new"),),
            update_mask=("goals",),
        ),
        uow,
    )

    assert spec.constraints == CONSTRAINTS
    assert spec.goals == (Goal("new"),)


async def test_update_problem_spec_rejects_unknown_mask_path(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)

    with pytest.raises(InvalidArgument) as caught:
        await h.update_problem_spec(full_spec(project.id, update_mask=("goals", "budget")), uow)

    assert caught.value.reason == "INVALID_UPDATE_MASK"
    assert fields(caught.value) == ["update_mask"]


async def test_update_problem_spec_version_mismatch_is_conflict(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)
    first = await h.update_problem_spec(full_spec(project.id), uow)

    with pytest.raises(VersionConflict) as caught:
        await h.update_problem_spec(full_spec(project.id, goals=(Goal("other"),), expected_version=5), uow)

    assert caught.value.reason == "VERSION_MISMATCH"
    assert caught.value.code == grpc.StatusCode.ABORTED
    assert caught.value.metadata == {"expected_version": "5", "actual_version": "1"}
    assert await h.get_problem_spec(c.GetProblemSpec(project.id), uow) == first


async def test_update_problem_spec_matching_version_succeeds(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)
    await h.update_problem_spec(full_spec(project.id), uow)

    spec = await h.update_problem_spec(full_spec(project.id, goals=(Goal("other"),), expected_version=1), uow)

    assert spec.version == 2


async def test_create_problem_spec_with_expected_version_is_conflict(
    uow: FakeUnitOfWork,
) -> None:
    project = await new_project(uow)

    with pytest.raises(VersionConflict):
        await h.update_problem_spec(full_spec(project.id, expected_version=1), uow)

    assert uow.repo.tables.problem_specs == {}


# ---------------------------------------------------------------- WorldModel

ACTORS = [{"name": "city council", "goal": "low cost"}]
MECHANISMS = [{"name": "tendering"}]


async def test_get_world_model_before_create_is_not_found(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)

    with pytest.raises(WorldModelNotFound) as caught:
        await h.get_world_model(c.GetWorldModel(project.id), uow)
    with pytest.raises(ProjectNotFound):
        await h.get_world_model(c.GetWorldModel(unknown_id()), uow)
    with pytest.raises(InvalidArgument) as malformed:
        await h.get_world_model(c.GetWorldModel(MALFORMED_ID), uow)

    assert caught.value.reason == "WORLD_MODEL_NOT_FOUND"
    assert malformed.value.reason == "INVALID_ID"


async def test_update_world_model_without_allow_missing_is_not_found(
    uow: FakeUnitOfWork,
) -> None:
    project = await new_project(uow)

    with pytest.raises(WorldModelNotFound):
        await h.update_world_model(c.UpdateWorldModel(project.id, {"actors": ACTORS}), uow)
    with pytest.raises(ProjectNotFound):
        await h.update_world_model(c.UpdateWorldModel(unknown_id(), {}, allow_missing=True), uow)

    assert uow.repo.tables.world_models == {}


async def test_create_world_model_fills_all_six_sections(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)

    model = await h.update_world_model(
        c.UpdateWorldModel(project.id, {"actors": ACTORS}, allow_missing=True, reason="start"),
        uow,
    )

    assert uow.committed
    assert model.version == 1
    assert set(model.model_data) == set(WORLD_MODEL_SECTIONS)
    assert len(WORLD_MODEL_SECTIONS) == 6
    assert model.model_data["actors"] == ACTORS
    assert all(model.model_data[s] == [] for s in WORLD_MODEL_SECTIONS if s != "actors")
    assert await h.get_world_model(c.GetWorldModel(project.id), uow) == model
    page = await h.list_provenance(c.ListProvenance(project.id), "world_model", uow)
    [entry] = page.items
    assert entry.action is ProvenanceAction.CREATED
    assert entry.changed_fields == tuple(f"model_data.{s}" for s in WORLD_MODEL_SECTIONS)
    assert entry.changes == model.model_data
    assert entry.reason == "start"


async def test_update_world_model_rejects_unknown_and_non_list_sections(
    uow: FakeUnitOfWork,
) -> None:
    project = await new_project(uow)
    data = {"actors": "the council", "villains": [], "mechanisms": []}

    with pytest.raises(ValidationFailed) as caught:
        await h.update_world_model(c.UpdateWorldModel(project.id, data, allow_missing=True), uow)

    assert fields(caught.value) == ["model_data.actors", "model_data.villains"]
    assert uow.repo.tables.world_models == {}


async def test_update_world_model_rejects_unknown_mask_path(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)

    with pytest.raises(InvalidArgument) as caught:
        await h.update_world_model(
            c.UpdateWorldModel(project.id, {}, update_mask=("model_data.villains",), allow_missing=True),
            uow,
        )

    assert caught.value.reason == "INVALID_UPDATE_MASK"


async def test_update_world_model_one_section_keeps_the_others(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)
    first = await h.update_world_model(
        c.UpdateWorldModel(project.id, {"actors": ACTORS, "mechanisms": MECHANISMS}, allow_missing=True),
        uow,
    )
    new_actors = [*ACTORS, {"name": "ferry company"}]

    second = await h.update_world_model(
        c.UpdateWorldModel(
            project.id,
            {"actors": new_actors, "mechanisms": []},
            update_mask=("model_data.actors",),
            actor=Actor(ActorKind.SYSTEM, "importer"),
        ),
        uow,
    )

    assert second.version == 2
    assert second.created_at == first.created_at
    assert second.model_data["actors"] == new_actors
    assert second.model_data["mechanisms"] == MECHANISMS
    assert await h.get_world_model(c.GetWorldModel(project.id), uow) == second
    page = await h.list_provenance(c.ListProvenance(project.id), "world_model", uow)
    latest = page.items[-1]
    assert latest.action is ProvenanceAction.UPDATED
    assert latest.changed_fields == ("model_data.actors",)
    assert latest.changes == {"actors": new_actors}
    assert latest.actor == Actor(ActorKind.SYSTEM, "importer")


async def test_update_world_model_whole_replaces_every_section(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)
    await h.update_world_model(
        c.UpdateWorldModel(project.id, {"actors": ACTORS, "mechanisms": MECHANISMS}, allow_missing=True),
        uow,
    )

    model = await h.update_world_model(c.UpdateWorldModel(project.id, {"resources": [{"name": "steel"}]}), uow)

    assert model.model_data["actors"] == []
    assert model.model_data["mechanisms"] == []
    assert model.model_data["resources"] == [{"name": "steel"}]
    page = await h.list_provenance(c.ListProvenance(project.id), "world_model", uow)
    assert page.items[-1].changed_fields == (
        "model_data.actors",
        "model_data.mechanisms",
        "model_data.resources",
    )


async def test_no_op_world_model_update_changes_nothing(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)
    first = await h.update_world_model(c.UpdateWorldModel(project.id, {"actors": ACTORS}, allow_missing=True), uow)

    again = await h.update_world_model(c.UpdateWorldModel(project.id, {"actors": ACTORS}), uow)

    assert again == first
    assert not uow.committed
    page = await h.list_provenance(c.ListProvenance(project.id), "world_model", uow)
    assert len(page.items) == 1


async def test_update_world_model_version_mismatch_is_conflict(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)
    first = await h.update_world_model(c.UpdateWorldModel(project.id, {"actors": ACTORS}, allow_missing=True), uow)

    with pytest.raises(VersionConflict) as caught:
        await h.update_world_model(c.UpdateWorldModel(project.id, {"actors": []}, expected_version=2), uow)

    assert caught.value.code == grpc.StatusCode.ABORTED
    assert caught.value.reason == "VERSION_MISMATCH"
    assert await h.get_world_model(c.GetWorldModel(project.id), uow) == first


# ---------------------------------------------------------------- provenance


async def test_list_provenance_pages_by_version(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)
    await h.update_world_model(c.UpdateWorldModel(project.id, {}, allow_missing=True), uow)
    for i in range(4):
        await h.update_world_model(c.UpdateWorldModel(project.id, {"actors": [{"n": i}]}), uow)
    await h.update_problem_spec(full_spec(project.id), uow)

    versions: list[int] = []
    sizes: list[int] = []
    token = ""
    while True:
        page = await h.list_provenance(c.ListProvenance(project.id, 2, token), "world_model", uow)
        versions += [e.version for e in page.items]
        sizes.append(len(page.items))
        token = page.next_page_token
        if not token:
            break

    assert versions == [1, 2, 3, 4, 5]
    assert sizes == [2, 2, 1]


async def test_list_provenance_token_is_tied_to_subject(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)
    await h.update_problem_spec(full_spec(project.id), uow)
    await h.update_problem_spec(full_spec(project.id, goals=()), uow)
    page = await h.list_provenance(c.ListProvenance(project.id, 1), "problem_spec", uow)
    assert page.next_page_token

    with pytest.raises(InvalidArgument) as caught:
        await h.list_provenance(c.ListProvenance(project.id, 1, page.next_page_token), "world_model", uow)

    assert caught.value.reason == "INVALID_PAGE_TOKEN"


async def test_list_provenance_bad_and_unknown_project(uow: FakeUnitOfWork) -> None:
    with pytest.raises(InvalidArgument) as malformed:
        await h.list_provenance(c.ListProvenance(MALFORMED_ID), "problem_spec", uow)
    with pytest.raises(ProjectNotFound):
        await h.list_provenance(c.ListProvenance(unknown_id()), "problem_spec", uow)
    with pytest.raises(InvalidArgument) as negative:
        await h.list_provenance(c.ListProvenance(unknown_id(), -1), "problem_spec", uow)

    assert malformed.value.reason == "INVALID_ID"
    assert fields(negative.value) == ["page_size"]


async def test_list_provenance_before_any_change_is_empty(uow: FakeUnitOfWork) -> None:
    project = await new_project(uow)

    page = await h.list_provenance(c.ListProvenance(project.id), "world_model", uow)

    assert page.items == []
    assert page.next_page_token == ""
