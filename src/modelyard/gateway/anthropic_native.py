"""What a Messages API request becomes for each target, decided when the target is tried.

A request that came in on ``POST /v1/messages`` carries its Anthropic-native parts
(:class:`~modelyard.gateway.schemas.AnthropicNative`) beside its chat form. The dispatcher
asks :func:`request_for` before each call:

* an Anthropic target gets the request as it is: its adapter sends the client's Messages
  body through unchanged (thinking, ``top_k``, ``cache_control``, documents, betas, …);
* any other target gets the chat form alone: ``thinking`` as ``reasoning_effort``,
  thinking blocks of the history dropped, and a 400 naming the first native part that has
  no equivalent there (``top_k``, a ``document`` block, ``context_management``, …).

A route whose ``unsupported_params`` is ``drop`` leaves such a top-level parameter out for
that target instead (:func:`native_parameters`, :func:`without_native`); content blocks
are never dropped.

Answers relayed unchanged travel beside the OpenAI-shaped ones under
:data:`NATIVE_MESSAGE` (a whole answer) and :data:`NATIVE_EVENT` (one stream event); only
the Messages API route reads them, and only a request with native parts gets them.
"""

from __future__ import annotations

from modelyard.errors import BadRequestError
from modelyard.gateway.schemas import ChatCompletionRequest

__all__ = [
    "ANTHROPIC_API",
    "EFFORT_BUDGETS",
    "NATIVE_EVENT",
    "NATIVE_MESSAGE",
    "effort_for_budget",
    "native_parameters",
    "request_for",
    "without_native",
]

#: The wire format that takes Messages requests as they are.
ANTHROPIC_API = "anthropic"

#: The key of a completion holding the provider's Messages answer as it came.
NATIVE_MESSAGE = "x_anthropic_message"
#: The key of a chunk holding the provider's stream event as it came.
NATIVE_EVENT = "x_anthropic_event"

#: ``reasoning_effort`` ↔ a thinking budget (tokens), both ways: a budget maps to the
#: smallest effort whose budget covers it ("high" above that). Anthropic's minimum is 1024.
EFFORT_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}


def effort_for_budget(budget: int) -> str:
    """OpenAI's ``reasoning_effort`` for an Anthropic thinking budget."""
    for effort in ("low", "medium", "high"):
        if budget <= EFFORT_BUDGETS[effort]:
            return effort
    return "high"


def native_parameters(request: ChatCompletionRequest) -> set[str]:
    """The top-level native parameters other targets refuse (which a route's ``drop``
    policy may leave out for them; blocks of the conversation never are)."""
    native = request.anthropic_native
    if native is None:
        return set()
    return {name for name in native.untranslatable if "." not in name and name != "messages"}


def without_native(request: ChatCompletionRequest, name: str) -> ChatCompletionRequest:
    """``request`` without the native parameter ``name``, for targets of other APIs
    (an Anthropic target still gets the client's body)."""
    native = request.anthropic_native
    if native is None:
        return request
    kept = {key: reason for key, reason in native.untranslatable.items() if key != name}
    return request.with_anthropic_native(native.model_copy(update={"untranslatable": kept}))


def request_for(request: ChatCompletionRequest, api: str) -> ChatCompletionRequest:
    """``request`` as a target of wire format ``api`` takes it (a 400 for what it cannot)."""
    native = request.anthropic_native
    if native is None or api == ANTHROPIC_API:
        return request
    refused = next(iter(native.untranslatable.items()), None)
    if refused is not None:
        param, reason = refused
        raise BadRequestError(
            f"{reason} The model's provider ({api} API) has no equivalent; remove "
            f"{param!r} or choose an Anthropic model.",
            param=param,
            code="unsupported_parameter",
        )
    plain = request.with_anthropic_native(None)
    if native.reasoning_effort is not None:
        plain = plain.model_copy(update={"reasoning_effort": native.reasoning_effort})
    return plain
