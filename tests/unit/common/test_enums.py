"""Enum names come from the proto descriptors: domain enums, proto numbers and REST strings agree."""

from __future__ import annotations

import enum

import pytest

from crucible.agent.v1 import agent_service_pb2 as agent_pb
from crucible.agent.v1 import sprint_service_pb2 as sprint_pb
from crucible.common.v1 import actor_pb2
from crucible_agent.domain.model import RecordingMode
from crucible_agent.entrypoints import proto_mapping as agent_mapping
from crucible_agent.entrypoints import sprint_mapping
from crucible_common.enums import ProtoEnum, dotted, enum_names, upper, value_prefix
from crucible_common.errors import InvalidArgument
from crucible_spec.entrypoints import proto_mapping as spec_mapping


class Kind(enum.StrEnum):
    USER = "user"
    ARCHITECT = "architect"
    SYSTEM = "system"


KINDS = ProtoEnum(actor_pb2.ActorKind, Kind)


def test_the_prefix_is_the_enum_name_in_upper_snake_case() -> None:
    assert value_prefix(agent_pb.LlmCallStatus.DESCRIPTOR) == "LLM_CALL_STATUS_"
    assert value_prefix(sprint_pb.SprintEventType.DESCRIPTOR) == "SPRINT_EVENT_TYPE_"


def test_rest_names_are_the_short_names_in_lower_case_or_the_declared_spelling() -> None:
    assert enum_names(sprint_pb.SprintStatus) == {
        1: "planned",
        2: "active",
        3: "completed",
        4: "failed",
        5: "cancelled",
    }
    assert enum_names(sprint_pb.SprintEventType, dotted)[3] == "phase.started"


def test_zero_is_unspecified_and_known_numbers_map_both_ways() -> None:
    assert KINDS.from_proto(0, "actor.kind") is None
    assert KINDS.from_proto(actor_pb2.ACTOR_KIND_ARCHITECT, "actor.kind") is Kind.ARCHITECT
    assert KINDS.to_proto(Kind.SYSTEM) == actor_pb2.ACTOR_KIND_SYSTEM
    assert KINDS.to_proto(None) == actor_pb2.ACTOR_KIND_UNSPECIFIED
    assert KINDS.names == ("user", "architect", "system")


@pytest.mark.parametrize("number", [4, -1, 99])
def test_an_unknown_number_is_a_bad_request_naming_the_field(number: int) -> None:
    with pytest.raises(InvalidArgument) as caught:
        KINDS.from_proto(number, "actor.kind")

    assert caught.value.reason == "UNKNOWN_ENUM_VALUE"
    assert [v.field for v in caught.value.violations] == ["actor.kind"]
    assert caught.value.__cause__ is None


def test_a_required_enum_refuses_unspecified() -> None:
    with pytest.raises(InvalidArgument) as caught:
        KINDS.required(0, "actor.kind")
    assert [v.field for v in caught.value.violations] == ["actor.kind"]


def test_a_domain_default_can_stand_for_zero() -> None:
    assert agent_mapping.RECORDING_MODE.from_proto(0, "recording.mode") is RecordingMode.OFF
    assert agent_mapping.RECORDING_MODE.to_proto(RecordingMode.OFF) == 0


def test_a_domain_enum_that_disagrees_with_its_proto_is_refused_when_built() -> None:
    class Missing(enum.StrEnum):
        USER = "user"
        ARCHITECT = "architect"

    class Extra(enum.StrEnum):
        USER = "user"
        ARCHITECT = "architect"
        SYSTEM = "system"
        ROBOT = "robot"

    with pytest.raises(ValueError, match="only in the proto \\['SYSTEM'\\]"):
        ProtoEnum(actor_pb2.ActorKind, Missing)
    with pytest.raises(ValueError, match="only in the domain \\['ROBOT'\\]"):
        ProtoEnum(actor_pb2.ActorKind, Extra)


def _mappings() -> list[ProtoEnum[enum.Enum, object]]:
    modules = (agent_mapping, sprint_mapping, spec_mapping)
    return [value for module in modules for value in vars(module).values() if isinstance(value, ProtoEnum)]


@pytest.mark.parametrize("mapping", _mappings(), ids=lambda m: m.descriptor.full_name)
def test_every_domain_enum_value_is_its_rest_string(mapping: ProtoEnum[enum.Enum, object]) -> None:
    # The gateway spells values from the descriptor alone; the services store and log the domain
    # values: one spelling, whatever the layer.
    names = enum_names(_Wrapper(mapping), mapping.spelling)
    assert {n: str(mapping.by_number[n].value) for n in mapping.by_number} == names


def test_a_domain_enum_spelt_otherwise_than_its_rest_names_is_refused() -> None:
    class Shouting(enum.StrEnum):
        USER = "USER"
        ARCHITECT = "ARCHITECT"
        SYSTEM = "SYSTEM"

    with pytest.raises(ValueError, match="not spelt lower"):
        ProtoEnum(actor_pb2.ActorKind, Shouting)
    assert ProtoEnum(actor_pb2.ActorKind, Shouting, spelling=upper).names == ("USER", "ARCHITECT", "SYSTEM")


class _Wrapper:
    def __init__(self, mapping: ProtoEnum[enum.Enum, object]) -> None:
        self.DESCRIPTOR = mapping.descriptor

    def Value(self, name: str) -> int:
        return int(self.DESCRIPTOR.values_by_name[name].number)
