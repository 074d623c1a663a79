"""The adapter registry: wire-format name → adapter class, for built-ins and plugins alike."""

from __future__ import annotations

from modelyard.gateway.adapters.anthropic import AnthropicAdapter
from modelyard.gateway.adapters.base import Adapter
from modelyard.gateway.adapters.gemini import GeminiAdapter
from modelyard.gateway.adapters.hf_inference import HfInferenceAdapter
from modelyard.gateway.adapters.local import LocalAdapter
from modelyard.gateway.adapters.openai import OpenAIAdapter
from modelyard.gateway.http import UpstreamHttp

__all__ = ["BUILT_IN_ADAPTERS", "AdapterRegistry"]

BUILT_IN_ADAPTERS: tuple[type[Adapter], ...] = (
    OpenAIAdapter,
    AnthropicAdapter,
    GeminiAdapter,
    HfInferenceAdapter,
    LocalAdapter,
)


class AdapterRegistry:
    """The adapters of one application, sharing its upstream HTTP client."""

    def __init__(
        self, http: UpstreamHttp, adapters: tuple[type[Adapter], ...] = BUILT_IN_ADAPTERS
    ) -> None:
        self._http = http
        self._instances: dict[str, Adapter] = {}
        for adapter in adapters:
            self.register(adapter)

    def register(self, adapter: type[Adapter]) -> None:
        """Add (or replace) the adapter for ``adapter.api``, as a plugin would."""
        self._instances[adapter.api] = adapter(self._http)

    def get(self, api: str) -> Adapter:
        return self._instances[api]

    def __contains__(self, api: object) -> bool:
        return api in self._instances
