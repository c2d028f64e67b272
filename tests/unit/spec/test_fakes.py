"""The fakes keep the SQL repository's semantics, so handler tests on them mean something."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from crucible_spec.domain.model import ChatSession, ChatSessionMode, Project
from tests.unit.spec.fakes import FakeIntegrityError, FakeSpecRepository, FakeUnitOfWork

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def project(at: datetime, id_: str | None = None) -> Project:
    return Project(id_ or str(uuid.uuid4()), "p", "", at, at)


async def test_projects_are_newest_first_ties_broken_by_id_descending() -> None:
    repo = FakeSpecRepository()
    same_time = [project(T0, f"0000000{i}-0000-0000-0000-000000000000") for i in range(3)]
    newest = project(T0 + timedelta(seconds=1))
    for p in [*same_time, newest]:
        await repo.add_project(p)

    rows = await repo.list_projects(10, None)
    after_first_tie = await repo.list_projects(10, (T0, same_time[2].id))

    assert [p.id for p in rows] == [newest.id, *[p.id for p in reversed(same_time)]]
    assert [p.id for p in after_first_tie] == [same_time[1].id, same_time[0].id]
    assert len(await repo.list_projects(2, None)) == 2


async def test_next_message_sequence_counts_per_session_and_none_when_unknown() -> None:
    repo = FakeSpecRepository()
    owner = project(T0)
    await repo.add_project(owner)
    session = ChatSession(str(uuid.uuid4()), owner.id, "s", ChatSessionMode.SETUP, T0, T0)
    await repo.add_chat_session(session)
    later = T0 + timedelta(minutes=1)

    assert [await repo.next_message_sequence(session.id, later) for _ in range(2)] == [1, 2]
    assert await repo.next_message_sequence(str(uuid.uuid4()), later) is None
    stored = await repo.get_chat_session(session.id)
    assert stored is not None
    assert stored.updated_at == later


async def test_foreign_keys_are_enforced() -> None:
    repo = FakeSpecRepository()
    orphan = ChatSession(str(uuid.uuid4()), str(uuid.uuid4()), "s", ChatSessionMode.SETUP, T0, T0)

    with pytest.raises(FakeIntegrityError):
        await repo.add_chat_session(orphan)


async def test_leaving_without_commit_discards_changes() -> None:
    uow = FakeUnitOfWork()

    async with uow:
        await uow.repo.add_project(project(T0))

    assert not uow.committed
    assert await uow.repo.list_projects(10, None) == []


async def test_commit_keeps_changes_but_later_writes_roll_back() -> None:
    uow = FakeUnitOfWork()
    kept, dropped = project(T0), project(T0)

    async with uow:
        await uow.repo.add_project(kept)
        await uow.commit()
        await uow.repo.add_project(dropped)

    assert uow.committed
    assert await uow.repo.list_projects(10, None) == [kept]


async def test_an_error_inside_the_block_rolls_back() -> None:
    uow = FakeUnitOfWork()

    async def fail_midway() -> None:
        async with uow:
            await uow.repo.add_project(project(T0))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await fail_midway()

    assert await uow.repo.list_projects(10, None) == []
