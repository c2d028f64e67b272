"""Resource ids: UUIDs; a malformed one is a bad request, not a missing resource."""

from __future__ import annotations

import uuid

from crucible_common.errors import FieldViolation, InvalidArgument


def parse_id(value: str, field: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise InvalidArgument(
            f"{field} must be a UUID, got {value!r}"[:300],
            violations=[FieldViolation(field, "must be a UUID")],
            reason="INVALID_ID",
        ) from exc
