"""Google Gemini's REST API (``generateContent``) behind the OpenAI format.

Calls ``{base}/v1beta/models/{model}:generateContent``, ``:streamGenerateContent?alt=sse``
and ``:batchEmbedContents`` with the key in the ``x-goog-api-key`` header (never in the
URL, where it would end up in logs).

Requests: system/developer messages become ``systemInstruction``; user turns keep the role
``user``, assistant turns become ``model``; consecutive turns of one role are merged. Text
parts map to ``text``, ``data:`` image URLs to ``inlineData``, assistant ``tool_calls`` to
``functionCall`` parts and ``tool`` messages to user-role ``functionResponse`` parts (named
after the earlier call with that id). ``generationConfig`` takes ``temperature``,
``top_p``, ``max_tokens`` / ``max_completion_tokens``, ``stop``, ``seed``, ``n``
(``candidateCount``), ``reasoning_effort`` (a ``thinkingConfig.thinkingBudget``, see
:data:`THINKING_BUDGETS`) and ``response_format``: ``json_object`` sets
``responseMimeType: application/json``, ``json_schema`` also sets ``responseSchema``
(converted by :mod:`~modelyard.gateway.adapters.gemini_schema`: ``responseSchema`` works
on every model of ``v1beta``, unlike ``responseJsonSchema``). ``tools`` go into
``functionDeclarations`` and ``tool_choice`` into ``toolConfig``. Refused with a 400: any
other parameter, image URLs that are not ``data:`` URLs (Gemini needs uploaded files for
those), audio and file parts, token-id embedding input.

Answers: each candidate is a choice (its ``index``): its text parts joined,
``functionCall`` parts as ``tool_calls`` (ids ``call_0``, ``call_1``… unless Gemini gives
one), ``finishReason`` as ``finish_reason``; ``usageMetadata`` becomes ``usage`` (thinking
tokens count as completion tokens, as OpenAI counts reasoning tokens). A prompt Gemini
blocks comes back as an empty completion with ``finish_reason: "content_filter"``.

Model ids: ``name``, ``models/name`` or ``tunedModels/name`` (tuned models are called at
``v1beta/tunedModels/name``); anything else is a 400 before any call (see
:func:`model_resource`).

Errors: Gemini answers an invalid or expired key with HTTP 400 and an ``ErrorInfo`` detail
with reason ``API_KEY_INVALID`` (message "API key not valid…" / "API key expired…"); such
a 400 is re-classified as ``unauthorized`` so the dispatcher tries the next key. Only the
structured reason counts: a 400's message can quote the client's request, so a client
cannot make its own bad request look like a broken key. 403 ``PERMISSION_DENIED`` is
``unauthorized`` and 429 ``RESOURCE_EXHAUSTED`` ``rate_limited`` already by status.
Embeddings report 0 prompt tokens: ``batchEmbedContents`` returns no token counts.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson

from modelyard.errors import BadRequestError
from modelyard.gateway.adapters import openai_shapes
from modelyard.gateway.adapters.base import Adapter, Target, refuse_unsupported
from modelyard.gateway.adapters.gemini_schema import to_gemini_schema
from modelyard.gateway.adapters.model_ids import model_path
from modelyard.gateway.adapters.wire import post_json, post_sse, stream_error
from modelyard.gateway.schemas import ChatCompletionRequest, ChatMessage, EmbeddingRequest
from modelyard.gateway.upstream_errors import UpstreamError
from modelyard.providers.kinds import ConnectionCheck, Endpoint, ProviderKind, ProviderKindSpec

__all__ = [
    "GeminiAdapter",
    "finish_reason",
    "model_resource",
    "to_gemini_request",
    "to_openai_completion",
]

#: OpenAI parameters this adapter translates.
SUPPORTED_PARAMETERS = (
    "n",
    "reasoning_effort",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "seed",
    "tools",
    "tool_choice",
    "response_format",
)

_FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}

#: ``reasoning_effort`` → ``thinkingConfig.thinkingBudget`` (tokens; 0 turns thinking off,
#: which some models refuse). The steps follow Google's own OpenAI-compatible endpoint.
THINKING_BUDGETS = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}

_TOOL_CHOICE_MODES = {"auto": "AUTO", "required": "ANY", "none": "NONE"}


def google_auth(api_key: str | None, organization: str | None = None) -> dict[str, str]:
    """Google's header: the key in ``x-goog-api-key`` (never in the URL)."""
    return {"x-goog-api-key": api_key} if api_key else {}


