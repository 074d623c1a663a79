"""Legacy text completions answered through a chat API: every adapter's default.

Each prompt becomes one user message of its own chat completion, asked for in turn (``n``
> 1 from an API that answers one choice per call: :mod:`~modelyard.gateway.fan_out`); a
choice's ``index`` is ``prompt position * n + the chat choice's index``, as OpenAI numbers
them. The chat answers become one ``text_completion`` (``logprobs: null``) whose usage is
their sum. Parameters that need a real completions endpoint (``suffix``, ``echo``,
``logprobs``, ``best_of``) and ``max_tokens: 0`` are refused with a 400 naming them; the
chat adapter refuses whatever else its API cannot honour.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

from modelyard.errors import BadRequestError
from modelyard.gateway.adapters import openai_shapes
from modelyard.gateway.schemas import ChatCompletionRequest, CompletionRequest

if TYPE_CHECKING:
    from modelyard.gateway.adapters.base import Adapter, Target

__all__ = [
    "COMPLETIONS_ONLY_PARAMETERS",
    "chat_requests",
    "complete_through_chat",
    "refuse_completions_only",
    "stream_through_chat",
    "summed_usage",
    "text_finish_reason",
]

#: Parameters only a real completions endpoint can honour.
COMPLETIONS_ONLY_PARAMETERS = ("suffix", "echo", "logprobs", "best_of")
#: Fields of a completion request that do not become chat parameters as they are.
_NOT_CHAT_FIELDS = frozenset(
    {"prompt", "stream", "stream_options", "max_tokens", *COMPLETIONS_ONLY_PARAMETERS}
)


def refuse_completions_only(
    request: CompletionRequest, api: str, *, allowed: Iterable[str] = ()
) -> None:
    """A 400 naming the first parameter that needs a completions endpoint (``allowed``:
    those the target honours anyway)."""
    for name in COMPLETIONS_ONLY_PARAMETERS:
        value = getattr(request, name)
        if name in allowed or value is None or value is False:
            continue
        if name == "best_of" and value <= request.choices_per_prompt():
            continue
        raise BadRequestError(
            f"Parameter {name!r} needs a model behind a completions endpoint (an "
            f"OpenAI-compatible provider); the {api} API cannot honour it. Remove it or "
            "choose such a model.",
            param=name,
            code="unsupported_parameter",
        )


def chat_requests(request: CompletionRequest, *, stream: bool) -> list[ChatCompletionRequest]:
    """One chat request per prompt (the prompt as the one user message), all checked
    before any is sent."""
    if request.max_tokens == 0:
        raise BadRequestError(
            "max_tokens 0 (scoring the prompt) needs a completions endpoint; ask for at least "
            "1 token or choose an OpenAI-compatible model.",
            param="max_tokens",
            code="unsupported_parameter",
        )
    values = request.model_dump(exclude_unset=True, exclude=set(_NOT_CHAT_FIELDS))
    values["max_tokens"] = request.output_limit()
    values["stream"] = stream
    if stream:
        values["stream_options"] = {"include_usage": True}
    return [
        ChatCompletionRequest.model_validate(
            {**values, "messages": [{"role": "user", "content": prompt}]}
        )
        for prompt in request.prompts()
    ]


def text_finish_reason(reason: str | None) -> str | None:
    """A chat finish reason as a completion's (``stop``, ``length``, ``content_filter``)."""
    if reason is None or reason in ("length", "content_filter"):
        return reason
    return "stop"


def summed_usage(usages: Iterable[dict[str, Any] | None]) -> dict[str, Any] | None:
    """The sum of every call's usage; ``None`` unless every call reported one."""
    found = list(usages)
    reported = [usage for usage in found if usage]
    if not found or len(reported) < len(found):
        return None
    return openai_shapes.summed_usage(reported)


async def complete_through_chat(
    adapter: Adapter, request: CompletionRequest, target: Target
) -> dict[str, Any]:
    """The prompts answered by ``adapter.chat``, one after the other, as a completion."""
    from modelyard.gateway import fan_out  # it builds on the adapter base, which uses this

    refuse_completions_only(request, adapter.api)
    per_prompt = request.choices_per_prompt()
    choices: list[dict[str, Any]] = []
    answers: list[dict[str, Any]] = []
    for position, chat in enumerate(chat_requests(request, stream=False)):
        answer = await fan_out.chat(adapter, chat, target)
        answers.append(answer)
        for choice in answer.get("choices") or ():
            index = position * per_prompt + int(choice.get("index") or 0)
            text = str((choice.get("message") or {}).get("content") or "")
            reason = text_finish_reason(choice.get("finish_reason")) or "stop"
            choices.append(openai_shapes.text_choice(index, text, reason))
    return openai_shapes.text_completion(
        id=openai_shapes.text_completion_id(),
        model=str(answers[0].get("model") or target.model),
        choices=choices,
        usage=summed_usage(answer.get("usage") for answer in answers),
    )


async def stream_through_chat(
    adapter: Adapter, request: CompletionRequest, target: Target
) -> AsyncIterator[dict[str, Any]]:
    """The prompts streamed by ``adapter.stream_chat``, one after the other, as completion
    events; the last one carries the summed usage (``choices: []``)."""
    from modelyard.gateway import fan_out

    refuse_completions_only(request, adapter.api)
    chats = chat_requests(request, stream=True)
    per_prompt = request.choices_per_prompt()
    completion_id, created = openai_shapes.text_completion_id(), int(time.time())
    model = target.model
    usages: list[dict[str, Any] | None] = []
    for position, chat in enumerate(chats):
        usage: dict[str, Any] | None = None
        chunks = fan_out.stream(adapter, chat, target)
        try:
            async for chunk in chunks:
                model = str(chunk.get("model") or model)
                usage = chunk.get("usage") or usage
                choices = []
                for choice in chunk.get("choices") or ():
                    text = str((choice.get("delta") or {}).get("content") or "")
                    reason = text_finish_reason(choice.get("finish_reason"))
                    if text or reason:
                        index = position * per_prompt + int(choice.get("index") or 0)
                        choices.append(openai_shapes.text_choice(index, text, reason))
                if choices:
                    yield openai_shapes.text_completion(
                        id=completion_id, model=model, choices=choices, created=created
                    )
        finally:
            closer = getattr(chunks, "aclose", None)
            if closer is not None:
                await closer()
        usages.append(usage)
    total = summed_usage(usages)
    if total is not None:
        yield openai_shapes.text_completion(
            id=completion_id, model=model, choices=[], usage=total, created=created
        )
