"""What every task works with: the request, the schema it answers and the prompt read once."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from crucible_emulator.conversation import JsonObject, ModelRequest
from crucible_emulator.schemas import SchemaFiller
from crucible_emulator.text import find_json_object_in, int_directive, iter_json_objects, key_terms, without_json

MAX_ITEMS = 50
_DIRECTIVE_LINE_RE = re.compile(r"^[ \t]*[A-Za-z_]+[ \t]*[:=][ \t]*\d+[ \t]*$", re.MULTILINE)


@dataclass
class TaskContext:
    request: ModelRequest
    schema: JsonObject
    filler: SchemaFiller
    rng: random.Random
    # 0 for OpenAI, 1 for Anthropic: picks the phrasing so two providers never answer alike.
    style: int

    @cached_property
    def task_text(self) -> str:
        text = _DIRECTIVE_LINE_RE.sub("", without_json(self.request.last_user_text())).strip()
        return text or _DIRECTIVE_LINE_RE.sub("", without_json(self.request.system)).strip()

    @cached_property
    def all_text(self) -> str:
        return self.request.all_text()

    @cached_property
    def texts(self) -> list[str]:
        """Where JSON context objects are looked for: latest message first, the system text last."""
        return [m.text for m in reversed(self.request.messages) if m.text] + [self.request.system]

    @cached_property
    def terms(self) -> list[str]:
        return key_terms(self.task_text, 8) or key_terms(self.all_text, 8)

    @cached_property
    def json_objects(self) -> list[JsonObject]:
        """The JSON objects embedded in the prompt, in ``texts`` order, each parsed once."""
        return [value for text in self.texts for _, _, value in iter_json_objects(text)]

    def find(self, predicate: Callable[[JsonObject], bool]) -> JsonObject | None:
        return find_json_object_in(self.json_objects, predicate)

    def json_with(self, key: str, kind: type | tuple[type, ...] = object) -> Any:
        found = self.find(lambda o: key in o and isinstance(o[key], kind))
        return None if found is None else found[key]

    def pick(self, *variants: str) -> str:
        return variants[self.style % len(variants)]

    def count(self, prop: str, directive: str, default: int = 3) -> int:
        low, high = self.filler.array_bounds(self.filler.property_schema(self.schema, prop))
        wanted = int_directive(self.all_text, directive)
        if wanted is None:
            wanted = high if isinstance(high, int) else max(default, low or 0)
        if isinstance(high, int):
            wanted = min(wanted, high)
        if isinstance(low, int):
            wanted = max(wanted, low)
        return max(0, min(wanted, MAX_ITEMS))


TaskFn = Callable[[TaskContext], Any]
