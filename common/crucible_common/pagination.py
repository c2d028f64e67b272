"""Opaque keyset page tokens for every paginated List (AIP-158)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, TypeVar

from crucible_common.errors import FieldViolation, InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class PageRequest:
    size: int
    after: Cursor | None


@dataclass(frozen=True)
class Cursor:
    """The sort key of the last item of a page: a timestamp or a sequence, and an id."""

    key: str
    id: str

    @classmethod
    def from_time(cls, at: datetime, id_: str) -> Cursor:
        return cls(at.isoformat(), id_)

    @property
    def time(self) -> datetime:
        return datetime.fromisoformat(self.key)


# What each kind of sort key must parse as: a timestamp (and the item's UUID, the tie-break), a
# number of a 64-bit column, a position of a 32-bit one, or any text.
SortKey = Literal["time", "number", "position", "text"]
_NUMBER_BOUNDS = {"number": 2**63, "position": 2**31}


def page_request(page_size: int, page_token: str, *, scope: str, key: SortKey = "time") -> PageRequest:
    """Validate a List request's page size and token.

    ``scope`` ties a token to its listing; ``key`` says what its sort key must parse as, so a
    forged token is a bad request rather than a value the database refuses further down (which
    reads as the database failing, not the request).
    """
    if page_size < 0:
        raise InvalidArgument(
            "page_size must not be negative",
            violations=[FieldViolation("page_size", "must be >= 0")],
        )
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    if not page_token:
        return PageRequest(size, None)
    try:
        data = json.loads(base64.urlsafe_b64decode(page_token.encode() + b"=" * (-len(page_token) % 4)))
        if data["s"] != scope:
            raise ValueError("token belongs to another listing")
        cursor = Cursor(str(data["k"]), str(data["i"]))
        if key == "time":
            datetime.fromisoformat(cursor.key)
            # The spelling the database gives and takes (uuid.UUID also reads "{…}" and "urn:uuid:…").
            if str(uuid.UUID(cursor.id)) != cursor.id.lower():
                raise ValueError("not a UUID as the database spells it")
        elif key in _NUMBER_BOUNDS:
            bound = _NUMBER_BOUNDS[key]
            if not -bound <= int(cursor.key) < bound:
                raise ValueError("sort key out of its column's range")
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument(
            "page_token is not valid for this listing",
            violations=[FieldViolation("page_token", "not a token from this listing")],
            reason="INVALID_PAGE_TOKEN",
        ) from exc
    return PageRequest(size, cursor)


def next_page_token(cursor: Cursor | None, *, scope: str) -> str:
    if cursor is None:
        return ""
    raw = json.dumps({"s": scope, "k": cursor.key, "i": cursor.id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


T = TypeVar("T")


class Timestamped(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def created_at(self) -> datetime: ...


def time_cursor(item: Timestamped) -> Cursor:
    return Cursor.from_time(item.created_at, item.id)


def split_page(
    rows: Sequence[T], page: PageRequest, cursor_of: Callable[[T], Cursor], *, scope: str
) -> tuple[list[T], str]:
    """The page's items and the next page's token.

    Repositories fetch ``page.size + 1`` rows: the extra one only says that another page follows.
    """
    items = list(rows[: page.size])
    cursor = cursor_of(items[-1]) if len(rows) > page.size else None
    return items, next_page_token(cursor, scope=scope)
