"""The fake Gemini with ``generateContent``, ``streamGenerateContent`` (SSE) and
``batchEmbedContents``, in Google's wire format.

Replies are deterministic: ``"Echo: <last user text>"`` (set ``parts`` to answer with
other parts, e.g. a ``functionCall``), once per ``candidateCount`` candidate, cut to
``maxOutputTokens`` words with ``finishReason: MAX_TOKENS``. ``finish_reason`` overrides
the reason, ``block_reason`` blocks the prompt (no candidates,
``promptFeedback.blockReason``). Usage counts words. Like the real API, a body with an
unknown field (function parameter schemas and ``responseSchema`` included: the message
quotes the field's name), a ``system`` role in ``contents`` or a wrong embedding model name
is answered with a 400 ``INVALID_ARGUMENT``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from tests.fakes.providers import FakeGemini

__all__ = ["EMBEDDING_MODEL", "ChatGemini"]

#: Served besides the chat models (``FakeGemini.default_models``).
EMBEDDING_MODEL = "gemini-embedding-001"

_BODY_FIELDS = frozenset(
    {"contents", "systemInstruction", "generationConfig", "tools", "toolConfig", "safetySettings"}
)
_CONFIG_FIELDS = frozenset(
    {
        "temperature",
        "topP",
        "topK",
        "maxOutputTokens",
        "stopSequences",
        "seed",
        "candidateCount",
        "responseMimeType",
        "responseSchema",
        "thinkingConfig",
        "presencePenalty",
        "frequencyPenalty",
    }
)
_PART_FIELDS = frozenset({"text", "inlineData", "functionCall", "functionResponse", "fileData"})
#: The fields of Gemini's ``Schema`` (function parameters); any other is refused.
_SCHEMA_FIELDS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "items",
        "anyOf",
        "propertyOrdering",
        "minProperties",
        "maxProperties",
        "example",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "default",
    }
)


def _unknown_schema_field(schema: Any, at: str) -> tuple[str, str] | None:
    """(the first unknown field, where) in a function's parameter schema, like the real
    API's "Unknown name … at 'tools[0].function_declarations[0].parameters'"."""
    if not isinstance(schema, dict):
        return None
    for name in schema:
        if name not in _SCHEMA_FIELDS:
            return name, at
    for name, value in (schema.get("properties") or {}).items():
        found = _unknown_schema_field(value, f"{at}.properties[{name}].value")
        if found is not None:
            return found
    for number, option in enumerate(schema.get("anyOf") or []):
        found = _unknown_schema_field(option, f"{at}.any_of[{number}]")
        if found is not None:
            return found
    return _unknown_schema_field(schema.get("items"), f"{at}.items")


def _words(text: str) -> int:
    return len(text.split())


def _candidate_count(body: dict[str, Any]) -> int:
    """``generationConfig.candidateCount``: every candidate gets the same answer."""
    return int(body.get("generationConfig", {}).get("candidateCount") or 1)


def _texts(contents: list[dict[str, Any]]) -> list[str]:
    return [str(part["text"]) for c in contents for part in c.get("parts", []) if "text" in part]


