"""Opaque page tokens: they round-trip, and belong to one listing only."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from crucible_common.errors import InvalidArgument
from crucible_common.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Cursor,
    next_page_token,
    page_request,
)


def test_token_round_trips_its_cursor() -> None:
    cursor = Cursor("42", "3f1d2f0e-0000-4000-8000-000000000000")

    token = next_page_token(cursor, scope="chat_messages:abc")
    page = page_request(10, token, scope="chat_messages:abc", key="number")

    assert page.size == 10
    assert page.after == cursor
    assert "=" not in token


def test_time_cursor_round_trips_an_aware_datetime() -> None:
    at = datetime(2025, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)

    token = next_page_token(Cursor.from_time(at, "x"), scope="projects")
    page = page_request(0, token, scope="projects")

    assert page.after is not None
    assert page.after.time == at
    assert page.after.id == "x"


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
    rows = [Row(str(i), at) for i in range(4)]  # the repository fetched size + 1
    page = page_request(3, "", scope="rows")
    items, token = split_page(rows, page, time_cursor, scope="rows")
    assert items == rows[:3]
    assert page_request(3, token, scope="rows").after == Cursor(at.isoformat(), "2")
    last, token = split_page(rows[:2], page, time_cursor, scope="rows")
    assert (last, token) == (rows[:2], "")
