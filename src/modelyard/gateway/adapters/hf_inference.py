"""Hugging Face direct (serverless) inference, text-generation task, behind the OpenAI format.

The second Hugging Face endpoint, tried after the OpenAI-compatible router: ``POST
{base}/{model}`` (``base`` is the ``hf_inference_url`` setting; ``model`` a repository id,
``name`` or ``owner/name``, anything else is never sent: see
:func:`~modelyard.gateway.adapters.model_ids.model_path`) with ``Authorization:
Bearer hf_…`` and the body ``{"inputs": prompt, "parameters": {...}, "options":
{"wait_for_model": true}}``.

The prompt is the conversation as a plain transcript, one turn per line, ending with the
turn the model writes::

    System: You are terse.
    User: Hi!
    Assistant: Hello.
    User: How are you?
    Assistant:

(``developer`` messages are written as ``System``.) ``"\\nUser:"`` is added to the stop
sequences while there is room (the text-generation server takes at most 4), so the model
does not write the user's next turn; the text is cut at the first stop sequence (which
the server keeps, OpenAI does not) and its leading whitespace dropped.

Parameters: ``max_tokens`` / ``max_completion_tokens`` → ``max_new_tokens``,
``temperature`` (0 → greedy, ``do_sample: false``, as the server refuses 0), ``top_p``
(1 is left out: the server wants it below 1), ``stop``, ``seed``; ``return_full_text`` is
always false. Refused with a 400: every other parameter, tools and tool messages, and
content parts that are not text.

Usage is **estimated**: whitespace-separated words of the prompt and of the answer (a
stream's final ``details.generated_tokens`` is used when the server sends it). Finish
reasons: ``stop``, or ``length`` when a stream's details say so.

Streaming is supported: ``"stream": true`` makes the server send SSE events ``{"token":
{"text", "special"}, "generated_text": null}``, the last one with ``generated_text`` and
``details``; special tokens are skipped, and text that could begin a stop sequence is held
back until it is known not to. A ``503`` "Model … is currently loading" is a server error,
so the dispatcher goes on to the next target.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from modelyard.gateway.adapters import openai_shapes
from modelyard.gateway.adapters.base import Adapter, Target, refuse_unsupported, text_only
from modelyard.gateway.adapters.model_ids import model_path
from modelyard.gateway.adapters.openai import OpenAIAdapter, bearer_auth
from modelyard.gateway.adapters.wire import post_json, post_sse, stream_error
from modelyard.gateway.schemas import ChatCompletionRequest, ChatMessage
from modelyard.gateway.upstream_errors import UpstreamError
from modelyard.providers.kinds import ConnectionCheck, Endpoint, ProviderKind, ProviderKindSpec

__all__ = ["HUGGINGFACE", "HfInferenceAdapter", "StopFilter", "build_prompt"]

SUPPORTED_PARAMETERS = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "seed",
)

#: The stop sequence that keeps the model from writing the user's next turn.
NEXT_TURN = "\nUser:"
#: The text-generation server's default limit on stop sequences.
MAX_STOP_SEQUENCES = 4

_SPEAKERS = {"system": "System", "developer": "System", "user": "User", "assistant": "Assistant"}


def _text(message: ChatMessage) -> str:
    return text_only(message, "Hugging Face direct inference models")


def build_prompt(messages: list[ChatMessage]) -> str:
    """The conversation as a ``Speaker: text`` transcript ending with ``Assistant:``."""
    lines = [f"{_SPEAKERS[message.role]}: {_text(message)}" for message in messages]
    return "\n".join([*lines, "Assistant:"])


def _stops(request: ChatCompletionRequest) -> list[str]:
    stops = [stop for stop in request.stop_list() if stop]
    if len(stops) < MAX_STOP_SEQUENCES and NEXT_TURN not in stops:
        stops.append(NEXT_TURN)
    return stops


def _parameters(request: ChatCompletionRequest, stops: list[str]) -> dict[str, Any]:
    parameters: dict[str, Any] = {"return_full_text": False, "stop": stops}
    if request.output_limit() is not None:
        parameters["max_new_tokens"] = request.output_limit()
    if request.temperature == 0 or request.top_p == 0:
        parameters["do_sample"] = False
    else:
        if request.temperature is not None:
            parameters["temperature"] = request.temperature
        if request.top_p is not None and request.top_p < 1:
            parameters["top_p"] = request.top_p
    if request.seed is not None:
        parameters["seed"] = request.seed
    return parameters


class StopFilter:
    """Cuts generated text at the first stop sequence, fed whole or token by token.

    Text that could be the start of a stop sequence is held back until the next piece
    shows whether it is; leading whitespace of the answer is dropped.
    """

    def __init__(self, stops: list[str]) -> None:
        self.stops = [stop for stop in stops if stop]
        self.pending = ""
        self.started = False
        self.stopped = False

    def push(self, text: str) -> str:
        """The text that can be sent now."""
        if self.stopped:
            return ""
        self.pending += text
        if not self.started:
            self.pending = self.pending.lstrip()
            self.started = bool(self.pending)
        found = [i for i in (self.pending.find(stop) for stop in self.stops) if i >= 0]
        if found:
            out, self.pending, self.stopped = self.pending[: min(found)], "", True
            return out
        hold = max(
            (
                size
                for stop in self.stops
                for size in range(1, len(stop))
                if self.pending.endswith(stop[:size])
            ),
            default=0,
        )
        out = self.pending[: len(self.pending) - hold]
        self.pending = self.pending[len(out) :]
        return out

    def flush(self) -> str:
        """What was held back, once the text is complete."""
        out = "" if self.stopped else self.pending
        self.pending = ""
        return out


def _words(text: str) -> int:
    return len(text.split())


def _usage(prompt: str, completion_tokens: int) -> dict[str, int]:
    return openai_shapes.usage(_words(prompt), completion_tokens)


def _generated_text(answer: Any) -> str:
    item = answer[0] if isinstance(answer, list) and answer else answer
    if isinstance(item, dict) and isinstance(item.get("generated_text"), str):
        return str(item["generated_text"])
    raise UpstreamError("protocol", "the answer has no generated_text")


class HfInferenceAdapter(Adapter):
    """Chat (JSON and streaming) on a text-generation model of Hugging Face's inference API."""

    api = "hf_inference"
    #: One text per call; ``n`` > 1 is made by the gateway's fan-out.
    supports_n = False

    @staticmethod
    def _path(model: str) -> str:
        """The repository id as a path: ``name`` or ``owner/name``, or a 400."""
        return model_path(model, segments=2, api="Hugging Face inference")

    def check_model(self, model: str) -> None:
        self._path(model)

    def _prepare(
        self, request: ChatCompletionRequest, target: Target
    ) -> tuple[str, dict[str, str], str, list[str], dict[str, Any]]:
        refuse_unsupported(request, "Hugging Face inference", SUPPORTED_PARAMETERS)
        prompt = build_prompt(request.messages)
        stops = _stops(request)
        body = {
            "inputs": prompt,
            "parameters": _parameters(request, stops),
            "options": {"wait_for_model": True},
        }
        headers = bearer_auth(target.api_key, None)
        url = f"{target.base_url}/{self._path(target.model)}"
        return url, headers, prompt, stops, body

    async def chat(self, request: ChatCompletionRequest, target: Target) -> dict[str, Any]:
        url, headers, prompt, stops, body = self._prepare(request, target)
        answer = await post_json(self.http, url, headers=headers, body=body, timeout=target.timeout)
        cut = StopFilter(stops)
        text = cut.push(_generated_text(answer)) + cut.flush()
        return openai_shapes.completion(
            id=openai_shapes.completion_id(),
            model=target.model,
            message=openai_shapes.assistant_message(text),
            finish_reason="stop",
            usage=_usage(prompt, _words(text)),
        )

    async def stream_chat(
        self, request: ChatCompletionRequest, target: Target
    ) -> AsyncIterator[dict[str, Any]]:
        url, headers, prompt, stops, body = self._prepare(request, target)
        body["stream"] = True
        envelope = openai_shapes.ChunkEnvelope(id=openai_shapes.completion_id(), model=target.model)
        chunk = envelope.chunk
        cut = StopFilter(stops)
        sent, started, details = "", False, None
        events = post_sse(self.http, url, headers=headers, body=body, timeout=target.timeout)
        try:
            async for event in events:
                if not isinstance(event, dict):
                    raise UpstreamError("protocol", "an event is not a JSON object")
                if "error" in event:
                    raise stream_error(event)
                if not started:
                    started = True
                    yield chunk({"role": "assistant", "content": ""})
                token = event.get("token") or {}
                if isinstance(token, dict) and not token.get("special"):
                    piece = cut.push(str(token.get("text") or ""))
                    if piece:
                        sent += piece
                        yield chunk({"content": piece})
                if isinstance(event.get("details"), dict):
                    details = event["details"]
        finally:
            closer = getattr(events, "aclose", None)
            if closer is not None:
                await closer()
        if not started:
            raise UpstreamError("protocol", "the stream ended without any event")
        rest = cut.flush()
        if rest:
            sent += rest
            yield chunk({"content": rest})
        reason = "length" if (details or {}).get("finish_reason") == "length" else "stop"
        yield chunk({}, reason)
        generated = (details or {}).get("generated_tokens")
        usage = _usage(prompt, generated if isinstance(generated, int) else _words(sent))
        yield envelope.usage_chunk(usage)


#: Hugging Face: the OpenAI-compatible router first, then direct inference.
HUGGINGFACE = ProviderKindSpec(
    ProviderKind.HUGGINGFACE,
    "Hugging Face",
    "https://router.huggingface.co/v1",
    (Endpoint("openai", "router"), Endpoint("hf_inference", "direct", "hf_inference_url")),
    adapters=(OpenAIAdapter, HfInferenceAdapter),
    auth=bearer_auth,
    check=ConnectionCheck("/models"),
    env_vars=(
        "HF_TOKEN",
        "HUGGINGFACE_TOKEN",
        "HF_API_KEY",
        "HUGGINGFACE_API_KEY",
        "VITE_HUGGINGFACE_API_KEY",
        "VITE_HF_API_KEY",
    ),
    key_prefix="hf_",
    key_min_length=20,
    key_label="HuggingFace token",
    key_url="https://huggingface.co/settings/tokens",
)
