"""Validate what the gateway returns against OpenAI's published OpenAPI description.

``tests/specs/openai-schemas.json`` holds the component schemas the tests use, and all
they reference, extracted from the file OpenAI publishes by
``tools/extract_openai_schemas.py`` (see ``tests/specs/README.md``). They are OpenAPI 3.1
with OpenAPI 3.0's ``nullable: true`` in places; those are turned into JSON Schema
``null`` types here.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema_rs

__all__ = [
    "SPEC_PATH",
    "assert_valid",
    "assert_valid_completion_event",
    "assert_valid_stream_event",
    "spec_errors",
]

SPEC_PATH = Path(__file__).parent / "specs" / "openai-schemas.json"


def _nullable_to_null(node: Any) -> Any:
    if isinstance(node, list):
        return [_nullable_to_null(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _nullable_to_null(value) for key, value in node.items()}
    if converted.pop("nullable", False):
        kind = converted.get("type")
        if isinstance(kind, str):
            converted["type"] = [kind, "null"]
        elif isinstance(kind, list) and "null" not in kind:
            converted["type"] = [*kind, "null"]
        elif "$ref" in converted or "anyOf" in converted or "oneOf" in converted:
            converted = {"anyOf": [converted, {"type": "null"}]}
        if "enum" in converted and None not in converted["enum"]:
            converted["enum"] = [*converted["enum"], None]
    return converted


@functools.cache
def _components() -> dict[str, Any]:
    extract = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return {"schemas": _nullable_to_null(extract["schemas"])}


@functools.cache
def _validator(schema: str) -> Any:
    components = _components()
    if schema not in components["schemas"]:
        raise KeyError(f"OpenAI's spec has no component schema {schema!r}")
    return jsonschema_rs.Draft202012Validator(
        {"$ref": f"#/components/schemas/{schema}", "components": components}
    )


def spec_errors(schema: str, instance: Any) -> list[str]:
    """What is wrong with ``instance`` as the component ``schema`` (empty: it is valid)."""
    return [
        f"{error.instance_path}: {error.message}"
        for error in _validator(schema).iter_errors(instance)
    ]


def assert_valid(schema: str, instance: Any) -> None:
    """Fail, listing every violation, unless ``instance`` is a valid ``schema``."""
    errors = spec_errors(schema, instance)
    assert not errors, f"not a valid {schema}:\n" + "\n".join(errors[:20])


@functools.cache
def _event_schemas() -> dict[str, str]:
    """Responses stream event ``type`` → the component schema that describes it."""
    schemas = _components()["schemas"]
    found: dict[str, str] = {}
    for option in schemas["ResponseStreamEvent"]["anyOf"]:
        name = option["$ref"].rsplit("/", 1)[-1]
        kind = schemas[name].get("properties", {}).get("type", {})
        for value in kind.get("enum", []) or ([kind["const"]] if "const" in kind else []):
            found[value] = name
    return found


def assert_valid_stream_event(event: dict[str, Any]) -> None:
    """Fail unless ``event`` is a valid Responses stream event of its ``type``."""
    schema = _event_schemas().get(event.get("type", ""))
    assert schema, f"{event.get('type')!r} is not a Responses stream event type"
    assert_valid(schema, event)


def assert_valid_completion_event(event: dict[str, Any]) -> None:
    """Fail unless ``event`` is a valid ``CreateCompletionResponse`` — one deviation
    allowed: a choice's ``finish_reason`` may be null in a stream until that choice ends.

    The spec shares one schema between the answer and its stream events and requires a
    reason; OpenAI's own streams (and the openai SDK's handling of them) send null.
    """
    open_choices = [
        ["choices", i, "finish_reason"]
        for i, choice in enumerate(event.get("choices") or [])
        if choice.get("finish_reason") is None
    ]
    errors = [
        f"{error.instance_path}: {error.message}"
        for error in _validator("CreateCompletionResponse").iter_errors(event)
        if list(error.instance_path) not in open_choices
    ]
    assert not errors, "not a valid CreateCompletionResponse:\n" + "\n".join(errors[:20])
