"""Telling a database that is away from a statement that is wrong, and riding out the first."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError

from crucible_common.database import database_unavailable, while_database_unavailable
from crucible_common.errors import DatabaseUnavailable


class PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    "exc",
    [
        DBAPIError("SELECT 1", {}, PgError("57P03")),  # cannot connect now: starting or shutting down
        DBAPIError("SELECT 1", {}, PgError("57P01")),  # terminated by an administrator (fast shutdown)
        DBAPIError("SELECT 1", {}, PgError("08006")),  # connection failure
        DBAPIError("SELECT 1", {}, OSError("no such file or directory")),
        InterfaceError("SELECT 1", {}, Exception("connection is closed")),
        DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True),
        DatabaseUnavailable("the database is unavailable: [Errno 2] No such file or directory"),
    ],
)
def test_a_database_that_is_away(exc: Exception) -> None:
    assert database_unavailable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        IntegrityError("INSERT", {}, PgError("23505")),
        DBAPIError("SELECT 1", {}, PgError("42P01")),
        ValueError("a bug"),
        # A sandbox's, a workspace's: not the database's.
        OSError(2, "No such file or directory"),
    ],
)
def test_a_statement_that_is_wrong(exc: Exception) -> None:
    assert not database_unavailable(exc)


async def test_a_write_waits_for_the_database_and_a_wrong_one_fails_at_once() -> None:
    attempts: list[int] = []

    async def write() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise DBAPIError("INSERT", {}, PgError("57P03"))
        return "stored"

    assert await while_database_unavailable(write, what="test") == "stored"
    assert len(attempts) == 3

    async def wrong() -> None:
        attempts.append(1)
        raise IntegrityError("INSERT", {}, PgError("23505"))

    attempts.clear()
    with pytest.raises(IntegrityError):
        await while_database_unavailable(wrong, what="test")
    assert len(attempts) == 1


async def test_a_database_away_for_too_long_fails_the_write() -> None:
    async def write() -> None:
        raise DBAPIError("INSERT", {}, PgError("08006"))

    with pytest.raises(DBAPIError):
        await while_database_unavailable(write, what="test", seconds=0.3)
