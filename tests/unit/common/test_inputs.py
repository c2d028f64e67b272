"""What no request may carry, in any field: NUL, unpaired surrogates, JSON nested too deep."""

from __future__ import annotations

from typing import Any

import pytest

from crucible.agent.v1 import agent_service_pb2 as agent_pb
from crucible.snapshot.v1 import snapshot_service_pb2 as snap_pb
from crucible.spec.v1 import spec_service_pb2 as spec_pb
from crucible_common.errors import FieldViolation, ValidationFailed
from crucible_common.grpc_server import check_request
from crucible_common.inputs import (
    MAX_JSON_DEPTH,
    NOT_FINITE,
    NOT_UNICODE,
    NUL,
    TOO_DEEP,
    json_violations,
    message_violations,
    text_problem,
)
from crucible_common.protobuf import struct


def nested(levels: int) -> dict[str, Any]:
    """A JSON object ``levels`` deep, itself included: ``nested(1) == {}``."""
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("plain text, accents é and emoji 🎉", None),
        ("", None),
        ("a\x00b", NUL),
        ("\x00", NUL),
        ("lone \ud800 high", NOT_UNICODE),
        ("lone \udfff low", NOT_UNICODE),
    ],
)
def test_text_problem(value: str, problem: str | None) -> None:
    assert text_problem(value) == problem


def test_json_violations_name_every_field_that_cannot_be_stored() -> None:
    body = {
        "title": "ok",
        "description": "bad\x00",
        "metadata": {"tags": ["fine", "\ud800"], "a\x00": 1, "deep": {"x": "\x00"}},
    }

    assert json_violations(body) == [
        FieldViolation("description", NUL),
        FieldViolation("metadata.tags[1]", NOT_UNICODE),
        FieldViolation("metadata.'a\\x00'", f"key {NUL}"),
        FieldViolation("metadata.deep.x", NUL),
    ]


def test_numbers_json_has_no_words_for_are_refused() -> None:
    assert json_violations({"a": [1.5, float("nan")], "b": float("-inf")}) == [
        FieldViolation("a[1]", NOT_FINITE),
        FieldViolation("b", NOT_FINITE),
    ]
    request = spec_pb.CreateChatMessageRequest(metadata=struct({"x": float("inf")}))
    assert message_violations(request) == [FieldViolation("metadata.x", NOT_FINITE)]


def test_json_depth_counts_objects_and_arrays_with_the_document_as_level_one() -> None:
    assert json_violations(nested(MAX_JSON_DEPTH)) == []
    assert json_violations(nested(MAX_JSON_DEPTH + 1)) == [FieldViolation("a." * (MAX_JSON_DEPTH - 1) + "a", TOO_DEEP)]
    arrays: Any = []
    for _ in range(MAX_JSON_DEPTH):
        arrays = [arrays]
    assert json_violations(arrays) == [FieldViolation("[0]" * MAX_JSON_DEPTH, TOO_DEEP)]
    # Scalars are no level of their own.
    assert json_violations({"a": [1, "x", None, True, 2.5]}) == []


def test_message_violations_walk_strings_repeated_fields_maps_and_structs() -> None:
    request = agent_pb.ExecuteAgentRunRequest(
        message="hello\x00",
        history=[agent_pb.Message(content="fine"), agent_pb.Message(content="\x00")],
        metadata=struct({"k": "v\x00", "list": ["a", {"b\x00": 1}]}),
    )

    # A Struct's keys come in no set order.
    assert sorted(message_violations(request), key=lambda v: v.field) == [
        FieldViolation("history[1].content", NUL),
        FieldViolation("message", NUL),
        FieldViolation("metadata.k", NUL),
        FieldViolation("metadata.list[1].'b\\x00'", f"key {NUL}"),
    ]


def test_a_struct_is_measured_as_the_json_it_holds() -> None:
    at_limit = spec_pb.CreateChatMessageRequest(metadata=struct(nested(MAX_JSON_DEPTH)))
    too_deep = spec_pb.CreateChatMessageRequest(metadata=struct(nested(MAX_JSON_DEPTH + 1)))

    assert message_violations(at_limit) == []
    assert [v.description for v in message_violations(too_deep)] == [TOO_DEEP]


def test_a_struct_at_the_limit_still_fits_inside_the_deepest_message_that_carries_one() -> None:
    """A world model at the limit, copied into a snapshot's data (two levels more), still decodes."""
    data = {"world_model": {"model_data": {"actors": [nested(MAX_JSON_DEPTH - 2)]}}}
    response = snap_pb.GetSnapshotResponse(snapshot=snap_pb.Snapshot(snapshot_data=struct(data)))

    assert snap_pb.GetSnapshotResponse.FromString(response.SerializeToString()) == response


def test_check_request_raises_one_validation_failure_with_every_violation() -> None:
    with pytest.raises(ValidationFailed) as info:
        check_request(spec_pb.CreateProjectRequest(title="a\x00", description="\x00"))

    assert info.value.violations == [FieldViolation("title", NUL), FieldViolation("description", NUL)]
    assert info.value.reason == "VALIDATION_FAILED"
    check_request(spec_pb.CreateProjectRequest(title="fine"))


def test_a_struct_found_clean_once_is_not_walked_again_and_a_changed_one_is() -> None:
    schema = {"type": "object", "properties": {"score": {"type": "number"}}, "required": ["score"]}
    clean = spec_pb.CreateChatMessageRequest(metadata=struct(schema))
    assert message_violations(clean) == []
    assert message_violations(clean) == []

    changed = spec_pb.CreateChatMessageRequest(metadata=struct({**schema, "title": "bad\x00"}))
    assert message_violations(changed) == [FieldViolation("metadata.title", NUL)]
    # Found dirty, it is not remembered as clean: asked again, the answer is the same.
    assert message_violations(changed) == [FieldViolation("metadata.title", NUL)]
