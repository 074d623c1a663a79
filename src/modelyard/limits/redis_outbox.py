"""One process's limits operations for Redis, queued and sent together.

Each request's admission is a Redis round trip, and a round trip costs a busy worker
about 0.1 ms of CPU whatever it carries. So operations are queued per group (a user: the
keys of one Redis Cluster slot) and sent as one script call per group, every group's call
in one pipeline:

- an **admission** is sent at once: with everything queued in the same turn of the event
  loop, or, while a batch is out, in the next batch, sent as soon as that one returns
  (under load a batch grows with the load, at one client it is one round trip as before);
- a **settlement**, or the count of an admission the process made from its allowance
  (:meth:`defer`), waits for the next admission of the process, or ``delay`` seconds,
  whichever comes first (it changes counters only: nobody waits for it). :meth:`flush`
  sends what is queued now; the limits call it before reading usage and at shutdown.

Operations of one group are applied in the order they were queued, in one script (atomic),
which answers one string: its admissions' answers, in order, separated by ``,``.
When Redis fails, every admission of the batch answers None and its settlements and counts
are lost (logged); :class:`~modelyard.gateway.redis_client.RedisGuard` then backs off.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from modelyard.gateway.redis_client import REDIS_ERRORS, RedisGuard

__all__ = ["Outbox"]

logger = logging.getLogger("modelyard.limits")


@dataclass
class _Queued:
    """One group's queued operations: the script's key and one argument per operation, and
    one future per admission among them (in order)."""

    key: str
    operations: list[str] = field(default_factory=list)
    waiters: list[asyncio.Future[Any]] = field(default_factory=list)
    deferred: int = 0


class Outbox:
    """Queues operations of ``script`` per group and sends them in batches."""

    def __init__(
        self, redis: Redis, script: AsyncScript, guard: RedisGuard, *, delay: float = 0.05
    ) -> None:
        self.redis = redis
        self.script = script
        self.guard = guard
        #: Seconds a settlement waits for an admission to travel with.
        self.delay = delay
        self._queued: dict[str, _Queued] = {}
        self._sending: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        #: Batches sent and operations in them since this outbox was made (for the bench).
        self.batches = 0
        self.operations = 0

    def admit(self, key: str, operation: str) -> Any:
        """Queue an admission for the group whose script key is ``key``; await the result
        for the script's answer, None when Redis is unavailable."""
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        queued = self._queue(key, operation)
        queued.waiters.append(waiter)
        self._wake(now=True)
        return waiter

    def defer(self, key: str, operation: str) -> None:
        """Queue an operation nobody waits for, a settlement or a count (sent with the next
        admission or after ``delay``)."""
        self._queue(key, operation).deferred += 1
        self._wake(now=False)

    async def flush(self) -> None:
        """Send everything queued now and wait until it is applied (or lost)."""
        while self._queued or self._sending is not None:
            if self._sending is None:
                self._start()
            assert self._sending is not None
            await asyncio.shield(self._sending)

    def _queue(self, key: str, operation: str) -> _Queued:
        queued = self._queued.get(key)
        if queued is None:
            queued = self._queued[key] = _Queued(key)
        queued.operations.append(operation)
        return queued

    def _wake(self, *, now: bool) -> None:
        if self._sending is not None:
            return  # the sender takes what is queued when its batch returns
        if now:
            self._start()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.delay, self._start)

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._sending is None and self._queued:
            self._sending = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued, {}
                await self._deliver(batch)
                if not any(queued.waiters for queued in self._queued.values()):
                    break
        finally:
            self._sending = None
            if self._queued:
                self._wake(now=any(queued.waiters for queued in self._queued.values()))

    async def _deliver(self, batch: dict[str, _Queued]) -> None:
        self.batches += 1
        self.operations += sum(len(q.waiters) + q.deferred for q in batch.values())
        try:
            answers = await self.guard.run(lambda: self._call(list(batch.values())), None)
        except BaseException as error:  # a bug, or shutdown: nobody may wait forever
            for queued in batch.values():
                for waiter in queued.waiters:
                    if waiter.done():
                        continue
                    if isinstance(error, Exception):
                        waiter.set_exception(error)
                    else:
                        waiter.cancel()
            raise
        if answers is None:
            lost = sum(queued.deferred for queued in batch.values())
            if lost:
                logger.warning(
                    "Limits of %d requests not counted or settled: Redis unavailable", lost
                )
        for index, queued in enumerate(batch.values()):
            results = answers[index] if answers is not None else [None] * len(queued.waiters)
            for waiter, result in zip(queued.waiters, results, strict=True):
                if not waiter.done():  # its request may have been cancelled meanwhile
                    waiter.set_result(result)

    async def _call(self, groups: list[_Queued]) -> list[list[bytes]]:
        if len(groups) == 1:
            replies = [await self.script(keys=[groups[0].key], args=groups[0].operations)]
        else:
            async with self.redis.pipeline(transaction=False) as pipe:
                for queued in groups:
                    pipe.evalsha(self.script.sha, 1, queued.key, *queued.operations)
                replies = await pipe.execute(raise_on_error=False)
            for index, reply in enumerate(replies):
                if isinstance(reply, NoScriptError):  # Redis restarted: none of it ran
                    queued = groups[index]
                    replies[index] = await self.script(keys=[queued.key], args=queued.operations)
                elif isinstance(reply, REDIS_ERRORS):
                    raise reply
        return [reply.split(b",") if reply else [] for reply in replies]