def _headers(target: Target) -> dict[str, str]:
    return google_auth(target.api_key)


#: The collections a Gemini model id may name (``models/…`` is the default).
_COLLECTIONS = ("models", "tunedModels")

#: ``ErrorInfo`` reasons of a 400 that rejects the key (not the request).
_KEY_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED"})


def model_resource(model: str) -> str:
    """``models/{name}`` or ``tunedModels/{name}`` for ``model``, or a 400 (nothing in the
    id may add a path segment, a ``:`` action, a query or a fragment)."""
    collection, slash, name = model.partition("/")
    if not slash or collection not in _COLLECTIONS:
        collection, name = "models", model
    return f"{collection}/{model_path(name, api='Gemini')}"


def _model_url(target: Target, action: str) -> str:
    base = target.base_url.rstrip("/").removesuffix("/v1beta")
    return f"{base}/v1beta/{model_resource(target.model)}:{action}"


def _is_key_error(error: UpstreamError) -> bool:
    """Whether a 400 is Gemini's way of saying the key is invalid or expired: its
    structured ``ErrorInfo`` reason, never the message text (which can quote the request)."""
    return error.status == 400 and error.reason in _KEY_REASONS


def _reclassified(error: UpstreamError) -> UpstreamError:
    if _is_key_error(error):
        return UpstreamError(
            "unauthorized", error.message, status=error.status, retry_after=error.retry_after
        )
    return error


# -- requests ---------------------------------------------------------------------------


def _text_of(content: str | list[dict[str, Any]] | None, role: str) -> str:
    """The text of a message whose parts may only be text."""
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for part in content:
        if part.get("type") not in ("text", "refusal"):
            raise BadRequestError(
                f"{role} messages may only contain text parts for Gemini.", param="messages"
            )
        texts.append(str(part.get("text") or part.get("refusal") or ""))
    return "".join(texts)


def _image_part(part: dict[str, Any]) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url.startswith("data:"):
        raise BadRequestError(
            "Gemini accepts images only inline, as data: URLs (data:image/png;base64,...); "
            "remote image URLs would need to be uploaded with Google's Files API first.",
            param="messages",
            code="unsupported_content",
        )
    header, _, data = url[5:].partition(",")
    mime_type, _, encoding = header.partition(";")
    if encoding != "base64" or not mime_type or not data:
        raise BadRequestError(
            "An image data: URL must be base64-encoded with a MIME type.", param="messages"
        )
    return {"inlineData": {"mimeType": mime_type, "data": data}}


def _user_parts(content: str | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}]
    parts = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            parts.append({"text": str(part.get("text") or "")})
        elif kind == "image_url":
            parts.append(_image_part(part))
        else:
            raise BadRequestError(
                f"Content parts of type {kind!r} are not supported by the Gemini API.",
                param="messages",
                code="unsupported_content",
            )
    return parts


