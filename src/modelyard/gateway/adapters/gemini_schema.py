"""JSON Schema (as OpenAI's ``response_format`` carries it) to Gemini's ``Schema``.

Gemini's ``generationConfig.responseSchema`` takes a subset of OpenAPI 3.0's schema
object, on every model of the ``v1beta`` API the adapter calls. The conversion:

- ``$ref`` to ``#/$defs/...`` (or ``#/definitions/...``), as pydantic writes nested
  models, is inlined (a recursive schema cannot be, and is a 400); siblings of a ``$ref``
  (a field's ``description``) are kept; a one-item ``allOf`` is merged;
- ``type: [t, "null"]`` and ``anyOf: [..., {"type": "null"}]`` become ``nullable: true``;
  ``oneOf`` becomes ``anyOf``; ``const`` becomes a one-value ``enum`` (Gemini's enums are
  strings: an enum of other values is left out);
- types are written in Gemini's enum names (``OBJECT``, ``STRING``…), objects get a
  ``propertyOrdering`` in the schema's order (Gemini orders them alphabetically otherwise);
- everything Gemini's ``Schema`` lacks is left out (``additionalProperties``,
  ``$schema``, ``title``, ``strict``, ``examples``…), and so are formats Gemini does not
  know (it takes ``enum`` and ``date-time`` for strings, ``int32``/``int64``,
  ``float``/``double``).
"""

from __future__ import annotations

from typing import Any

from modelyard.errors import BadRequestError

__all__ = ["to_gemini_schema"]

#: The ``Schema`` fields copied as they are (the structural ones are converted).
_KEPT = frozenset(
    {
        "description",
        "enum",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
        "default",
        "example",
    }
)
_FORMATS = frozenset({"enum", "date-time", "int32", "int64", "float", "double"})
_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
_PARAM = "response_format"


def _refused(message: str) -> BadRequestError:
    return BadRequestError(
        f"response_format.json_schema.schema: {message}", param=_PARAM, code="invalid_schema"
    )


class _Converter:
    def __init__(self, root: dict[str, Any]) -> None:
        self.definitions: dict[str, Any] = {
            **(root.get("definitions") or {}),
            **(root.get("$defs") or {}),
        }
        self.resolving: list[str] = []

    def _definition(self, ref: str) -> Any:
        for prefix in ("#/$defs/", "#/definitions/"):
            if ref.startswith(prefix) and ref[len(prefix) :] in self.definitions:
                return self.definitions[ref[len(prefix) :]]
        raise _refused(f"$ref {ref!r} does not name one of the schema's $defs.")

    def convert(self, schema: Any) -> dict[str, Any]:
        if schema is True or schema == {}:
            return {}
        if not isinstance(schema, dict):
            raise _refused("every schema must be a JSON object.")
        ref = schema.get("$ref")
        if isinstance(ref, str):
            if ref in self.resolving:
                raise _refused(f"$ref {ref!r} is recursive, which Gemini cannot express.")
            self.resolving.append(ref)
            try:
                inlined = self.convert(self._definition(ref))
            finally:
                self.resolving.pop()
            siblings = {key: value for key, value in schema.items() if key != "$ref"}
            return {**inlined, **self.convert(siblings)} if siblings else inlined
        all_of = schema.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1:
            rest = {key: value for key, value in schema.items() if key != "allOf"}
            return {**self.convert(all_of[0]), **self.convert(rest)}
        if all_of is not None:
            raise _refused("allOf with several schemas is not supported by Gemini.")
        return self._plain(schema)

    def _plain(self, schema: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        kind = schema.get("type")
        kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
        if any(item not in _TYPES for item in kinds):
            raise _refused(f"unknown type {kind!r}.")
        real = [item for item in kinds if item != "null"]
        if len(real) > 1:
            out["anyOf"] = [{"type": item.upper()} for item in real]
        elif real:
            out["type"] = real[0].upper()
        if "null" in kinds:
            out["nullable"] = True
        options = schema.get("anyOf", schema.get("oneOf"))
        if isinstance(options, list):
            converted = [
                self.convert(option)
                for option in options
                if not (isinstance(option, dict) and option.get("type") == "null")
            ]
            if len(converted) < len(options):
                out["nullable"] = True
            if len(converted) == 1:
                nullable = out.get("nullable", False)
                out.update(converted[0])
                if nullable:
                    out["nullable"] = True
            elif converted:
                out["anyOf"] = converted
        if "const" in schema:
            out["enum"] = [schema["const"]]
        for key in _KEPT & schema.keys():
            out[key] = schema[key]
        if schema.get("format") in _FORMATS:
            out["format"] = schema["format"]
        properties = schema.get("properties")
        if isinstance(properties, dict) and properties:
            out["properties"] = {name: self.convert(value) for name, value in properties.items()}
            out["propertyOrdering"] = list(properties)
            out.setdefault("type", "OBJECT")
        if isinstance(schema.get("required"), list):
            out["required"] = [str(name) for name in schema["required"]]
        if "items" in schema:
            out["items"] = self.convert(schema["items"])
        if "enum" in out:
            values = [value for value in out.pop("enum") if value is not None]
            if None in schema.get("enum", ()):
                out["nullable"] = True
            if values and all(isinstance(value, str) for value in values):
                # Gemini's enums are strings; any other enum is left to the description.
                out.update(type="STRING", format="enum", enum=values)
        return out


def to_gemini_schema(schema: Any) -> dict[str, Any]:
    """Gemini's ``responseSchema`` for the JSON Schema ``schema``, or a 400 saying what
    Gemini cannot express."""
    if not isinstance(schema, dict):
        raise _refused("must be a JSON object.")
    return _Converter(schema).convert(schema)
