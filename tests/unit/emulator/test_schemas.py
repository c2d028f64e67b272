"""The generic generator and template fitting, over schemas that are awkward on purpose."""

from __future__ import annotations

import random
from typing import Any

import jsonschema
import pytest

from crucible_emulator.conversation import InvalidRequest
from crucible_emulator.schemas import SchemaFiller, check_schema, validator

VOCABULARY = ["garden", "tomatoes", "basil", "water", "sunlight", "soil"]

TRICKY_SCHEMAS: dict[str, dict[str, Any]] = {
    "empty": {},
    "string_bounds": {"type": "string", "minLength": 40, "maxLength": 45},
    "short_string": {"type": "string", "maxLength": 3},
    "integer_exclusive": {"type": "integer", "exclusiveMinimum": 3, "exclusiveMaximum": 5},
    "integer_multiple": {"type": "integer", "minimum": 10, "maximum": 40, "multipleOf": 7},
    "negative_number": {"type": "number", "maximum": -100},
    "number_exclusive": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.001},
    "draft4_exclusive": {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "number",
        "minimum": 1,
        "exclusiveMinimum": True,
        "maximum": 2,
    },
    "enum_mixed": {"enum": ["a", 1, None, {"k": "v"}]},
    "const": {"const": {"fixed": [1, 2]}},
    "nullable_list": {"type": ["null", "array"], "items": {"type": "boolean"}, "minItems": 2},
    "unique_items": {
        "type": "array",
        "items": {"type": "integer", "minimum": 0, "maximum": 3},
        "uniqueItems": True,
        "minItems": 4,
    },
    "unique_strings": {"type": "array", "items": {"type": "string"}, "uniqueItems": True, "minItems": 5},
    "prefix_items": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": False},
    "max_items_zero": {"type": "array", "maxItems": 0},
    "object_min_properties": {"type": "object", "minProperties": 3, "additionalProperties": {"type": "integer"}},
    "object_max_properties": {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}, "c": {"type": "string"}},
        "required": ["a"],
        "maxProperties": 1,
    },
    "required_without_properties": {"type": "object", "required": ["alpha", "beta"]},
    "map_of_objects": {
        "type": "object",
        "additionalProperties": {"type": "object", "properties": {"score": {"type": "number"}}, "required": ["score"]},
    },
    "all_of": {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "integer", "minimum": 5}}, "required": ["a"]},
            {"properties": {"a": {"maximum": 6}, "b": {"type": "string", "minLength": 2}}, "required": ["b"]},
        ]
    },
    "one_of_exclusive": {"oneOf": [{"type": "integer"}, {"type": "number"}]},
    "one_of_objects": {
        "oneOf": [
            {"type": "object", "properties": {"kind": {"const": "a"}, "x": {"type": "integer"}}, "required": ["kind"]},
            {"type": "object", "properties": {"kind": {"const": "b"}, "y": {"type": "string"}}, "required": ["kind"]},
        ]
    },
    "any_of_with_siblings": {
        "type": "object",
        "anyOf": [{"required": ["p"]}, {"required": ["q"]}],
        "properties": {"p": {"type": "string"}},
    },
    "ref_defs": {
        "$defs": {"item": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}},
        "type": "array",
        "items": {"$ref": "#/$defs/item"},
        "minItems": 2,
    },
    "ref_definitions_chain": {
        "definitions": {"a": {"$ref": "#/definitions/b"}, "b": {"type": "integer", "minimum": 100}},
        "$ref": "#/definitions/a",
    },
    "recursive_tree": {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "label": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                },
                "required": ["label", "children"],
            }
        },
        "$ref": "#/$defs/node",
    },
    "recursive_nullable": {
        "$defs": {
            "link": {
                "type": "object",
                "properties": {
                    "value": {"type": "integer"},
                    "next": {"anyOf": [{"$ref": "#/$defs/link"}, {"type": "null"}]},
                },
                "required": ["value", "next"],
                "additionalProperties": False,
            }
        },
        "$ref": "#/$defs/link",
    },
    "boolean_schemas": {"type": "object", "properties": {"anything": True}, "required": ["anything"]},
    "formats": {
        "type": "object",
        "properties": {
            "when": {"type": "string", "format": "date-time"},
            "day": {"type": "string", "format": "date"},
            "mail": {"type": "string", "format": "email"},
            "link": {"type": "string", "format": "uri"},
            "uid": {"type": "string", "format": "uuid"},
        },
        "required": ["when", "day", "mail", "link", "uid"],
    },
    "strict_openai": {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "score": {"type": "number"},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["x", "y"]}},
            "extra": {"type": ["string", "null"]},
        },
        "required": ["title", "score", "tags", "extra"],
        "additionalProperties": False,
    },
}


def filler(schema: dict[str, Any], seed: int = 1) -> SchemaFiller:
    return SchemaFiller(schema, VOCABULARY, random.Random(seed))


@pytest.mark.parametrize("name", sorted(TRICKY_SCHEMAS))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_values_validate(name: str, seed: int) -> None:
    schema = TRICKY_SCHEMAS[name]
    value = filler(schema, seed).generate(schema)
    assert validator(schema).is_valid(value), (name, value)


def test_generated_strings_come_from_the_vocabulary() -> None:
    schema = {"type": "object", "properties": {"description": {"type": "string"}}, "required": ["description"]}
    words = filler(schema).generate(schema)["description"].rstrip(".").lower().split()
    assert words
    assert set(words) <= set(VOCABULARY)


def test_generation_is_deterministic_per_seed() -> None:
    schema = TRICKY_SCHEMAS["strict_openai"]
    assert filler(schema, 5).generate(schema) == filler(schema, 5).generate(schema)


def test_conform_keeps_what_fits_and_repairs_the_rest() -> None:
    schema = TRICKY_SCHEMAS["strict_openai"]
    hint = {"title": "Kept", "score": "not a number", "tags": ["x", "x-ish", "y"], "unexpected": 1}
    value = filler(schema).conform(schema, hint)
    assert validator(schema).is_valid(value)
    assert value["title"] == "Kept"
    assert "unexpected" not in value
    assert value["tags"][0] == "x"


def test_conform_applies_bounds() -> None:
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "maximum": 10},
            "items": {"type": "array", "maxItems": 2, "minItems": 1},
            "text": {"type": "string", "maxLength": 8},
        },
    }
    value = filler(schema).conform(schema, {"n": 12.0, "items": [1, 2, 3], "text": "much too long a text"})
    jsonschema.validate(value, schema)
    assert value["n"] == 10
    assert value["items"] == [1, 2]


def test_conform_picks_the_matching_union_branch() -> None:
    schema = {"anyOf": [{"type": "null"}, {"type": "object", "properties": {"a": {"type": "integer"}}}]}
    assert filler(schema).conform(schema, None) is None
    assert filler(schema).conform(schema, {"a": 1}) == {"a": 1}


def test_invalid_schemas_are_rejected_as_bad_requests() -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_schema({"type": "no-such-type"}, "response_format.json_schema.schema")
    assert caught.value.param == "response_format.json_schema.schema"
    with pytest.raises(InvalidRequest):
        check_schema(["not", "an", "object"], "tools")


def test_validators_are_compiled_once_per_schema() -> None:
    schema = {"type": "object", "properties": {"cache_probe": {"type": "integer"}}}
    assert validator(schema) is validator(dict(schema))
