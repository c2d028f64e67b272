"""One source for enum names: the proto descriptor.

A proto enum ``SprintStatus`` has values ``SPRINT_STATUS_UNSPECIFIED = 0``, ``SPRINT_STATUS_ACTIVE``, …
(buf's ENUM_VALUE_PREFIX rule). Every other spelling of a value is derived from it: the domain
enum's member of the same name without the prefix (``SprintStatus.ACTIVE``), and the REST string,
that name in lower case (``"active"``), or with a spelling an enum declares (event types are
dotted: ``"phase.started"``). So adding a value touches the proto and the domain enum only;
``ProtoEnum`` checks, when it is built, that the two agree, and a test checks that every domain
enum's values are the REST strings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Generic, Protocol, TypeVar

from google.protobuf.descriptor import EnumDescriptor

from crucible_common.errors import FieldViolation, InvalidArgument

E = TypeVar("E", bound=Enum)
V = TypeVar("V")
V_co = TypeVar("V_co", covariant=True)


class EnumWrapper(Protocol[V_co]):
    """A generated proto enum (``pb.SprintStatus``): its descriptor and its typed values."""

    @property
    def DESCRIPTOR(self) -> EnumDescriptor: ...

    def Value(self, name: str) -> V_co: ...


_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def value_prefix(descriptor: EnumDescriptor) -> str:
    """``SprintStatus`` → ``SPRINT_STATUS_``."""
    return _CAMEL_BOUNDARY.sub("_", descriptor.name).upper() + "_"


def lower(name: str) -> str:
    """The default REST spelling: ``PHASE_STARTED`` → ``phase_started``."""
    return name.lower()


def upper(name: str) -> str:
    """Statuses that other documents spell in capitals (a run's ``COMPLETED``)."""
    return name


def dotted(name: str) -> str:
    """Event types: ``PHASE_STARTED`` → ``phase.started`` (subject, then what happened)."""
    return name.lower().replace("_", ".", 1)


def short_names(proto: EnumWrapper[object]) -> dict[int, str]:
    """Each value's number and name without the prefix (``{2: "ACTIVE"}``), without UNSPECIFIED (0)."""
    descriptor = proto.DESCRIPTOR
    prefix = value_prefix(descriptor)
    names = {}
    for value in descriptor.values:
        if value.number == 0:
            continue
        if not value.name.startswith(prefix):
            raise ValueError(f"{descriptor.full_name}.{value.name} does not start with {prefix}")
        names[value.number] = value.name.removeprefix(prefix)
    return names


def enum_names(proto: EnumWrapper[object], spelling: Callable[[str], str] = lower) -> dict[int, str]:
    """Each value's number and REST string (``{2: "active"}``), without UNSPECIFIED (0)."""
    return {number: spelling(name) for number, name in short_names(proto).items()}


class ProtoEnum(Generic[E, V]):
    """The translation between a proto enum and the domain enum whose member names are its short names.

    The domain values must be the REST strings (``spelling`` of the short names), checked here.
    ``unspecified`` is the domain member that 0 stands for, when the domain has one (a default
    such as ``RecordingMode.OFF``); otherwise 0 means "not given" and reads as None.
    """

    def __init__(
        self,
        proto: EnumWrapper[V],
        domain: type[E],
        *,
        spelling: Callable[[str], str] = lower,
        unspecified: E | None = None,
    ) -> None:
        self.descriptor = descriptor = proto.DESCRIPTOR
        names = short_names(proto)
        by_name = {member.name: member for member in domain}
        missing_in_domain = sorted(set(names.values()) - set(by_name))
        missing_in_proto = sorted(set(by_name) - set(names.values()) - {unspecified.name if unspecified else ""})
        if missing_in_domain or missing_in_proto:
            raise ValueError(
                f"{descriptor.full_name} and {domain.__name__} disagree: only in the proto {missing_in_domain}, "
                f"only in the domain {missing_in_proto}"
            )
        misspelt = sorted(n for n in names.values() if by_name[n].value != spelling(n))
        if misspelt:
            raise ValueError(f"{domain.__name__} values of {misspelt} are not spelt {spelling.__name__}")
        self.spelling = spelling
        prefix = value_prefix(descriptor)
        self._from: dict[int, E] = {number: by_name[name] for number, name in names.items()}
        self._to: dict[E, V] = {by_name[name]: proto.Value(prefix + name) for name in names.values()}
        self._zero = proto.Value(prefix + "UNSPECIFIED")
        self._unspecified = unspecified
        if unspecified is not None:
            self._to[unspecified] = self._zero

    def to_proto(self, value: E | None) -> V:
        return self._zero if value is None else self._to[value]

    def from_proto(self, number: int, field: str) -> E | None:
        """0 is ``unspecified`` (None unless set); a number the proto does not define is a bad request."""
        if number == 0:
            return self._unspecified
        try:
            return self._from[number]
        except KeyError:
            raise InvalidArgument(
                f"{field} has unknown value {number}",
                violations=[FieldViolation(field, f"unknown enum value {number}")],
                reason="UNKNOWN_ENUM_VALUE",
            ) from None

    def required(self, number: int, field: str) -> E:
        value = self.from_proto(number, field)
        if value is None:
            raise InvalidArgument(
                f"{field} is required",
                violations=[FieldViolation(field, f"one of {', '.join(self.names)}")],
                reason="VALIDATION_FAILED",
            )
        return value

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(str(member.value) for member in self._from.values())

    @property
    def by_number(self) -> Mapping[int, E]:
        return self._from
