"""What every resource's REST bodies share: strict bodies, wire-safe numbers, paging, enum names."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, GetCoreSchemaHandler, WithJsonSchema
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from crucible_common.enums import EnumWrapper, enum_names, lower
from crucible_common.inputs import MAX_EXACT_INTEGER

V = TypeVar("V")

# Lengths and ranges are the services' to judge; the gateway only keeps numbers within what the
# wire format can carry, so an absurd value is a 400 and never a crash.
Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
# A 64-bit field of a JSON body: up to 2^53, the whole numbers every JSON reader keeps exact (the
# input guard refuses larger ones in any body, json_violations' NOT_EXACT).
Int64 = Annotated[int, Field(ge=0, le=MAX_EXACT_INTEGER)]


def _digits(value: object) -> object:
    # A query string's integer is written in digits: pydantic would also read "1.0" and " 1 ".
    # Every such parameter counts from 0, so a negative one is told so rather than "not digits".
    if isinstance(value, str) and not re.fullmatch(r"[0-9]+", value):
        if re.fullmatch(r"-[0-9]+", value):
            raise PydanticCustomError("greater_than_equal", "must be 0 or more")
        raise PydanticCustomError("int_parsing", "must be a whole number written in digits")
    return value


def _true_or_false(value: object) -> object:
    # As JSON spells them: pydantic would also read "1", "yes", "on" and their opposites.
    if isinstance(value, str) and value not in ("true", "false"):
        raise PydanticCustomError("bool_parsing", "must be true or false")
    return value


# Query parameters whose values are read exactly as the document writes them (the validator last:
# FastAPI writes the bounds of a Query before it as they are, of one after it not at all).
PageSize = Annotated[int, Query(ge=0, le=1000, description="0 means the default (50)"), BeforeValidator(_digits)]
Position = Annotated[
    int, Query(ge=0, le=2**63 - 1, description="Only the events after this sequence number"), BeforeValidator(_digits)
]
StrictQueryBool = BeforeValidator(_true_or_false)
PageToken = Annotated[str, Query(max_length=1024, description="next_page_token of the previous page")]

# Every resource id is a UUID, and every id a request names (in its path, its query or its body) is
# checked here, the same way, before any service is asked: a malformed one is a 400 naming the field
# wherever it appears. Only the canonical form (8-4-4-4-12 hex digits) is accepted; it is forwarded
# in lower case, as the services store it.
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _uuid(value: str) -> str:
    if not _UUID.fullmatch(value):
        raise PydanticCustomError("uuid", "must be a UUID (8-4-4-4-12 hexadecimal digits)")
    return value.lower()


def _uuid_or_empty(value: str) -> str:
    return _uuid(value) if value else value


_UUID_SCHEMA = {"type": "string", "format": "uuid"}
Id = Annotated[str, AfterValidator(_uuid), WithJsonSchema(_UUID_SCHEMA)]
# An optional id where the API has always spelled "none" as an empty string.
OptionalId = Annotated[
    str, AfterValidator(_uuid_or_empty), WithJsonSchema({"anyOf": [_UUID_SCHEMA, {"type": "string", "maxLength": 0}]})
]
IdFilter = Annotated[OptionalId, Query(description="Only those of this id (a UUID); empty: no filter")]


class Body(BaseModel):
    """A request body: an unknown field is a 400, not silently dropped; a value of another JSON type
    than the document says (``true`` for a number, ``1`` for a boolean) is a 400, not converted."""

    model_config = ConfigDict(extra="forbid", strict=True)


class RestEnum(Generic[V]):
    """A proto enum as the REST API spells it, from the descriptor (``crucible_common.enums``).

    ``Annotated[str, RESOLUTION]`` is a str field whose OpenAPI schema lists the names
    (``"enum": [...]``) and whose validation refuses any other string with the usual 400 problem
    body; ``number`` turns an accepted name into the value a request message takes, ``name`` a
    value a service sent into its REST name. ``exclude`` narrows what a request may send, for a
    value the REST body cannot express (a tool turn in a history without tool calls).
    """

    def __init__(
        self, proto: EnumWrapper[V], spelling: Callable[[str], str] = lower, *, exclude: Collection[str] = ()
    ) -> None:
        descriptor = proto.DESCRIPTOR
        self._full_name = descriptor.full_name
        self._names = enum_names(proto, spelling)
        unknown = set(exclude) - set(self._names.values())
        if unknown:
            raise ValueError(f"{self._full_name} has no values {sorted(unknown)} to exclude")
        self._numbers: dict[str, V] = {
            name: proto.Value(descriptor.values_by_number[number].name)
            for number, name in self._names.items()
            if name not in exclude
        }

    @property
    def names(self) -> tuple[str, ...]:
        """The names a request may send, in the proto's order."""
        return tuple(self._numbers)

    def number(self, name: str) -> V:
        """The proto value of a name the field's validation has accepted."""
        return self._numbers[name]

    def name(self, number: int) -> str:
        """The REST name of a value a service sent; UNSPECIFIED or a value the gateway does not know is a bug."""
        try:
            return self._names[number]
        except KeyError:
            raise ValueError(f"{self._full_name} has no REST name for {number}") from None

    def optional(self, number: int) -> str | None:
        """None for UNSPECIFIED (a field the service left unset), else ``name``."""
        return None if number == 0 else self.name(number)

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.literal_schema(list(self._numbers))

    def __repr__(self) -> str:
        return f"RestEnum({self._full_name})"
