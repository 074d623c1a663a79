"""The adapter registry: wire-format name → adapter, for built-ins and plugins alike.

The adapters are those the installed provider kinds declare
(:attr:`~modelyard.providers.kinds.ProviderKindSpec.adapters`), found through the
``modelyard.providers`` entry points like any plugin's.
"""

from __future__ import annotations

from collections.abc import Iterable

from modelyard.gateway.adapters.base import Adapter
from modelyard.gateway.http import UpstreamHttp
from modelyard.providers.kinds import all_kinds

__all__ = ["AdapterRegistry", "installed_adapters"]


def installed_adapters() -> tuple[type[Adapter], ...]:
    """The adapter classes of every installed kind, each once, in the kinds' order."""
    found: dict[type[Adapter], None] = {}
    for spec in all_kinds():
        for adapter in spec.adapters:
            if not (isinstance(adapter, type) and issubclass(adapter, Adapter)):
                raise TypeError(f"kind {spec.kind}: {adapter!r} is not an Adapter subclass")
            found[adapter] = None
    return tuple(found)


class AdapterRegistry:
    """The adapters of one application, sharing its upstream HTTP client."""

    def __init__(self, http: UpstreamHttp, adapters: Iterable[type[Adapter]] | None = None) -> None:
        self._http = http
        self._instances: dict[str, Adapter] = {}
        for adapter in installed_adapters() if adapters is None else adapters:
            self.register(adapter)

    def register(self, adapter: type[Adapter]) -> None:
        """Add (or replace) the adapter for ``adapter.api``."""
        self._instances[adapter.api] = adapter(self._http)

    def get(self, api: str) -> Adapter:
        return self._instances[api]

    def __contains__(self, api: object) -> bool:
        return api in self._instances
