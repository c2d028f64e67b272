"""The OpenAPI document says what the server does: its errors, its auth, its limits, its ids."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from crucible_common.inputs import MAX_EXACT_INTEGER
from crucible_gateway.openapi import INT64_MAX
from tests.unit.gateway.conftest import TOKEN, build_app, serve
from tests.unit.gateway.fakes import Fakes

METHODS = ("get", "put", "post", "delete", "patch")
UUID = "0b0d6a8e-8d55-4f8e-9d43-3f4c4b8f2a01"


def document(token: str | None = None) -> dict[str, Any]:
    _, fastapi = build_app(Fakes(), token)
    return fastapi.openapi()


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def request_schemas(
    doc: dict[str, Any], schema: dict[str, Any], where: str, seen: set[str], kind: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema of JSON type ``kind`` a request may carry, with where it is."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name in seen:
            return
        seen = seen | {name}
        schema = resolve(doc, schema)
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            yield from request_schemas(doc, option, where, seen, kind)
    if schema.get("type") == kind:
        yield where, schema
    for name, sub in schema.get("properties", {}).items():
        yield from request_schemas(doc, sub, f"{where}.{name}", seen, kind)
    if isinstance(schema.get("items"), dict):
        yield from request_schemas(doc, schema["items"], f"{where}[]", seen, kind)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from request_schemas(doc, schema["additionalProperties"], f"{where}.*", seen, kind)


def request_strings(
    doc: dict[str, Any], schema: dict[str, Any], where: str, seen: set[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    return request_schemas(doc, schema, where, seen, "string")


def test_no_operation_documents_a_422_and_each_lists_the_problems_it_answers() -> None:
    doc = document()

    for method, path, operation in operations(doc):
        responses = operation["responses"]
        assert "422" not in responses, (method, path)
        if not path.startswith("/api/"):
            continue
        for status in ("400", "503", "504"):
            content = responses[status]["content"]
            assert content == {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        has_path_id = any(p["in"] == "path" for p in operation.get("parameters", []))
        assert ("404" in responses) == (
            has_path_id
            or (method, path)
            in {
                ("post", "/api/runs"),
                ("post", "/api/sprints"),
                ("post", "/api/snapshots"),
                ("post", "/api/snapshots/run-tests"),
            }
        ), (method, path)
        assert ("413" in responses) == ("requestBody" in operation), (method, path)
        assert ("409" in responses) == (method != "get"), (method, path)
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert "Problem" in doc["components"]["schemas"]


def test_every_reference_resolves() -> None:
    doc = document()
    names = set(re.findall(r"#/components/schemas/([^\"']+)", str(doc)))

    assert names <= set(doc["components"]["schemas"])


def test_what_a_create_answers_links_to_the_operations_on_what_it_made() -> None:
    doc = document()
    made = doc["paths"]["/api/runs"]["post"]["responses"]["201"]["links"]
    targets = {link["operationRef"]: link["parameters"] for link in made.values()}
    assert targets["#/paths/~1api~1runs~1{run_id}/get"] == {"path.run_id": "$response.body#/id"}
    assert "#/paths/~1api~1runs~1{run_id}~1evaluations/get" in targets
    # A chat session made under a project lives at /api/chat-sessions/{chat_session_id}.
    sessions = doc["paths"]["/api/projects/{project_id}/chat-sessions"]["post"]["responses"]["201"]["links"]
    assert "#/paths/~1api~1chat-sessions~1{chat_session_id}~1messages/get" in {
        link["operationRef"] for link in sessions.values()
    }
    # A new project has no ProblemSpec or WorldModel until they are PUT: no link promises one.
    projects = doc["paths"]["/api/projects"]["post"]["responses"]["201"]["links"]
    assert not [link for link in projects.values() if "spec" in link["operationRef"] or "world" in link["operationRef"]]
    for link in [*made.values(), *sessions.values(), *projects.values()]:
        pointer = link["operationRef"].removeprefix("#/paths/")
        path, method = pointer.rsplit("/", 1)
        assert method in doc["paths"][path.replace("~1", "/").replace("~0", "~")]


def test_bearer_auth_is_declared_only_when_a_token_is_set() -> None:
    without, with_token = document(), document(TOKEN)

    assert "securitySchemes" not in without.get("components", {})
    assert all("security" not in op and "401" not in op["responses"] for _, _, op in operations(without))
    assert with_token["components"]["securitySchemes"] == {"HTTPBearer": {"type": "http", "scheme": "bearer"}}
    for _, path, operation in operations(with_token):
        if path.startswith("/api/"):
            assert operation["security"] == [{"HTTPBearer": []}]
            assert "401" in operation["responses"]


def test_bounds_are_integers_and_a_json_bodys_64_bit_one_is_the_last_exact_double() -> None:
    text = str(document())

    assert not re.search(r"'(minimum|maximum|exclusiveMinimum|exclusiveMaximum)': -?\d+\.0\b", text)
    # What the input guard lets through in any body (2^53), not what int64 could hold.
    assert f"'maximum': {MAX_EXACT_INTEGER}" in text
    assert f"'maximum': {INT64_MAX}" not in text


def test_every_id_a_request_names_is_a_uuid() -> None:
    doc = document()

    for method, path, operation in operations(doc):
        for parameter in operation.get("parameters", []):
            if parameter["name"].endswith("_id"):
                formats = {s.get("format") for _, s in request_strings(doc, parameter["schema"], "", set())}
                assert "uuid" in formats, (method, path, parameter["name"])


def test_every_free_text_a_request_carries_has_a_maximum_length() -> None:
    """Strings are bounded: by a length, a set of values, or a format (a UUID, a date)."""
    doc = document()
    unbounded = []
    for method, path, operation in operations(doc):
        body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        sources = [(f"{method} {path} body", body)] if body else []
        sources += [(f"{method} {path} {p['name']}", p["schema"]) for p in operation.get("parameters", [])]
        for where, schema in sources:
            for field, string in request_strings(doc, schema, where, set()):
                if not ({"maxLength", "enum", "const", "format"} & set(string)):
                    unbounded.append(field)

    assert unbounded == []


def test_every_integer_a_request_carries_is_bounded() -> None:
    """Bounded by what the services' messages hold, so an absurd number is a 400, never a crash."""
    doc = document()
    unbounded = []
    for method, path, operation in operations(doc):
        body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        sources = [(f"{method} {path} body", body)] if body else []
        sources += [(f"{method} {path} {p['name']}", p["schema"]) for p in operation.get("parameters", [])]
        for where, schema in sources:
            for field, integer in request_schemas(doc, schema, where, set(), "integer"):
                if not {"minimum", "maximum"} <= set(integer):
                    unbounded.append(field)

    assert unbounded == []


