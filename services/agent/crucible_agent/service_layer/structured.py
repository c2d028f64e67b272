"""Structured answers: checking a JSON schema once, validating answers against it, hashing requests."""

from __future__ import annotations

import functools
import hashlib
import json

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from crucible_agent.domain.codec import message_json
from crucible_agent.domain.model import JsonObject, LlmRequest


def hash_request(request: LlmRequest) -> str:
    """A stable hash of everything that determines a model's answer."""
    canonical = {
        "provider": request.provider,
        "model": request.model,
        "messages": [message_json(m) for m in request.messages],
        "json_schema": request.json_schema,
        "schema_name": request.schema_name,
        "tools": [{"name": t.name, "description": t.description, "parameters": t.parameters} for t in request.tools],
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@functools.lru_cache(maxsize=256)
def validator(schema_json: str) -> jsonschema_rs.Validator:
    # Compiled (Rust): validating an answer costs microseconds, not the tenth of a millisecond or
    # more the pure-Python validator took for a pipeline's evaluation schema.
    return jsonschema_rs.validator_for(json.loads(schema_json))


def check_schema(schema: JsonObject) -> str | None:
    """Why ``schema`` cannot be used for structured output, or None when it can."""
    if schema.get("type") != "object":
        return 'the schema must describe an object ("type": "object")'
    return _schema_problem(json.dumps(schema, sort_keys=True))


@functools.lru_cache(maxsize=256)
def _schema_problem(schema_json: str) -> str | None:
    # Checking against the meta-schema costs more than the call it guards; callers reuse schemas.
    try:
        Draft202012Validator.check_schema(json.loads(schema_json))
    except SchemaError as exc:
        return f"not a valid JSON schema: {exc.message}"
    return None


def parse(text: str, schema: jsonschema_rs.Validator) -> tuple[JsonObject | None, str | None]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not JSON ({exc.msg} at position {exc.pos})"
    if not isinstance(value, dict):
        return None, "not a JSON object"
    error = next(iter(sorted(schema.iter_errors(value), key=lambda e: [str(p) for p in e.instance_path])), None)
    if error is not None:
        where = "/".join(str(p) for p in error.instance_path) or "(root)"
        return None, f"{where}: {error.message}"
    return value, None
