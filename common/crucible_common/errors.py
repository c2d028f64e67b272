"""The domain exception tree every service raises, and its one translation to gRPC status.

Handlers raise these; the error interceptor (``grpc_server``) turns them into a canonical code
with a ``google.rpc.Status`` carrying an ``ErrorInfo`` (an UPPER_SNAKE reason) and, where it
applies, ``BadRequest`` field violations or a ``PreconditionFailure``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


def field_path(parts: Iterable[str | int]) -> str:
    """A field's path as every error names it: ``constraints[0].weight``, whoever found it wrong
    (a validator's location tuple, a service's own checks)."""
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


@dataclass(frozen=True)
class PreconditionViolation:
    type: str
    subject: str
    description: str


class CrucibleError(Exception):
    """Base of every domain error. ``reason`` is a stable UPPER_SNAKE identifier."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    default_reason = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = dict(metadata or {})


class InvalidArgument(CrucibleError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        message: str,
        *,
        violations: Sequence[FieldViolation] = (),
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.violations = list(violations)


class ValidationFailed(InvalidArgument):
    """One or more fields are invalid; every violation is listed, not just the first."""

    def __init__(self, violations: Sequence[FieldViolation], subject: str = "request") -> None:
        summary = "; ".join(f"{v.field}: {v.description}" for v in violations[:5])
        more = f" (and {len(violations) - 5} more)" if len(violations) > 5 else ""
        super().__init__(f"invalid {subject}: {summary}{more}", violations=violations, reason="VALIDATION_FAILED")


class NotFound(CrucibleError):
    code = grpc.StatusCode.NOT_FOUND
    default_reason = "NOT_FOUND"


class AlreadyExists(CrucibleError):
    code = grpc.StatusCode.ALREADY_EXISTS
    default_reason = "ALREADY_EXISTS"


class Conflict(CrucibleError):
    """A concurrent change won: re-read and retry (optimistic concurrency)."""

    code = grpc.StatusCode.ABORTED
    default_reason = "CONFLICT"


class FailedPrecondition(CrucibleError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    default_reason = "FAILED_PRECONDITION"

    def __init__(
        self,
        message: str,
        *,
        violations: Sequence[PreconditionViolation] = (),
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.violations = list(violations)


class ResourceExhausted(CrucibleError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_reason = "RESOURCE_EXHAUSTED"


class PermissionDenied(CrucibleError):
    code = grpc.StatusCode.PERMISSION_DENIED
    default_reason = "PERMISSION_DENIED"


class Unavailable(CrucibleError):
    code = grpc.StatusCode.UNAVAILABLE
    default_reason = "UNAVAILABLE"


class DatabaseUnavailable(Unavailable):
    """No connection to the database could be opened (it restarts, fails over, or is unreachable)."""

    default_reason = "DATABASE_UNAVAILABLE"


@dataclass(frozen=True)
class StatusDetails:
    """What a ``google.rpc.Status`` says, decoded; the gateway and the CLI read it."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    domain: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    field_violations: list[FieldViolation] = field(default_factory=list)
    precondition_violations: list[PreconditionViolation] = field(default_factory=list)


class RelayedError(CrucibleError):
    """What another service answered, passed on as it came: its code, reason, message and violations.

    For a service that only forwards a request to the context that owns it, where the caller
    must see the owner's answer (a field it got wrong, a precondition that failed).
    """

    def __init__(self, details: StatusDetails) -> None:
        super().__init__(details.message, reason=details.reason or details.code.name, metadata=details.metadata)
        self.code = details.code
        self.field_violations = list(details.field_violations)
        self.precondition_violations = list(details.precondition_violations)


def relayed(error: grpc.aio.AioRpcError) -> RelayedError:
    return RelayedError(details_of(error))


# At most this many violations travel with an error: the first, and a count of the rest.
MAX_VIOLATIONS_SENT = 20


def to_status(error: CrucibleError, domain: str) -> status_pb2.Status:
    details: list[any_pb2.Any] = []
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=domain, metadata=error.metadata)
    details.append(_pack(info))
    fields: list[FieldViolation] = []
    preconditions: list[PreconditionViolation] = []
    if isinstance(error, InvalidArgument):
        fields = error.violations
    elif isinstance(error, FailedPrecondition):
        preconditions = error.violations
    elif isinstance(error, RelayedError):
        fields, preconditions = error.field_violations, error.precondition_violations
    if len(fields) > MAX_VIOLATIONS_SENT:
        # The details travel in the trailing metadata, whose size gRPC bounds (8 KiB by default):
        # two hundred violations of one misshapen document made the call fail as RESOURCE_EXHAUSTED.
        rest = len(fields) - MAX_VIOLATIONS_SENT + 1
        fields = [*fields[: MAX_VIOLATIONS_SENT - 1], FieldViolation("", f"… and {rest} more like these")]
    if len(preconditions) > MAX_VIOLATIONS_SENT:
        rest = len(preconditions) - MAX_VIOLATIONS_SENT + 1
        more = PreconditionViolation("", "", f"… and {rest} more like these")
        preconditions = [*preconditions[: MAX_VIOLATIONS_SENT - 1], more]
    if fields:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description) for v in fields
            ]
        )
        details.append(_pack(bad_request))
    if preconditions:
        failure = error_details_pb2.PreconditionFailure(
            violations=[
                error_details_pb2.PreconditionFailure.Violation(
                    type=v.type, subject=v.subject, description=v.description
                )
                for v in preconditions
            ]
        )
        details.append(_pack(failure))
    return status_pb2.Status(code=error.code.value[0], message=error.message, details=details)


def decode_status(code: grpc.StatusCode, message: str, status: status_pb2.Status | None) -> StatusDetails:
    """Decode the rich status a service sent (``status`` is None when it sent none)."""
    result = StatusDetails(code=code, message=message)
    if status is None:
        return result
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            result = StatusDetails(
                code=code,
                message=status.message or message,
                reason=info.reason,
                domain=info.domain,
                metadata=dict(info.metadata),
                field_violations=result.field_violations,
                precondition_violations=result.precondition_violations,
            )
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            result.field_violations.extend(FieldViolation(v.field, v.description) for v in bad_request.field_violations)
        elif detail.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
            failure = error_details_pb2.PreconditionFailure()
            detail.Unpack(failure)
            result.precondition_violations.extend(
                PreconditionViolation(v.type, v.subject, v.description) for v in failure.violations
            )
    return result


def details_of(error: grpc.aio.AioRpcError) -> StatusDetails:
    """What a failed call's rich status says (an empty reason when the server sent none)."""
    try:
        status = rpc_status.from_call(error)
    except ValueError:
        status = None
    return decode_status(error.code(), error.details() or "", status)


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed
