"""A route's policy for request parameters a target cannot honour: ``error`` or ``drop``.

Adapters refuse such a parameter with a 400 (``code="unsupported_parameter"``, ``param``
naming it; see :func:`~modelyard.gateway.adapters.base.refuse_unsupported`) while they
translate the request, before anything is sent. Under ``error`` (the default) that 400 is
the client's answer. Under ``drop`` the parameter is left out and the call made again, for
that target only (the next target of a route gets the whole request); the names dropped
for the target that answered go back in the ``x-modelyard-dropped-params`` header.

Only top-level parameters the client gave are dropped, never ``model``, ``messages`` or a
legacy completion's ``prompt`` (content a target cannot read stays a 400). An
OpenAI-compatible upstream is sent every parameter; what it refuses is its own 400, not
dropped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Literal, TypeVar, get_args

from modelyard.errors import BadRequestError
from modelyard.gateway.anthropic_native import native_parameters, without_native
from modelyard.gateway.schemas import ChatCompletionRequest, CompletionRequest

__all__ = ["POLICIES", "ParameterPolicy", "UnsupportedParams"]

T = TypeVar("T")
#: A chat request or a legacy completion request (the policy treats both alike).
R = TypeVar("R", ChatCompletionRequest, CompletionRequest)

UnsupportedParams = Literal["error", "drop"]
#: The values a route's ``unsupported_params`` may take.
POLICIES: tuple[str, ...] = get_args(UnsupportedParams)

#: What a request is about: never dropped.
_ESSENTIAL = frozenset({"model", "messages", "prompt"})


def _droppable(error: BadRequestError, request: R) -> str | None:
    """The parameter ``error`` refuses, when it is one the client gave and may lose."""
    name = error.param
    if error.code != "unsupported_parameter" or not name or name in _ESSENTIAL:
        return None
    given = request.model_fields_set | set(request.extra_params())
    if isinstance(request, ChatCompletionRequest):  # a Messages request's own parameters
        given |= native_parameters(request)
    return name if name in given else None


def _without(request: R, name: str) -> R:
    """A copy of ``request`` without the parameter (private attributes kept)."""
    if isinstance(request, ChatCompletionRequest) and name in native_parameters(request):
        return without_native(request, name)
    declared = type(request).model_fields.get(name)
    if declared is not None:
        copy = request.model_copy(update={name: declared.default})
        copy.__pydantic_fields_set__.discard(name)
        return copy
    copy = request.model_copy()
    copy.__pydantic_extra__ = {
        key: value for key, value in (copy.__pydantic_extra__ or {}).items() if key != name
    }
    return copy


class ParameterPolicy:
    """One request's policy; :attr:`dropped` names what the latest call left out."""

    def __init__(self, policy: str = "error") -> None:
        if policy not in POLICIES:
            raise ValueError(f"unsupported_params must be one of {', '.join(POLICIES)}")
        self.policy = policy
        self.dropped: tuple[str, ...] = ()

    def _retry_without(self, error: BadRequestError, request: R, dropped: list[str]) -> R:
        """The request without the refused parameter, or ``error`` raised again."""
        name = _droppable(error, request) if self.policy == "drop" else None
        if name is None:
            raise error
        dropped.append(name)
        return _without(request, name)

    async def call(self, send: Callable[[R], Awaitable[T]], request: R) -> T:
        """``send(request)``, leaving out what the target refuses under ``drop``."""
        dropped: list[str] = []
        while True:
            try:
                result = await send(request)
            except BadRequestError as error:
                request = self._retry_without(error, request, dropped)
                continue
            self.dropped = tuple(dropped)
            return result

    async def open(
        self, open_stream: Callable[[R], AsyncIterator[T]], request: R
    ) -> tuple[T | None, AsyncIterator[T]]:
        """The first chunk of ``open_stream(request)`` (``None`` when it sent none) and the
        stream, to be read on from there; a refusal comes with the first chunk (adapters
        translate the request when the stream starts) and is handled as in :meth:`call`.
        The stream is the adapter's own, so each later chunk costs no relay here."""
        dropped: list[str] = []
        while True:
            stream = aiter(open_stream(request))
            try:
                first = await anext(stream)
            except StopAsyncIteration:
                first = None
            except BadRequestError as error:
                request = self._retry_without(error, request, dropped)
                continue
            self.dropped = tuple(dropped)
            return first, stream
