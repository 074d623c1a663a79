"""The plain values around one metered gateway call: who made it, what for, and what it
produced."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from modelyard.db.models import User

__all__ = [
    "CLIENT_CLOSED_STATUS",
    "STREAM_FAILED_STATUS",
    "CallDetails",
    "CallOrigin",
    "Completion",
    "OnComplete",
    "answer_text",
    "choice_text",
    "completion_text",
]

#: Status recorded for a stream that failed after it started (the client got 200).
STREAM_FAILED_STATUS = 502
#: Status recorded for a request the client abandoned (nginx's "client closed request").
CLIENT_CLOSED_STATUS = 499


@dataclass(frozen=True)
class CallOrigin:
    """Who makes a gateway call: the user, the API token used (if any), the request id."""

    user: User
    api_token_id: int | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class CallDetails:
    """What a gateway call is for: the endpoint it is recorded under, the model asked for,
    the prompt (to count tokens the provider does not report), and the chat history it
    belongs to, with the hook that keeps its answer there."""

    endpoint: str
    model: str
    messages: Sequence[Any] = ()
    conversation_id: int | None = None
    on_complete: OnComplete | None = None
    #: A legacy text completion's prompts (counted when the provider reports no usage).
    prompts: Sequence[str] = ()


@dataclass(frozen=True)
class Completion:
    """What a finished gateway call produced (``status`` 499: cut by the client)."""

    content: str
    input_tokens: int
    output_tokens: int
    estimated: bool
    cost_usd: Decimal
    model: str | None
    latency_ms: int
    status: int

    @property
    def stopped(self) -> bool:
        return self.status == CLIENT_CLOSED_STATUS


OnComplete = Callable[[Completion], Awaitable[None]]


def answer_text(answer: dict[str, Any]) -> str:
    """The first choice's text of an OpenAI completion."""
    choices = answer.get("choices") or [{}]
    return str((choices[0].get("message") or {}).get("content") or "")


def completion_text(answer: dict[str, Any]) -> str:
    """Every choice's text of a legacy text completion, in order."""
    return "".join(str(choice.get("text") or "") for choice in answer.get("choices") or ())


def choice_text(choice: dict[str, Any]) -> str:
    """The text a stream chunk's choice adds: a chat delta's content or a completion's text."""
    if "text" in choice:
        return str(choice.get("text") or "")
    return str((choice.get("delta") or {}).get("content") or "")