@pytest.mark.parametrize("token", [None, TOKEN])
async def test_a_405_allows_every_method_of_the_path(token: str | None) -> None:
    doc = document(token)
    headers = {"Authorization": f"Bearer {TOKEN}"} if token else {}
    async with serve(Fakes(), token) as http:
        for path, item in doc["paths"].items():
            documented = {m.upper() for m in item if m in METHODS}
            url = re.sub(r"\{[^}]+\}", UUID, path)
            # Not a method another path answers at this URL (DELETE /api/snapshots/run-tests is the
            # DELETE of a snapshot whose id is "run-tests": a 400).
            routed = {
                m.upper()
                for other, methods in doc["paths"].items()
                if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", other), url)
                for m in methods
            }
            unsupported = next(m for m in ("DELETE", "PATCH", "PUT", "POST", "GET") if m not in documented | routed)

            response: httpx.Response = await http.request(unsupported, url, headers=headers)

            assert response.status_code == 405, (unsupported, path, response.text)
            allowed = set(response.headers["Allow"].split(", "))
            assert allowed == documented | ({"HEAD"} if "GET" in documented else set()), path


async def test_head_answers_as_get_does_without_the_body() -> None:
    """Every path that answers GET answers HEAD with the GET's status and headers and no body (a
    health check, a link checker); a path that does not answer GET refuses HEAD as it refuses GET."""
    doc = document(None)
    async with serve(Fakes(), None) as http:
        for url in ["/healthz", "/", "/projects", *(re.sub(r"\{[^}]+\}", UUID, p) for p in doc["paths"])]:
            got: httpx.Response = await http.get(url)
            head: httpx.Response = await http.head(url)

            assert head.status_code == got.status_code, url
            assert head.content == b"", url
            assert head.headers.get("content-type") == got.headers.get("content-type"), url
            if got.status_code == 405:
                assert head.headers["Allow"] == got.headers["Allow"], url
        # Not the MCP endpoint, whose GET is a stream that never ends: HEAD is refused there at once.
        mcp: httpx.Response = await asyncio.wait_for(http.head("/mcp"), timeout=5)
        assert mcp.status_code == 405
