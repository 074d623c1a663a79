"""The ``echo`` provider kind: its adapter answers each chat completion with the last user
message, so a test can route to a plugin without any upstream server.

Built by the recipe "add a provider kind" (docs/architecture.md): one adapter module with
the adapter and the kind's spec, and one entry point (see this package's pyproject.toml).
"""

from __future__ import annotations

from typing import Any

from modelyard.gateway.adapters import openai_shapes
from modelyard.gateway.adapters.base import Adapter, Target, refuse_unsupported, text_only
from modelyard.gateway.adapters.openai import bearer_auth
from modelyard.gateway.schemas import ChatCompletionRequest
from modelyard.providers.kinds import ConnectionCheck, Endpoint, ProviderKind, ProviderKindSpec

__all__ = ["ECHO", "EchoAdapter"]


# Step 1: the adapter, which speaks the kind's wire format (here: none, it echoes).
class EchoAdapter(Adapter):
    """Answers with ``echo: <the last message>``; one token per word."""

    api = "echo"
    supports_streaming = False

    async def chat(self, request: ChatCompletionRequest, target: Target) -> dict[str, Any]:
        refuse_unsupported(request, "echo", ())
        text = text_only(request.messages[-1], "Echo models")
        reply = f"echo: {text}"
        return openai_shapes.completion(
            id=openai_shapes.completion_id(),
            model=target.model,
            message=openai_shapes.assistant_message(reply),
            finish_reason="stop",
            usage=openai_shapes.usage(len(text.split()), len(reply.split())),
        )


# Step 2: the kind's spec, next to its adapter.
ECHO = ProviderKindSpec(
    ProviderKind.declare("echo"),
    "Echo",
    "http://echo.invalid",
    (Endpoint("echo"),),
    adapters=(EchoAdapter,),
    auth=bearer_auth,
    check=ConnectionCheck("/models"),
    env_vars=("ECHO_API_KEY",),
    key_prefix="echo-",
    key_min_length=10,
    user_keys=False,
)
