"""Write the component schemas the tests validate against (and all they reference) from
OpenAI's published OpenAPI description to ``tests/specs/openai-schemas.json``.

    .venv/bin/python tools/extract_openai_schemas.py /path/to/openai-openapi.yaml

The full description (about 3 MB) is not kept in the repository; see
``tests/specs/README.md`` for where it comes from.
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path
from typing import Any

import yaml

#: The schemas the tests name (``tests/openai_spec.py``); their references come along.
ROOTS = (
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
    "CreateCompletionResponse",
    "CreateEmbeddingResponse",
    "ErrorResponse",
    "ListModelsResponse",
    "Model",
    "Response",
    "ResponseItemList",
    "ResponseStreamEvent",
)
OUT = Path(__file__).resolve().parents[1] / "tests" / "specs" / "openai-schemas.json"


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = set()
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[-1])
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node)) if node else set()
    return set()


def _plain(node: Any) -> Any:
    """JSON-ready: YAML dates (in examples) as text; examples dropped (not validated)."""
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items() if k not in ("example", "examples")}
    if isinstance(node, list):
        return [_plain(item) for item in node]
    if isinstance(node, (datetime.date, datetime.datetime)):
        return node.isoformat()
    return node


def main(source: str) -> None:
    with open(source, encoding="utf-8") as file:
        spec = yaml.load(file, Loader=yaml.CSafeLoader)
    schemas = spec["components"]["schemas"]
    wanted: set[str] = set()
    todo = list(ROOTS)
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted.add(name)
        todo.extend(_refs(schemas[name]) - wanted)
    kept = {name: _plain(schemas[name]) for name in sorted(wanted)}
    info = {"title": spec["info"]["title"], "version": spec["info"]["version"]}
    OUT.write_text(json.dumps({"info": info, "schemas": kept}, separators=(",", ":")) + "\n")
    print(f"{len(kept)} schemas, {OUT.stat().st_size:,} bytes -> {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
