"""The OpenAPI document, made to say what the server does.

FastAPI writes what it can see from the routes' signatures, and some of it is not what this
gateway answers: a 422 no request ever gets (errors.py answers 400 with a problem body), no error
response at all for the statuses the services' errors map to, a bearer scheme declared although
no token may be configured, and bounds written as floats (FastAPI's document model holds every
bound as a float, so 2**63 - 1 even comes out as 2**63). ``document(app, settings)`` rewrites the
generated document once, on its first request:

- every /api operation lists the error statuses it can answer, each with the Problem body
  (``#/components/schemas/Problem``), by the rules in ``error_statuses``;
- the bearer scheme (and 401) is declared only when ``CRUCIBLE_API_TOKEN`` is set;
- integral bounds are integers, and the 64-bit bound is exact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from starlette.routing import compile_path

from crucible_common.settings import Settings

PROBLEM_REF = "#/components/schemas/Problem"
INT64_MAX = 2**63 - 1
# Bounds a float cannot hold, by the float FastAPI's document model turned them into.
_EXACT_BOUNDS = {float(INT64_MAX): INT64_MAX}
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_WRITES = frozenset({"post", "put", "patch", "delete"})

# The operations that wait for language models: a provider's rate limit reaches the client (429),
# and so does a model's answer that never validated (a named upstream failure, 502).
MODEL_CALLS = frozenset(
    {
        ("post", "/api/agent-runs"),
        ("post", "/api/agent-runs/{agent_run_id}/fork"),
        ("post", "/api/specs"),
        ("post", "/api/chat-sessions/{chat_session_id}/turns"),
        ("post", "/api/snapshots/{snapshot_id}/replay"),
        ("post", "/api/snapshots/run-tests"),
    }
)
# Operations whose body names other resources by id, which may not exist.
NAMES_RESOURCES = frozenset(
    {
        ("post", "/api/runs"),
        ("post", "/api/sprints"),
        ("post", "/api/snapshots"),
        ("post", "/api/snapshots/run-tests"),
    }
)

_MEANING = {
    400: "Bad input: the problem names each field and why (VALIDATION_FAILED, INVALID_ID, ...)",
    401: "No valid bearer token (CRUCIBLE_API_TOKEN is set)",
    404: "An id the request names does not exist",
    408: "The request's body did not arrive in time",
    409: "A conflict: a stale expected_version, a name or id already taken",
    412: "A precondition failed: the resource is not in a state that allows it (the problem says which)",
    413: "The body is larger than 2 MiB",
    415: "The body is not sent as JSON (Content-Type: application/json)",
    429: "A model provider's rate limit: retry later",
    502: "A model's answer failed (named in the problem's reason)",
    503: "A service is unavailable: retry shortly",
    504: "A service did not answer in time",
}


def error_statuses(method: str, path: str, operation: dict[str, Any], *, token: bool) -> list[int]:
    """The error statuses an /api operation can answer, from what it takes and does.

    Every request can be bad input (400; the gateway refuses text no service stores in any query
    parameter), meet a service that is down (503) or slow (504). An id in the path may not exist
    (404) and its resource may be in the wrong state (412); a write may conflict (409) or fail a
    precondition (412); a body may be too large (413), too slow (408) or not JSON (415).
    """
    statuses = {400, 503, 504}
    has_path_id = any(p.get("in") == "path" for p in operation.get("parameters", []))
    if token:
        statuses.add(401)
    if has_path_id or (method, path) in NAMES_RESOURCES:
        statuses |= {404, 412}
    if method in _WRITES:
        statuses |= {409, 412}
    if "requestBody" in operation:
        statuses |= {408, 413, 415}
    if (method, path) in MODEL_CALLS:
        statuses |= {429, 502}
    return sorted(statuses)


def _problem_response(status: int) -> dict[str, Any]:
    return {
        "description": _MEANING.get(status, HTTPStatus(status).phrase),
        "content": {"application/problem+json": {"schema": {"$ref": PROBLEM_REF}}},
    }


def _links(paths: dict[str, Any]) -> None:
    """OpenAPI links from each operation that creates a resource (201, its ``id`` in the body) to
    the operations on it: ``POST /api/runs`` to ``GET /api/runs/{run_id}`` and the rest of
    ``/api/runs/{run_id}/...``; ``POST /api/projects/{project_id}/chat-sessions`` to
    ``/api/chat-sessions/{chat_session_id}/...``. A client (or a stateful fuzzer) follows them."""
    for path, operations in paths.items():
        created = operations.get("post", {}).get("responses", {}).get("201")
        if created is None or not path.startswith("/api/"):
            continue
        collection = "/api/" + path.rstrip("/").rsplit("/", 1)[-1]
        links: dict[str, Any] = {}
        for target, target_operations in paths.items():
            found = re.fullmatch(re.escape(collection) + r"/(\{\w+\})(?:/([^/]+).*)?", target)
            if found is None:
                continue
            # A part made by PUT (a project's ProblemSpec, its WorldModel) does not exist yet on a
            # resource just created: a link would promise what the answer (404) rightly denies.
            resource, part = found.group(1), found.group(2)
            if part and "put" in paths.get(f"{collection}/{resource}/{part}", {}):
                continue
            pointer = target.replace("~", "~0").replace("/", "~1")
            for method, operation in target_operations.items():
                if method not in ("get", "put", "post", "patch", "delete"):
                    continue
                name = operation.get("operationId") or f"{method}{pointer}"
                links[name] = {
                    "operationRef": f"#/paths/{pointer}/{method}",
                    "parameters": {f"path.{resource.strip('{}')}": "$response.body#/id"},
                }
        if links:
            created["links"] = links


def _integral_bounds(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _BOUNDS and isinstance(value, float) and value.is_integer():
                node[key] = _EXACT_BOUNDS.get(value, int(value))
            else:
                _integral_bounds(value)
    elif isinstance(node, list):
        for item in node:
            _integral_bounds(item)


def rewrite(schema: dict[str, Any], *, token: bool) -> None:
    """Make ``schema`` (FastAPI's document, changed in place) say what the server does."""
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            responses.pop("422", None)
            if not path.startswith("/api/"):
                continue
            if not token:
                operation.pop("security", None)
            for status in error_statuses(method, path, operation, token=token):
                responses.setdefault(str(status), _problem_response(status))
    _links(schema.get("paths", {}))
    components = schema.get("components", {})
    if not token:
        components.pop("securitySchemes", None)
    # FastAPI's 422 bodies, no longer referenced by any operation.
    for unused in ("HTTPValidationError", "ValidationError"):
        components.get("schemas", {}).pop(unused, None)
    _integral_bounds(schema)


def document(app: FastAPI, settings: Settings) -> None:
    """Rewrite the app's OpenAPI document (generated once, on first request) with ``rewrite``."""
    generate = app.openapi
    token = settings.api_token is not None

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        rewrite(schema, token=token)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


@dataclass(frozen=True)
class DocumentedPath:
    """A path of the document that a request's path matched, with what the request's path fills in."""

    template: str
    methods: frozenset[str]
    params: dict[str, str]


def match_path(schema: dict[str, Any], path: str) -> DocumentedPath | None:
    """The documented path (and its methods) a request's path is an instance of, if any.

    A path written out wins over a template it is also an instance of (``/api/snapshots/run-tests``
    over ``/api/snapshots/{snapshot_id}``).
    """
    paths: dict[str, Any] = schema.get("paths", {})
    for template, operations in sorted(paths.items(), key=lambda item: item[0] != path):
        pattern: re.Pattern[str] = compile_path(template)[0]
        found = pattern.fullmatch(path)
        if found is not None:
            methods = frozenset(m.upper() for m in operations if m in ("get", "put", "post", "delete", "patch"))
            return DocumentedPath(template, methods, found.groupdict())
    return None
