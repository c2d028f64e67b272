"""The one place where failures become HTTP: gRPC status → status code + JSON problem body.

Bodies follow RFC 9457 (``application/problem+json``) and carry the service's ``ErrorInfo``
reason and any field or precondition violations, so a client can act on them.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import grpc
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from fastapi.responses import JSONResponse
from pydantic import SecretStr
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.websockets import WebSocketState

from crucible_common.errors import FieldViolation, details_of, field_path
from crucible_common.settings import Settings
from crucible_gateway.auth import UNAUTHORIZED_DETAIL, websocket_token_ok
from crucible_gateway.openapi import match_path

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
# A WebSocket close frame's reason: the problem's detail, cut to fit.
MAX_CLOSE_REASON_BYTES = 123

HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 412,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


def problem(
    status: int,
    detail: str,
    *,
    reason: str,
    field_violations: list[dict[str, str]] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:crucible:problem:{reason.lower()}",
        "title": HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error",
        "status": status,
        "detail": detail,
        "reason": reason,
    }
    if field_violations:
        body["field_violations"] = field_violations
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def problem_json(error: grpc.aio.AioRpcError) -> dict[str, Any]:
    """The problem body of an RPC error, for channels that are not HTTP responses (WebSocket)."""
    body: dict[str, Any] = json.loads(bytes(from_rpc_error(error).body))
    return body


def from_rpc_error(error: grpc.aio.AioRpcError) -> JSONResponse:
    details = details_of(error)
    status = HTTP_STATUS.get(details.code, 500)
    if details.code is grpc.StatusCode.RESOURCE_EXHAUSTED and not details.reason:
        # gRPC's own, not a service's (which names its reason): a message over the size limit is
        # the system's failure, not a rate the client should wait out and try again.
        status = 500
    if status == 500 and details.reason not in ("", "INTERNAL"):
        # A named upstream failure (a model's invalid answer, ...) is a bad gateway, and says so.
        status = 502
    if status == 500:
        logger.error("upstream failed: %s %s", details.code.name, details.message)
    extra: dict[str, Any] = {"grpc_code": details.code.name}
    if details.domain:
        extra["domain"] = details.domain
    if details.metadata:
        extra["metadata"] = details.metadata
    if details.precondition_violations:
        extra["precondition_violations"] = [
            {"type": v.type, "subject": v.subject, "description": v.description}
            for v in details.precondition_violations
        ]
    return problem(
        status,
        details.message if status != 500 else "internal error",
        reason=details.reason or details.code.name,
        field_violations=[{"field": v.field, "description": v.description} for v in details.field_violations],
        extra=extra,
    )


def validation_problem(errors: Sequence[Any], what: str) -> JSONResponse:
    """400 for a body pydantic refused, naming each field (the "body" prefix of FastAPI's locations dropped)."""
    return violations_problem([_violation(err) for err in errors], what)


def _violation(err: Mapping[str, Any]) -> FieldViolation:
    if err.get("type") == "json_invalid":
        # A body that is no JSON names no field (as for a chat frame). FastAPI locates it at
        # ("body", <character offset>), which read as a field "1"; the decoder's words say what is
        # wrong, and the offset where.
        offset = next((p for p in err["loc"] if isinstance(p, int)), None)
        where = f" (at character {offset})" if offset is not None else ""
        return FieldViolation("", f"not valid JSON: {err.get('ctx', {}).get('error') or err['msg']}{where}")
    return FieldViolation(field_path(p for p in err["loc"] if p != "body"), err["msg"])


def violations_problem(violations: Sequence[FieldViolation], what: str) -> JSONResponse:
    """400 naming each field of the request that was refused, and why."""
    # A body that is no JSON object at all has no field to name.
    summary = "; ".join(f"{v.field}: {v.description}".lstrip(": ") for v in violations[:5])
    return problem(
        400,
        f"invalid {what}: {summary}",
        reason="VALIDATION_FAILED",
        field_violations=[{"field": v.field, "description": v.description} for v in violations],
    )


def problem_body(response: JSONResponse) -> dict[str, Any]:
    """A problem response's body: what HTTP answers, for a channel that sends it otherwise (a WebSocket frame)."""
    body: dict[str, Any] = json.loads(bytes(response.body))
    return body


def close_code(status: int) -> int:
    """The close code of a WebSocket ended by a problem of this HTTP status: 4000 + the status (4400
    a malformed id or query, 4401 a missing token, 4404 an id that names nothing, ...)."""
    return 4000 + status if 400 <= status <= 599 else 1011


def close_reason(text: str) -> str:
    """``text`` cut to what a WebSocket close frame carries (123 bytes of UTF-8), on a character boundary."""
    return text.encode()[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")


def unauthorized() -> JSONResponse:
    """401 for a request without the API token, with the challenge HTTP asks a 401 to carry."""
    refusal = problem(401, UNAUTHORIZED_DETAIL, reason="UNAUTHORIZED")
    refusal.headers["WWW-Authenticate"] = "Bearer"
    return refusal


async def end_with_problem(websocket: WebSocket, problem: Mapping[str, Any]) -> None:
    """The ``error`` frame with ``problem`` (the body HTTP would answer), then the close of code 4000 +
    its status and its detail as the reason.

    Accepted first if it is not yet: a handshake refused with an HTTP status reaches a browser as a
    bare 1006, with neither the code nor the reason; a close frame carries both.
    """
    if websocket.application_state is WebSocketState.CONNECTING:
        await websocket.accept()
    # A client gone already has nobody to tell.
    with contextlib.suppress(WebSocketDisconnect):
        await websocket.send_json({"type": "error", "problem": dict(problem)})
        await websocket.close(code=close_code(int(problem["status"])), reason=close_reason(str(problem["detail"])))


async def refuse_websocket(websocket: WebSocket, problem: JSONResponse, api_token: SecretStr | None) -> None:
    """Refuse a WebSocket's request as HTTP refuses one (``end_with_problem``: 4400 for a malformed
    id or query). Without the API token (``api_token``, the configured one) it is refused for that
    alone, 401 and 4401: a caller without it learns nothing about what else is wrong."""
    refusal = problem if websocket_token_ok(websocket, api_token) else unauthorized()
    await end_with_problem(websocket, problem_body(refusal))


def allowed_methods(request: Request) -> str | None:
    """Every method the request's path answers, for a 405's Allow (Starlette's names one route's
    methods only, though a path may have several routes); None for a path the document lacks."""
    documented = match_path(request.app.openapi(), request.url.path)
    if documented is None:
        return None
    # HEAD is answered wherever GET is (app.HeadAsGet).
    return ", ".join(sorted(documented.methods | ({"HEAD"} if "GET" in documented.methods else set())))


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into a problem body."""

    @app.exception_handler(grpc.aio.AioRpcError)
    async def _rpc(_: Request, exc: grpc.aio.AioRpcError) -> JSONResponse:
        return from_rpc_error(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_problem(exc.errors(), "request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        reason = HTTPStatus(exc.status_code).name if exc.status_code in HTTPStatus._value2member_map_ else "HTTP_ERROR"
        response = problem(exc.status_code, str(exc.detail), reason=reason)
        if exc.headers:
            response.headers.update(exc.headers)
        if exc.status_code == 405 and (allowed := allowed_methods(request)) is not None:
            response.headers["Allow"] = allowed
        return response

    @app.exception_handler(WebSocketRequestValidationError)
    async def _websocket_validation(websocket: WebSocket, exc: WebSocketRequestValidationError) -> None:
        settings: Settings = websocket.app.state.settings
        await refuse_websocket(websocket, validation_problem(exc.errors(), "request"), settings.api_token)
