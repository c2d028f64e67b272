"""The domain error tree and its round trip through a google.rpc.Status."""

from __future__ import annotations

import grpc
import pytest

from crucible_common.errors import (
    AlreadyExists,
    Conflict,
    CrucibleError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PreconditionViolation,
    ResourceExhausted,
    StatusDetails,
    Unavailable,
    decode_status,
    to_status,
)

DOMAIN = "spec.crucible"


def round_trip(error: CrucibleError) -> tuple[int, StatusDetails]:
    """The numeric code a client receives, and what it decodes from the rich status."""
    status = to_status(error, DOMAIN)
    return status.code, decode_status(error.code, status.message, status)


def test_invalid_argument_round_trip_keeps_everything() -> None:
    violations = [FieldViolation("title", "must not be empty"), FieldViolation("a[1].b", "bad")]
    error = InvalidArgument("invalid request", violations=violations, reason="VALIDATION_FAILED", metadata={"k": "v"})

    code_number, details = round_trip(error)

    assert code_number == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.message == "invalid request"
    assert details.reason == "VALIDATION_FAILED"
    assert details.domain == DOMAIN
    assert details.metadata == {"k": "v"}
    assert details.field_violations == violations
    assert details.precondition_violations == []


def test_failed_precondition_round_trip_keeps_violations() -> None:
    violations = [PreconditionViolation("STATE", "runs/1", "run is finished")]
    error = FailedPrecondition("cannot cancel", violations=violations, reason="RUN_FINISHED")

    code_number, details = round_trip(error)

    assert code_number == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert details.reason == "RUN_FINISHED"
    assert details.precondition_violations == violations
    assert details.field_violations == []
    assert details.metadata == {}


@pytest.mark.parametrize(
    ("error_type", "code", "reason"),
    [
        (NotFound, grpc.StatusCode.NOT_FOUND, "NOT_FOUND"),
        (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS, "ALREADY_EXISTS"),
        (Conflict, grpc.StatusCode.ABORTED, "CONFLICT"),
        (ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED"),
        (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED"),
        (Unavailable, grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE"),
        (CrucibleError, grpc.StatusCode.INTERNAL, "INTERNAL"),
    ],
)
def test_each_error_has_its_code_and_default_reason(
    error_type: type[CrucibleError], code: grpc.StatusCode, reason: str
) -> None:
    code_number, details = round_trip(error_type("it went wrong"))

    assert code_number == code.value[0]
    assert (details.code, details.reason, details.message) == (code, reason, "it went wrong")


def test_only_error_info_is_sent_without_violations() -> None:
    status = to_status(InvalidArgument("bad"), DOMAIN)

    assert len(status.details) == 1


def test_decode_without_status_keeps_code_and_message() -> None:
    details = decode_status(grpc.StatusCode.UNAVAILABLE, "connection refused", None)

    assert details.code == grpc.StatusCode.UNAVAILABLE
    assert details.message == "connection refused"
    assert details.reason == ""
    assert details.field_violations == []


def test_metadata_is_copied_not_shared() -> None:
    metadata = {"k": "v"}
    error = NotFound("gone", metadata=metadata)
    metadata["k"] = "changed"

    assert error.metadata == {"k": "v"}


def test_a_long_list_of_violations_travels_as_its_first_ones_and_a_count_of_the_rest() -> None:
    """All of them, they outgrew the trailing metadata gRPC allows (8 KiB): the call failed as
    RESOURCE_EXHAUSTED instead of the INVALID_ARGUMENT it was."""
    fields = [
        FieldViolation(f"snapshot_data.problem_spec.goals[{i}]", "Input should be a valid dictionary")
        for i in range(200)
    ]
    preconditions = [PreconditionViolation("validation_error", f"s{i}", "refused") for i in range(30)]

    status = to_status(InvalidArgument("invalid snapshot", violations=fields), DOMAIN)
    _, details = round_trip(FailedPrecondition("blocked", violations=preconditions))

    sent = decode_status(grpc.StatusCode.INVALID_ARGUMENT, status.message, status).field_violations
    assert len(sent) == 20
    assert sent[:19] == fields[:19]
    assert sent[19] == FieldViolation("", "… and 181 more like these")
    assert len(status.SerializeToString()) < 8 * 1024
    assert [v.subject for v in details.precondition_violations[:19]] == [f"s{i}" for i in range(19)]
    assert details.precondition_violations[19].description == "… and 11 more like these"