class ChatGemini(FakeGemini):
    """:class:`FakeGemini` plus content generation and embeddings."""

    stream_chunks: int = 3

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if kwargs.get("models") is None:
            self.models.append(EMBEDDING_MODEL)
        self.parts: list[dict[str, Any]] | None = None
        self.finish_reason: str | None = None
        self.block_reason: str | None = None

    def routes(self) -> list[BaseRoute]:
        return [
            *super().routes(),
            Route("/v1beta/models/{model_action:path}", self.model_action, methods=["POST"]),
        ]

    async def model_action(self, request: Request) -> Response:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        model, _, action = request.path_params["model_action"].partition(":")
        if model not in self.models:
            return self.error(404, f"models/{model} is not found for API version v1beta.")
        body = await request.json()
        if action == "generateContent":
            return self.generate(body)
        if action == "streamGenerateContent":
            if request.query_params.get("alt") != "sse":
                return self.error(400, "this fake streams only with alt=sse")
            invalid = self.invalid(body)
            if invalid is not None:
                return invalid
            return StreamingResponse(self._stream(body), media_type="text/event-stream")
        if action == "batchEmbedContents":
            return self.embed(model, body)
        return self.error(404, f"Unknown action {action!r}.")

    def invalid(self, body: dict[str, Any]) -> Response | None:
        """The 400 Gemini gives a malformed body, or ``None``."""
        names = set(body) - _BODY_FIELDS
        names |= set(body.get("generationConfig", {})) - _CONFIG_FIELDS
        for content in body.get("contents", []):
            if content.get("role") not in ("user", "model"):
                return self.error(400, "Please use a valid role: user, model.")
            for part in content.get("parts", []):
                names |= set(part) - _PART_FIELDS
        if names:
            return self.error(
                400, f'Invalid JSON payload received. Unknown name "{sorted(names)[0]}".'
            )
        schema = body.get("generationConfig", {}).get("responseSchema")
        found = _unknown_schema_field(schema, "generation_config.response_schema")
        if found is not None:
            return self.error(
                400,
                f'Invalid JSON payload received. Unknown name "{found[0]}" at '
                f"'{found[1]}': Cannot find field.",
            )
        for t, tool in enumerate(body.get("tools", [])):
            for d, declaration in enumerate(tool.get("functionDeclarations", [])):
                at = f"tools[{t}].function_declarations[{d}].parameters"
                found = _unknown_schema_field(declaration.get("parameters"), at)
                if found is not None:
                    return self.error(
                        400,
                        f'Invalid JSON payload received. Unknown name "{found[0]}" at '
                        f"'{found[1]}': Cannot find field.",
                    )
        if not body.get("contents"):
            return self.error(400, "* GenerateContentRequest.contents: contents is not specified")
        return None

    def answer(self, body: dict[str, Any]) -> tuple[list[dict[str, Any]], str, dict[str, int]]:
        """(parts, finishReason, usageMetadata) for ``body``."""
        users = [c for c in body["contents"] if c["role"] == "user"]
        last = " ".join(_texts(users[-1:])) if users else ""
        parts = self.parts or [{"text": f"Echo: {last}"}]
        reason = self.finish_reason or "STOP"
        limit = body.get("generationConfig", {}).get("maxOutputTokens")
        if self.parts is None and limit is not None and _words(parts[0]["text"]) > limit:
            parts = [{"text": " ".join(parts[0]["text"].split()[:limit])}]
            reason = "MAX_TOKENS"
        system = body.get("systemInstruction", {"parts": []})
        prompt = sum(_words(t) for t in _texts([*body["contents"], system]))
        reply = sum(_words(str(part.get("text", ""))) for part in parts) or 1
        usage = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": reply,
            "totalTokenCount": prompt + reply,
        }
        return parts, reason, usage

    def generate(self, body: dict[str, Any]) -> Response:
        invalid = self.invalid(body)
        if invalid is not None:
            return invalid
        parts, reason, usage = self.answer(body)
        if self.block_reason:
            return JSONResponse(
                {
                    "promptFeedback": {"blockReason": self.block_reason},
                    "usageMetadata": {"promptTokenCount": usage["promptTokenCount"]},
                    "modelVersion": "gemini-2.5-flash",
                }
            )
        candidate = {"content": {"role": "model", "parts": parts}, "finishReason": reason}
        count = _candidate_count(body)
        return JSONResponse(
            {
                "candidates": [{**candidate, "index": index} for index in range(count)],
                "usageMetadata": usage,
                "modelVersion": "gemini-2.5-flash",
                "responseId": "fake-response-1",
            }
        )

    async def _stream(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        parts, reason, usage = self.answer(body)

        def event(data: dict[str, Any]) -> bytes:
            return f"data: {json.dumps(data)}\r\n\r\n".encode()

        if self.block_reason:
            yield event({"promptFeedback": {"blockReason": self.block_reason}})
            return
        pieces: list[dict[str, Any]] = []
        for part in parts:
            if "text" not in part:
                pieces.append(part)
                continue
            words = part["text"].split(" ")
            size = max(1, -(-len(words) // self.stream_chunks))
            for start in range(0, len(words), size):
                text = " ".join(words[start : start + size])
                pieces.append({"text": text if start == 0 else " " + text})
        partial = {"promptTokenCount": usage["promptTokenCount"]}
        count = _candidate_count(body)
        for position, piece in enumerate(pieces):
            last = position == len(pieces) - 1
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": [piece]}}
            if last:
                candidate["finishReason"] = reason
            yield event(
                {
                    "candidates": [{**candidate, "index": index} for index in range(count)],
                    "usageMetadata": usage if last else partial,
                    "modelVersion": "gemini-2.5-flash",
                    "responseId": "fake-stream-1",
                }
            )

    def embed(self, model: str, body: dict[str, Any]) -> Response:
        embeddings = []
        for item in body.get("requests", []):
            if item.get("model") != f"models/{model}":
                return self.error(
                    400,
                    f"Model name in request ({item.get('model')}) does not match the model "
                    f"in the URL (models/{model}).",
                )
            text = " ".join(part.get("text", "") for part in item["content"]["parts"])
            size = item.get("outputDimensionality", 3)
            values = [float(len(text))] + [0.5] * (size - 1)
            embeddings.append({"values": values})
        return JSONResponse({"embeddings": embeddings})
