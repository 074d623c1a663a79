"""Dynamic batching: requests that arrive close together share one model call.

A :class:`Batcher` collects submitted requests; when the model is free it waits until no
new request has arrived for ``window`` seconds (at most ``max_wait`` in all, or until
``max_batch`` are waiting), then runs up to ``max_batch`` requests with the same batch key
in one call, in a worker thread, holding the model's lock (so batches, streams and other
jobs of one model never overlap). Requests that arrived while a batch ran go together
into the next one at once. A request whose key is ``None`` always runs alone; requests
with other keys wait for their own batch, in arrival order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Batcher"]

R = TypeVar("R")
T = TypeVar("T")


@dataclass
class _Pending(Generic[R, T]):
    request: R
    key: Hashable | None
    future: asyncio.Future[T]


class Batcher(Generic[R, T]):
    """Groups requests for one model into calls of ``run`` (a blocking function).

    ``run`` gets a list of requests and returns one result per request, in order; a result
    that is an exception is raised to that request's caller only.
    """

    def __init__(
        self,
        run: Callable[[Sequence[R]], Sequence[T | Exception]],
        *,
        lock: asyncio.Lock,
        executor: Executor | None = None,
        max_batch: int = 8,
        window: float = 0.005,
        max_wait: float = 0.02,
    ) -> None:
        self._run = run
        self._lock = lock
        self._executor = executor
        self.max_batch = max(1, max_batch)
        self.window = window
        self.max_wait = max_wait
        self._pending: list[_Pending[R, T]] = []
        self._task: asyncio.Task[None] | None = None
        #: Sizes of the batches run so far (for tests and metrics).
        self.batch_sizes: list[int] = []

    async def submit(self, request: R, key: Hashable | None) -> T:
        """Queue ``request`` and wait for its result."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(request, key, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _gather(self) -> None:
        """Wait while requests keep arriving (each within ``window`` of the last)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        seen = len(self._pending)
        while seen < self.max_batch and loop.time() < deadline:
            await asyncio.sleep(self.window)
            if len(self._pending) == seen:
                return
            seen = len(self._pending)

    def _take(self) -> list[_Pending[R, T]]:
        self._pending = [p for p in self._pending if not p.future.done()]
        if not self._pending:
            return []
        key = self._pending[0].key
        if key is None:
            return [self._pending.pop(0)]
        batch: list[_Pending[R, T]] = []
        rest: list[_Pending[R, T]] = []
        for pending in self._pending:
            if pending.key == key and len(batch) < self.max_batch:
                batch.append(pending)
            else:
                rest.append(pending)
        self._pending = rest
        return batch

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        fresh = True
        while self._pending:
            if fresh and self._pending[0].key is not None:
                await self._gather()
            async with self._lock:
                batch = self._take()
                if not batch:
                    continue
                self.batch_sizes.append(len(batch))
                requests = [p.request for p in batch]
                try:
                    results = await loop.run_in_executor(self._executor, self._run, requests)
                except Exception as error:  # the whole call failed: every caller learns why
                    results = [error] * len(batch)
            # The model was busy: whatever arrived meanwhile goes at once (no gathering).
            fresh = False
            for pending, result in zip(batch, results, strict=True):
                if pending.future.done():
                    continue
                if isinstance(result, Exception):
                    pending.future.set_exception(result)
                else:
                    pending.future.set_result(result)

    async def aclose(self) -> None:
        """Stop the drain task; waiting callers get :class:`asyncio.CancelledError`."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for pending in self._pending:
            pending.future.cancel()
        self._pending.clear()
