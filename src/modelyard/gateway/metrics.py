"""The gateway's Prometheus metrics: requests, attempts per key (by fingerprint, never the
key), failovers, cache hits, tokens and cost.

Label values are bounded, whatever callers send: a model name becomes a label value only
once a provider has answered for it (an ``ok`` attempt or a served request), so names that
never resolved — typos, probes, random strings — are all counted as ``unknown``; past
:data:`MAX_MODEL_LABELS` names (or :data:`MAX_KEY_LABELS` key fingerprints) the rest are
counted as ``other``. Every other label comes from a closed set (provider kinds, outcome
categories, route names the staff define).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["MAX_KEY_LABELS", "MAX_MODEL_LABELS", "OTHER", "UNKNOWN", "GatewayMetrics"]

#: The label of a model name no provider has answered for.
UNKNOWN = "unknown"
#: The label of a model name or key past the bound.
OTHER = "other"
MAX_MODEL_LABELS = 500
MAX_KEY_LABELS = 200


class _Values:
    """At most ``limit`` distinct label values; the rest are :data:`OTHER`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()

    def admit(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self.limit:
            return OTHER
        self._seen.add(value)
        return value

    def known(self, value: str) -> str:
        """``value`` when admitted earlier, else :data:`UNKNOWN`."""
        return value if value in self._seen else UNKNOWN


class _Bounded:
    """A metric whose ``model`` (and ``key``) label values pass through the bounds."""

    def __init__(
        self,
        metric: Counter | Histogram,
        names: list[str],
        models: _Values,
        keys: _Values | None = None,
        *,
        resolved: bool,
    ) -> None:
        self.metric = metric
        self._model = names.index("model")
        self._key = names.index("key") if "key" in names else None
        self._outcome = names.index("outcome") if "outcome" in names else None
        self._models = models
        self._keys = keys
        #: Whether a value here means a provider answered for the model.
        self._resolved = resolved

    def labels(self, *values: str) -> Any:
        labels = list(values)
        model = labels[self._model]
        answered = self._resolved or (self._outcome is not None and labels[self._outcome] == "ok")
        labels[self._model] = self._models.admit(model) if answered else self._models.known(model)
        if self._key is not None and self._keys is not None:
            labels[self._key] = self._keys.admit(labels[self._key])
        return self.metric.labels(*labels)


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        models = _Values(MAX_MODEL_LABELS)
        keys = _Values(MAX_KEY_LABELS)

        def bounded(metric: Counter | Histogram, names: list[str], resolved: bool) -> _Bounded:
            return _Bounded(metric, names, models, keys, resolved=resolved)

        names = ["route", "provider", "model", "status"]
        # Counted for served requests only: a provider answered for the model.
        self.requests = bounded(
            Counter(
                "modelyard_gateway_requests",
                "Gateway requests by route, provider, model and outcome",
                names,
                registry=registry,
            ),
            names,
            True,
        )
        names = ["provider", "model"]
        self.latency = bounded(
            Histogram(
                "modelyard_gateway_upstream_seconds",
                "Time waiting for the upstream that answered",
                names,
                registry=registry,
            ),
            names,
            True,
        )
        names = ["provider", "model", "key", "outcome"]
        self.attempts = bounded(
            Counter(
                "modelyard_gateway_attempts",
                "Upstream attempts by provider, model, key fingerprint and outcome",
                names,
                registry=registry,
            ),
            names,
            False,
        )
        self.failovers = Counter(
            "modelyard_gateway_failovers",
            "Moves to the next target, by reason",
            ["reason"],
            registry=registry,
        )
        self.cache = Counter(
            "modelyard_gateway_cache",
            "Response cache lookups by result",
            ["result"],
            registry=registry,
        )
        names = ["provider", "model", "direction"]
        self.tokens = bounded(
            Counter(
                "modelyard_gateway_tokens",
                "Tokens by provider, model and direction",
                names,
                registry=registry,
            ),
            names,
            True,
        )
        names = ["provider", "model"]
        self.cost = bounded(
            Counter(
                "modelyard_gateway_cost_usd",
                "Cost in USD from the catalog's prices",
                names,
                registry=registry,
            ),
            names,
            True,
        )
