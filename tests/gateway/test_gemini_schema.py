"""JSON Schema to Gemini's ``Schema``: what pydantic and hand-written schemas carry."""

from __future__ import annotations

from typing import Any

import pytest

from modelyard.errors import BadRequestError
from modelyard.gateway.adapters.gemini_schema import to_gemini_schema


def test_refs_are_inlined_with_their_siblings() -> None:
    schema = {
        "type": "object",
        "properties": {
            "home": {"$ref": "#/$defs/Place", "description": "Where they live"},
            "work": {"allOf": [{"$ref": "#/definitions/Place"}], "description": "Office"},
        },
        "$defs": {"Place": {"type": "object", "properties": {"city": {"type": "string"}}}},
        "definitions": {"Place": {"type": "object", "properties": {"city": {"type": "string"}}}},
    }
    place = {
        "type": "OBJECT",
        "properties": {"city": {"type": "STRING"}},
        "propertyOrdering": ["city"],
    }
    assert to_gemini_schema(schema)["properties"] == {
        "home": {**place, "description": "Where they live"},
        "work": {**place, "description": "Office"},
    }


@pytest.mark.parametrize(
    ("schema", "converted"),
    [
        ({"type": ["integer", "null"]}, {"type": "INTEGER", "nullable": True}),
        (
            {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
            {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}], "nullable": True},
        ),
        ({"oneOf": [{"type": "boolean"}]}, {"type": "BOOLEAN"}),
        ({"const": "yes"}, {"type": "STRING", "format": "enum", "enum": ["yes"]}),
        ({"type": "integer", "enum": [1, 2]}, {"type": "INTEGER"}),
        ({"type": "string", "format": "email", "maxLength": 9}, {"type": "STRING", "maxLength": 9}),
        ({"type": "number", "format": "double"}, {"type": "NUMBER", "format": "double"}),
        (
            {"type": "array", "items": {"type": "string"}, "minItems": 1, "examples": ["a"]},
            {"type": "ARRAY", "items": {"type": "STRING"}, "minItems": 1},
        ),
        ({}, {}),
    ],
)
def test_shapes(schema: dict[str, Any], converted: dict[str, Any]) -> None:
    assert to_gemini_schema(schema) == converted


@pytest.mark.parametrize(
    ("schema", "says"),
    [
        ({"$ref": "#/$defs/Missing"}, "does not name"),
        ({"type": "object", "allOf": [{"type": "object"}, {"type": "object"}]}, "allOf"),
        ({"type": "date"}, "unknown type"),
        ({"properties": {"a": 3}}, "JSON object"),
        (
            {"$defs": {"A": {"properties": {"b": {"$ref": "#/$defs/A"}}}}, "$ref": "#/$defs/A"},
            "recursive",
        ),
    ],
)
def test_what_gemini_cannot_express_is_a_400(schema: dict[str, Any], says: str) -> None:
    with pytest.raises(BadRequestError) as refused:
        to_gemini_schema(schema)
    assert refused.value.param == "response_format" and says in refused.value.message
