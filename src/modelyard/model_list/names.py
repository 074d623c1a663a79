"""Which name a (provider kind, model) pair is listed under, by the gateway's own rules
(:class:`modelyard.gateway.targets.ModelIndex`): a route name shadows a model name, a
``kind/…`` prefix always means that kind, and a bare name means the first kind that
offers it (catalog rows by id, then admin providers, default first).

A pair is listed under its bare name when that name means exactly this pair, otherwise
as ``kind/model``; local models are always ``local/<name>``, like trained models.
"""

from __future__ import annotations

from collections.abc import Iterable

from modelyard.providers.kinds import ProviderKind

__all__ = ["GatewayNames"]


class GatewayNames:
    """Names of pairs, from the route names and the pairs in the gateway's order."""

    def __init__(self, routes: Iterable[str], pairs: Iterable[tuple[str, str]]) -> None:
        self._routes = frozenset(routes)
        self._first_kind: dict[str, str] = {}
        for kind, model in pairs:
            self._first_kind.setdefault(model, kind)

    def _bare_means(self, kind: ProviderKind, model: str) -> bool:
        prefix, _, rest = model.partition("/")
        if model in self._routes or (rest and prefix in ProviderKind):
            return False
        return self._first_kind.get(model) == kind.value

    def listed(self, kind: ProviderKind, model: str) -> tuple[str, tuple[str, ...]]:
        """The name ``kind``/``model`` is listed under, and its other names."""
        prefixed = f"{kind.value}/{model}"
        bare = self._bare_means(kind, model)
        if kind is ProviderKind.LOCAL:
            return prefixed, (model,) if bare else ()
        return (model, (prefixed,)) if bare else (prefixed, ())
