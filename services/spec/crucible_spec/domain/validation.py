"""Limits and checks on what users may store; every violation is reported at once."""

from __future__ import annotations

import json
from typing import Any

from crucible_common.errors import FieldViolation, ValidationFailed
from crucible_common.ids import parse_id
from crucible_spec.domain.model import WORLD_MODEL_SECTIONS, Constraint, Goal

MAX_TITLE = 200
MAX_DESCRIPTION = 10_000
MAX_MESSAGE_CONTENT = 100_000
MAX_METADATA_BYTES = 64 * 1024
MAX_CONSTRAINTS = 200
MAX_GOALS = 100
MAX_CONSTRAINT_NAME = 200
MAX_TEXT_ITEM = 4_000
MAX_WORLD_MODEL_BYTES = 1024 * 1024
MAX_SECTION_ITEMS = 1_000
MAX_REASON = 2_000
MAX_TASK = 20_000
MAX_ANSWER = 10_000
MAX_ANSWERS = 100
MIN_QUESTIONS = 1
MAX_QUESTIONS = 10
DEFAULT_MAX_QUESTIONS = 5

__all__ = ["parse_id"]


class Violations:
    """Collects field violations; ``raise_if_any`` raises them together."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def text(self, field: str, value: str, *, max_len: int, required: bool = False) -> None:
        if required and not value.strip():
            self.add(field, "must not be empty")
        if len(value) > max_len:
            self.add(field, f"must be at most {max_len} characters (got {len(value)})")

    def json_size(self, field: str, value: Any, *, max_bytes: int) -> None:
        size = len(json.dumps(value, separators=(",", ":"), default=str).encode())
        if size > max_bytes:
            self.add(field, f"must be at most {max_bytes} bytes as JSON (got {size})")

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationFailed(self.items)


def check_constraints(v: Violations, constraints: tuple[Constraint, ...], prefix: str = "constraints") -> None:
    if len(constraints) > MAX_CONSTRAINTS:
        v.add(prefix, f"at most {MAX_CONSTRAINTS} constraints")
    seen: set[str] = set()
    for i, c in enumerate(constraints):
        v.text(f"{prefix}[{i}].name", c.name, max_len=MAX_CONSTRAINT_NAME, required=True)
        v.text(f"{prefix}[{i}].description", c.description, max_len=MAX_TEXT_ITEM)
        if not 0 <= c.weight <= 100:
            v.add(f"{prefix}[{i}].weight", f"must be between 0 and 100 (got {c.weight})")
        key = c.name.strip().casefold()
        if key and key in seen:
            v.add(f"{prefix}[{i}].name", f"duplicate constraint name {c.name!r}")
        seen.add(key)


def check_goals(v: Violations, goals: tuple[Goal, ...], prefix: str = "goals") -> None:
    if len(goals) > MAX_GOALS:
        v.add(prefix, f"at most {MAX_GOALS} goals")
    for i, g in enumerate(goals):
        v.text(f"{prefix}[{i}].description", g.description, max_len=MAX_TEXT_ITEM, required=True)


def check_model_data(v: Violations, model_data: dict[str, Any], prefix: str = "model_data") -> None:
    for key, value in model_data.items():
        if key not in WORLD_MODEL_SECTIONS:
            v.add(f"{prefix}.{key}", f"unknown section; expected one of {', '.join(WORLD_MODEL_SECTIONS)}")
        elif not isinstance(value, list):
            v.add(f"{prefix}.{key}", "must be a list")
        elif len(value) > MAX_SECTION_ITEMS:
            v.add(f"{prefix}.{key}", f"at most {MAX_SECTION_ITEMS} items")
    v.json_size(prefix, model_data, max_bytes=MAX_WORLD_MODEL_BYTES)