def _function_call_part(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    name = function.get("name")
    raw = function.get("arguments") or "{}"
    try:
        args = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        args = None
    if not name or not isinstance(args, dict):
        raise BadRequestError(
            "Every assistant tool call needs a function name and JSON-object arguments.",
            param="messages",
        )
    return {"functionCall": {"name": name, "args": args}}


def _contents(
    messages: Iterable[ChatMessage],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(``systemInstruction`` parts, ``contents``), consecutive same-role turns merged."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}

    def add(role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})

    for message in messages:
        if message.role in ("system", "developer"):
            system.append({"text": _text_of(message.content, message.role)})
        elif message.role == "user":
            add("user", _user_parts(message.content))
        elif message.role == "assistant":
            text = _text_of(message.content, "assistant")
            parts: list[dict[str, Any]] = [{"text": text}] if text else []
            for call in message.tool_calls or []:
                parts.append(_function_call_part(call))
                if call.get("id"):
                    call_names[str(call["id"])] = parts[-1]["functionCall"]["name"]
            add("model", parts)
        else:  # "tool", or the legacy "function" role (which names its function)
            name = call_names.get(message.tool_call_id or "") or message.name
            if not name:
                raise BadRequestError(
                    f"The tool message for tool_call_id {message.tool_call_id!r} answers no "
                    "earlier assistant tool call.",
                    param="messages",
                )
            response = {"content": _text_of(message.content, "tool")}
            add("user", [{"functionResponse": {"name": name, "response": response}}])
    if not contents:
        raise BadRequestError(
            "Gemini needs at least one user or assistant message besides system messages.",
            param="messages",
        )
    return system, contents


def _tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    declarations = []
    for tool in tools:
        function = tool.get("function")
        if tool.get("type") != "function" or not isinstance(function, dict):
            raise BadRequestError("Gemini supports only tools of type 'function'.", param="tools")
        declaration = {"name": function.get("name")}
        for key in ("description", "parameters"):
            if function.get(key) is not None:
                declaration[key] = function[key]
        declarations.append(declaration)
    return [{"functionDeclarations": declarations}]


def _tool_config(choice: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(choice, str):
        if choice not in _TOOL_CHOICE_MODES:
            raise BadRequestError(f"Unknown tool_choice {choice!r}.", param="tool_choice")
        return {"functionCallingConfig": {"mode": _TOOL_CHOICE_MODES[choice]}}
    name = (choice.get("function") or {}).get("name")
    if choice.get("type") != "function" or not name:
        raise BadRequestError(
            "tool_choice must be auto, required, none or a named function.", param="tool_choice"
        )
    return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}


def _response_format(response_format: Any) -> dict[str, Any]:
    """The ``generationConfig`` fields of an OpenAI ``response_format``."""
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise BadRequestError(
                "response_format json_schema needs json_schema.schema, the JSON Schema the "
                "answer must follow (or use type json_object).",
                param="response_format",
            )
        return {"responseMimeType": "application/json", "responseSchema": to_gemini_schema(schema)}
    raise BadRequestError(
        "response_format.type must be 'text', 'json_object' or 'json_schema'.",
        param="response_format",
        code="unsupported_parameter",
    )


def _thinking_config(effort: Any) -> dict[str, Any]:
    if effort not in THINKING_BUDGETS:
        raise BadRequestError(
            f"reasoning_effort must be one of {', '.join(THINKING_BUDGETS)}.",
            param="reasoning_effort",
        )
    return {"thinkingBudget": THINKING_BUDGETS[effort]}


def _generation_config(request: ChatCompletionRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.output_limit() is not None:
        config["maxOutputTokens"] = request.output_limit()
    if request.stop_list():
        config["stopSequences"] = request.stop_list()
    if request.seed is not None:
        config["seed"] = request.seed
    if request.n is not None and request.n > 1:
        config["candidateCount"] = request.n
    extra = request.extra_params()
    if extra.get("response_format") is not None:
        config.update(_response_format(extra["response_format"]))
    if extra.get("reasoning_effort") is not None:
        config["thinkingConfig"] = _thinking_config(extra["reasoning_effort"])
    return config


def to_gemini_request(request: ChatCompletionRequest) -> dict[str, Any]:
    """The ``generateContent`` body for ``request``; a 400 for what Gemini cannot honour."""
    refuse_unsupported(request, "Gemini", SUPPORTED_PARAMETERS)
    system, contents = _contents(request.messages)
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    config = _generation_config(request)
    if config:
        body["generationConfig"] = config
    if request.tools:
        body["tools"] = _tools(request.tools)
    if request.tool_choice is not None:
        body["toolConfig"] = _tool_config(request.tool_choice)
    return body


# -- answers ----------------------------------------------------------------------------


def finish_reason(gemini_reason: str | None, *, tool_calls: bool = False) -> str:
    """OpenAI's ``finish_reason`` for Gemini's ``finishReason``."""
    if tool_calls:
        return "tool_calls"
    return _FINISH_REASONS.get(gemini_reason or "STOP", "stop")


def _usage(metadata: Any) -> dict[str, Any]:
    if not isinstance(metadata, dict):
        metadata = {}
    prompt = int(metadata.get("promptTokenCount") or 0)
    thoughts = int(metadata.get("thoughtsTokenCount") or 0)
    completion = int(metadata.get("candidatesTokenCount") or 0) + thoughts
    return openai_shapes.usage(
        prompt,
        completion,
        total=int(metadata.get("totalTokenCount") or prompt + completion),
        reasoning=thoughts or None,
    )


def _candidates(answer: dict[str, Any]) -> list[dict[str, Any] | None]:
    """The candidates in ``index`` order, ``[None]`` for a blocked prompt; a protocol
    error otherwise."""
    candidates = answer.get("candidates")
    if isinstance(candidates, list) and candidates:
        found = [candidate for candidate in candidates if isinstance(candidate, dict)]
        if found:
            ordered = sorted(found, key=_index)
            return [*ordered]
    if (answer.get("promptFeedback") or {}).get("blockReason"):
        return [None]
    raise UpstreamError("protocol", "Gemini's answer has no candidates")


def _index(candidate: dict[str, Any]) -> int:
    index = candidate.get("index")
    return index if isinstance(index, int) and index >= 0 else 0


def _parts(candidate: dict[str, Any] | None) -> list[dict[str, Any]]:
    parts = ((candidate or {}).get("content") or {}).get("parts") or []
    return [part for part in parts if isinstance(part, dict) and not part.get("thought")]


def _tool_call(part: dict[str, Any], index: int) -> dict[str, Any]:
    call = part["functionCall"]
    return openai_shapes.tool_call(
        str(call.get("id") or f"call_{index}"),
        str(call.get("name", "")),
        orjson.dumps(call.get("args") or {}).decode(),
    )


def _completion_id(answer: dict[str, Any]) -> str:
    response_id = answer.get("responseId")
    return openai_shapes.completion_id(str(response_id) if response_id else None)


def _choice(candidate: dict[str, Any] | None, index: int) -> dict[str, Any]:
    parts = _parts(candidate)
    text = "".join(str(part["text"]) for part in parts if "text" in part)
    calls = [part for part in parts if isinstance(part.get("functionCall"), dict)]
    message = openai_shapes.assistant_message(
        text if text or not calls else None,
        [_tool_call(part, number) for number, part in enumerate(calls)],
    )
    reason = (
        "content_filter"
        if candidate is None
        else finish_reason(candidate.get("finishReason"), tool_calls=bool(calls))
    )
    return openai_shapes.choice(message, reason, index)


def to_openai_completion(answer: Any, model: str) -> dict[str, Any]:
    """A ``GenerateContentResponse`` as an OpenAI ``chat.completion``, a choice per
    candidate."""
    if not isinstance(answer, dict):
        raise UpstreamError("protocol", "Gemini's answer is not a JSON object")
    candidates = _candidates(answer)
    return openai_shapes.completion_of(
        id=_completion_id(answer),
        model=str(answer.get("modelVersion") or model),
        choices=[_choice(candidate, index) for index, candidate in enumerate(candidates)],
        usage=_usage(answer.get("usageMetadata")),
    )


class _StreamTranslator:
    """Turns the events of one ``streamGenerateContent`` call into OpenAI chunks, one
    choice per candidate ``index`` (several when ``candidateCount`` asked for them)."""

    def __init__(self, model: str) -> None:
        #: Its id and model are learnt from the first event.
        self.envelope = openai_shapes.ChunkEnvelope(id="", model=model)
        #: Per choice: the tool calls so far and the finish reason.
        self.tool_calls: dict[int, int] = {}
        self.reasons: dict[int, str | None] = {}
        self.blocked = False
        self.usage: Any = None

    def _started(self, index: int) -> list[dict[str, Any]]:
        """The role chunk of a choice not seen before (nothing for a known one)."""
        if index in self.tool_calls:
            return []
        self.tool_calls[index] = 0
        self.reasons[index] = None
        return [self.envelope.chunk({"role": "assistant", "content": ""}, index=index)]

    def feed(self, event: Any) -> list[dict[str, Any]]:
        if not isinstance(event, dict):
            raise UpstreamError("protocol", "Gemini sent an event that is not a JSON object")
        if "error" in event:
            raise stream_error(event)
        chunks = []
        envelope = self.envelope
        if not envelope.id:
            envelope.id = _completion_id(event)
            envelope.model = str(event.get("modelVersion") or envelope.model)
            chunks += self._started(0)
        if event.get("usageMetadata"):
            self.usage = event["usageMetadata"]
        candidates = event.get("candidates")
        if not candidates:
            if (event.get("promptFeedback") or {}).get("blockReason"):
                self.blocked = True
            return chunks
        for candidate in candidates:
            if isinstance(candidate, dict):
                chunks += self._candidate(candidate)
        return chunks

    def _candidate(self, candidate: dict[str, Any]) -> list[dict[str, Any]]:
        index = _index(candidate)
        chunks = self._started(index)
        for part in _parts(candidate):
            if part.get("text"):
                chunks.append(self.envelope.chunk({"content": str(part["text"])}, index=index))
            elif isinstance(part.get("functionCall"), dict):
                number = self.tool_calls[index]
                call = {"index": number, **_tool_call(part, number)}
                chunks.append(self.envelope.chunk({"tool_calls": [call]}, index=index))
                self.tool_calls[index] = number + 1
        self.reasons[index] = candidate.get("finishReason") or self.reasons[index]
        return chunks

    def finish(self) -> list[dict[str, Any]]:
        if not self.envelope.id:
            raise UpstreamError("protocol", "Gemini's stream ended without any event")
        chunks = []
        for index in sorted(self.tool_calls):
            reason = self.reasons[index]
            openai_reason = (
                "content_filter"
                if self.blocked and not reason
                else finish_reason(reason, tool_calls=self.tool_calls[index] > 0)
            )
            chunks.append(self.envelope.chunk({}, openai_reason, index=index))
        if self.usage is not None:
            chunks.append(self.envelope.usage_chunk(_usage(self.usage)))
        return chunks


# -- embeddings -------------------------------------------------------------------------


def _embedding_inputs(request: EmbeddingRequest) -> list[str]:
    given = request.input if isinstance(request.input, list) else [request.input]
    if not all(isinstance(item, str) for item in given):
        raise BadRequestError(
            "Gemini embeds text only; token-id input is not supported.", param="input"
        )
    extra = sorted(request.__pydantic_extra__ or {})
    if extra:
        raise BadRequestError(
            f"Parameter {extra[0]!r} is not supported by the Gemini API.",
            param=extra[0],
            code="unsupported_parameter",
        )
    return [str(item) for item in given]


def _encode(values: list[float], encoding: str | None) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
    return values


class GeminiAdapter(Adapter):
    """Chat (JSON and streaming, tools included) and embeddings on Google's Gemini API."""

    api = "gemini"
    supports_tools = True
    supports_embeddings = True

    def check_model(self, model: str) -> None:
        model_resource(model)

    async def chat(self, request: ChatCompletionRequest, target: Target) -> dict[str, Any]:
        body = to_gemini_request(request)
        try:
            answer = await post_json(
                self.http,
                _model_url(target, "generateContent"),
                headers=_headers(target),
                body=body,
                timeout=target.timeout,
            )
        except UpstreamError as error:
            raise _reclassified(error) from None
        return to_openai_completion(answer, target.model)

    async def stream_chat(
        self, request: ChatCompletionRequest, target: Target
    ) -> AsyncIterator[dict[str, Any]]:
        body = to_gemini_request(request)
        translator = _StreamTranslator(target.model)
        events = post_sse(
            self.http,
            _model_url(target, "streamGenerateContent") + "?alt=sse",
            headers=_headers(target),
            body=body,
            timeout=target.timeout,
        )
        try:
            async for event in events:
                for chunk in translator.feed(event):
                    yield chunk
        except UpstreamError as error:
            raise _reclassified(error) from None
        finally:
            closer = getattr(events, "aclose", None)
            if closer is not None:
                await closer()
        for chunk in translator.finish():
            yield chunk

    async def embed(self, request: EmbeddingRequest, target: Target) -> dict[str, Any]:
        texts = _embedding_inputs(request)
        resource = model_resource(target.model)
        model = resource.partition("/")[2]
        requests = []
        for text in texts:
            item: dict[str, Any] = {
                "model": resource,
                "content": {"parts": [{"text": text}]},
            }
            if request.dimensions is not None:
                item["outputDimensionality"] = request.dimensions
            requests.append(item)
        try:
            answer = await post_json(
                self.http,
                _model_url(target, "batchEmbedContents"),
                headers=_headers(target),
                body={"requests": requests},
                timeout=target.timeout,
            )
        except UpstreamError as error:
            raise _reclassified(error) from None
        embeddings = answer.get("embeddings") if isinstance(answer, dict) else None
        if not isinstance(embeddings, list) or len(embeddings) != len(texts):
            raise UpstreamError("protocol", "Gemini's answer has no embedding per input")
        vectors = []
        for entry in embeddings:
            values = entry.get("values") if isinstance(entry, dict) else None
            if not isinstance(values, list):
                raise UpstreamError("protocol", "Gemini sent an embedding without values")
            vector = [float(value) for value in values]
            vectors.append(_encode(vector, request.encoding_format))
        return openai_shapes.embedding_list(vectors, model=model, prompt_tokens=0)


GOOGLE = ProviderKindSpec(
    ProviderKind.GOOGLE,
    "Google Gemini",
    "https://generativelanguage.googleapis.com",
    (Endpoint("gemini"),),
    adapters=(GeminiAdapter,),
    auth=google_auth,
    check=ConnectionCheck(
        "/v1beta/models", listing="models", bad_key_markers=("API_KEY_INVALID", "API key not valid")
    ),
    env_vars=("GOOGLE_API_KEY", "GEMINI_API_KEY"),
    key_min_length=20,
    key_url="https://aistudio.google.com/app/apikey",
)
