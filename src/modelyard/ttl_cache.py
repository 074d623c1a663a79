"""A small in-process cache with a time-to-live and a size bound (oldest entries go first).

It keeps database reads off the gateway's request path; entries can be dropped at once
when the process itself changes what they hold, and expire on their own otherwise (so a
change made by another process is seen within the TTL).

By default the oldest *written* entry goes first when the cache is full; with ``lru=True``
reading an entry also makes it the newest (least-recently-used eviction). ``put`` takes an
optional per-entry ``ttl`` that overrides the cache's default.

:meth:`TTLCache.get_or_load` fills a missing entry from a coroutine, once however many
requests ask at the same moment: when an entry expires under load, the concurrent requests
that miss it share one database read instead of each making its own.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
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
        #: The load running for a key (see :meth:`get_or_load`).
        self._loads: dict[K, asyncio.Task[V | None]] = {}

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

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V | None]]) -> V | None:
        """The fresh entry for ``key``, else what ``load()`` returns, stored unless ``None``.

        Callers asking for one key while its load runs wait for that load (a caller
        cancelled meanwhile does not cancel it). A load still running when the key is
        discarded or the cache cleared stores nothing: it may have read what changed.
        """
        value = self.get(key)
        if value is not None:
            return value
        load_task = self._loads.get(key)
        if load_task is None:
            load_task = asyncio.ensure_future(self._load(key, load))
            self._loads[key] = load_task
        return await asyncio.shield(load_task)

    async def _load(self, key: K, load: Callable[[], Awaitable[V | None]]) -> V | None:
        this = asyncio.current_task()
        try:
            value = await load()
            if value is not None and self._loads.get(key) is this:
                self.put(key, value)
            return value
        finally:
            if self._loads.get(key) is this:
                del self._loads[key]

    def discard(self, key: K) -> None:
        """Drop ``key`` if present (and forget a load of it still running)."""
        self._entries.pop(key, None)
        self._loads.pop(key, None)

    def discard_where(self, predicate: Callable[[K, V], bool]) -> None:
        """Drop every entry for which ``predicate(key, value)`` holds (and forget the
        loads still running: what they will return is not known yet)."""
        for key in [k for k, (_, v) in self._entries.items() if predicate(k, v)]:
            del self._entries[key]
        self._loads.clear()

    def clear(self) -> None:
        """Drop every entry (and forget the loads still running)."""
        self._entries.clear()
        self._loads.clear()

    def __len__(self) -> int:
        return len(self._entries)
