"""A fake OpenAI-compatible upstream with a deterministic mix of faults, for load tests.

Each chat request the fake receives gets a number (1, 2, 3, … in arrival order) and
:class:`FaultPlan` maps that number to a fault, the same way on every run::

    plan = FaultPlan(seed=1)                 # 10% 429, 10% 503, 5% slow, 75% answered
    with FaultyOpenAI(plan=plan, slow_seconds=2, keys={KEY}) as fake:
        ...                                  # point a provider at fake.base_url
        fake.served                          # Counter({"ok": 1490, "rate_limited": 200, …})

Within every block of :attr:`FaultPlan.block` consecutive requests the shares are exact
(2 of 20 rate limited, 2 of 20 unavailable, 1 of 20 slow); their order inside a block is
shuffled by a RNG seeded with ``(seed, block number)``, so faults are not bunched in a
fixed pattern yet a request number always meets the same fault.

* ``rate_limited``: 429 in OpenAI's shape with ``Retry-After`` (:attr:`retry_after`);
* ``unavailable``: 503 in OpenAI's shape;
* ``slow``: a normal answer, sent after :attr:`slow_seconds` — set it above the gateway's
  upstream timeout so the gateway gives up first.

An upstream that is *down* needs no fake: point a provider at
:func:`tests.fakes.server.closed_port`.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal, Self

from starlette.requests import Request
from starlette.responses import Response

from tests.fakes.openai_chat import ChatOpenAI

__all__ = ["FAULTS", "Fault", "FaultPlan", "FaultyOpenAI"]

Fault = Literal["ok", "rate_limited", "unavailable", "slow"]
FAULTS: tuple[Fault, ...] = ("ok", "rate_limited", "unavailable", "slow")


@dataclass(frozen=True)
class FaultPlan:
    """Which fault request number ``n`` meets: exact shares per block, seeded order."""

    seed: int = 0
    block: int = 20
    rate_limited: int = 2
    unavailable: int = 2
    slow: int = 1

    def __post_init__(self) -> None:
        if min(self.rate_limited, self.unavailable, self.slow) < 0 or self.block < 1:
            raise ValueError("fault counts must be >= 0 and the block >= 1")
        if self.rate_limited + self.unavailable + self.slow > self.block:
            raise ValueError("more faults than requests in a block")

    def _block(self, number: int) -> list[Fault]:
        counts: dict[Fault, int] = {
            "rate_limited": self.rate_limited,
            "unavailable": self.unavailable,
            "slow": self.slow,
        }
        counts["ok"] = self.block - sum(counts.values())
        slots = [fault for fault, count in counts.items() for _ in range(count)]
        random.Random(f"{self.seed}:{number}").shuffle(slots)
        return slots

    def fault(self, n: int) -> Fault:
        """The fault of request number ``n`` (counted from 1)."""
        if n < 1:
            raise ValueError("requests are numbered from 1")
        block, position = divmod(n - 1, self.block)
        return self._block(block)[position]

    def share(self, fault: Fault) -> float:
        """The fraction of requests that meet ``fault``."""
        faults = self.rate_limited + self.unavailable + self.slow
        count = {
            "rate_limited": self.rate_limited,
            "unavailable": self.unavailable,
            "slow": self.slow,
            "ok": self.block - faults,
        }[fault]
        return count / self.block


class FaultyOpenAI(ChatOpenAI):
    """:class:`~tests.fakes.openai_chat.ChatOpenAI` whose chats meet :attr:`plan`'s faults.

    Only chat completions are numbered and faulted; the model list and embeddings answer
    normally. :attr:`served` counts what each chat request met. ``record_requests=False``
    keeps no copy of each request (the fake's memory stays flat over long runs).
    ``keep_alive_seconds``: how long an idle client connection is kept open (uvicorn's
    default, 5 s, when ``None``); shorter lets a test see a client's pool drain sooner.
    """

    def __init__(
        self,
        *,
        plan: FaultPlan | None = None,
        slow_seconds: float = 2.0,
        retry_after: int = 1,
        record_requests: bool = True,
        keep_alive_seconds: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.plan = plan or FaultPlan()
        self.slow_seconds = slow_seconds
        self.retry_after = retry_after
        self.record_requests = record_requests
        self.keep_alive_seconds = keep_alive_seconds
        self.served: Counter[Fault] = Counter()
        self._numbering = threading.Lock()
        self._received = 0

    @property
    def chats(self) -> int:
        """Chat requests received so far."""
        return self._received

    def start(self) -> Self:
        super().start()
        server = getattr(self.server, "_server", None)
        if self.keep_alive_seconds is not None and server is not None:
            # uvicorn reads this for each new connection.
            server.config.timeout_keep_alive = self.keep_alive_seconds
        return self

    def record(self, request: Any) -> None:
        if self.record_requests:
            super().record(request)

    def next_fault(self) -> Fault:
        """Number the request that just arrived and return its fault."""
        with self._numbering:
            self._received += 1
            fault = self.plan.fault(self._received)
            self.served[fault] += 1
            return fault

    async def chat_completions(self, request: Request) -> Response:
        fault = self.next_fault()
        if fault == "rate_limited":
            response = self.error(429, self.default_error_message(429))
            response.headers["retry-after"] = str(self.retry_after)
            return response
        if fault == "unavailable":
            return self.error(503, self.default_error_message(503))
        if fault == "slow":
            await asyncio.sleep(self.slow_seconds)
        return await super().chat_completions(request)
