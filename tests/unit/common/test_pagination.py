"""Opaque page tokens: they round-trip, and belong to one listing only."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest

from crucible_common.errors import InvalidArgument
from crucible_common.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Cursor,
    SortKey,
    next_page_token,
    page_request,
)

ID = "3f1d2f0e-0000-4000-8000-000000000000"


def test_token_round_trips_its_cursor() -> None:
    cursor = Cursor("42", "3f1d2f0e-0000-4000-8000-000000000000")

    token = next_page_token(cursor, scope="chat_messages:abc")
    page = page_request(10, token, scope="chat_messages:abc", key="number")

    assert page.size == 10
    assert page.after == cursor
    assert "=" not in token


def test_time_cursor_round_trips_an_aware_datetime() -> None:
    at = datetime(2025, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)

    token = next_page_token(Cursor.from_time(at, ID), scope="projects")
    page = page_request(0, token, scope="projects")

    assert page.after is not None
    assert page.after.time == at
    assert page.after.id == ID


def test_no_cursor_gives_empty_token() -> None:
    assert next_page_token(None, scope="projects") == ""


def test_empty_token_is_the_first_page() -> None:
    assert page_request(5, "", scope="projects").after is None


@pytest.mark.parametrize(
    ("requested", "size"),
    [(0, DEFAULT_PAGE_SIZE), (1, 1), (MAX_PAGE_SIZE, MAX_PAGE_SIZE), (MAX_PAGE_SIZE + 1, 1000)],
)
def test_page_size_defaults_and_is_capped(requested: int, size: int) -> None:
    assert page_request(requested, "", scope="projects").size == size


def test_negative_page_size_is_invalid() -> None:
    with pytest.raises(InvalidArgument) as caught:
        page_request(-1, "", scope="projects")

    assert [v.field for v in caught.value.violations] == ["page_size"]


def test_token_of_another_scope_is_invalid() -> None:
    token = next_page_token(Cursor("1", "a"), scope="chat_messages:one")

    with pytest.raises(InvalidArgument) as caught:
        page_request(10, token, scope="chat_messages:two")

    assert caught.value.reason == "INVALID_PAGE_TOKEN"
    assert [v.field for v in caught.value.violations] == ["page_token"]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "%%%",
        "é",
        _b64(b"not json"),
        _b64(b"\xff\xfe\x00"),
        _b64(b"[]"),
        _b64(b"null"),
        _b64(b"7"),
        _b64(b'"s"'),
        _b64(b'{"s":"projects"}'),
        _b64(b'{"s":"projects","k":"1"}'),
    ],
)
def test_malformed_token_is_invalid(token: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        page_request(10, token, scope="projects")

    assert caught.value.reason == "INVALID_PAGE_TOKEN"


def test_split_page_keeps_the_page_and_points_past_its_last_item() -> None:
    from dataclasses import dataclass

    from crucible_common.pagination import split_page, time_cursor

    @dataclass(frozen=True)
    class Row:
        id: str
        created_at: datetime

    at = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [Row(str(uuid.UUID(int=i)), at) for i in range(4)]  # the repository fetched size + 1
    page = page_request(3, "", scope="rows")
    items, token = split_page(rows, page, time_cursor, scope="rows")
    assert items == rows[:3]
    assert page_request(3, token, scope="rows").after == Cursor(at.isoformat(), rows[2].id)
    last, token = split_page(rows[:2], page, time_cursor, scope="rows")
    assert (last, token) == (rows[:2], "")


@pytest.mark.parametrize(
    ("cursor", "key"),
    [
        # What the database would refuse (and a refusal reads as the database failing, a 503):
        # the tie-break id of a timestamp key is a UUID column, and numbers have their column's range.
        (Cursor("2024-01-01T00:00:00+00:00", "x"), "time"),
        (Cursor("2024-01-01T00:00:00+00:00", "{" + ID + "}"), "time"),
        (Cursor("2024-01-01T00:00:00+00:00", "urn:uuid:" + ID), "time"),
        (Cursor(str(2**63), ID), "number"),
        (Cursor(str(2**31), ID), "position"),
        (Cursor(str(-(2**31) - 1), ID), "position"),
    ],
)
def test_a_forged_sort_key_outside_its_column_is_invalid(cursor: Cursor, key: SortKey) -> None:
    token = next_page_token(cursor, scope="s")

    with pytest.raises(InvalidArgument) as caught:
        page_request(10, token, scope="s", key=key)

    assert caught.value.reason == "INVALID_PAGE_TOKEN"


@pytest.mark.parametrize(
    ("cursor", "key"), [(Cursor(str(2**63 - 1), ID), "number"), (Cursor(str(-(2**31)), ID), "position")]
)
def test_sort_keys_at_their_columns_bounds_are_valid(cursor: Cursor, key: SortKey) -> None:
    assert page_request(10, next_page_token(cursor, scope="s"), scope="s", key=key).after == cursor
