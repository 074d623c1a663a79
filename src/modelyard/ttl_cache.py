"""A small in-process cache with a time-to-live and a size bound (oldest entries go first).

It keeps database reads off the gateway's request path; entries can be dropped at once
when the process itself changes what they hold, and expire on their own otherwise (so a
change made by another process is seen within the TTL).

By default the oldest *written* entry goes first when the cache is full; with ``lru=True``
reading an entry also makes it the newest (least-recently-used eviction). ``put`` takes an
optional per-entry ``ttl`` that overrides the cache's default.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["TTLCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    def __init__(
        self,
        *,
        ttl: float,
        max_size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        lru: bool = False,
    ) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self.lru = lru
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self._clock():
            del self._entries[key]
            return None
        if self.lru:
            self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V, *, ttl: float | None = None) -> None:
        """Store ``value`` for ``ttl`` seconds (the cache's default when ``None``)."""
        self._entries[key] = (self._clock() + (self.ttl if ttl is None else ttl), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)

    def discard(self, key: K) -> None:
        """Drop ``key`` if present."""
        self._entries.pop(key, None)

    def discard_where(self, predicate: Callable[[K, V], bool]) -> None:
        """Drop every entry for which ``predicate(key, value)`` holds."""
        for key in [k for k, (_, v) in self._entries.items() if predicate(k, v)]:
            del self._entries[key]

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
