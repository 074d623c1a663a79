"""Waiting for something another task, thread or process does: the one home of polling.

:func:`poll` returns the last value it fetched (once ``done`` holds, or at the deadline),
so the caller's own assertion says what was seen; :func:`eventually` fails by itself.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def poll(
    fetch: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    timeout: float,
    interval: float = 0.05,
) -> T:
    """``await fetch()`` until ``done(value)`` holds or ``timeout`` seconds pass; the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(interval)


def poll_sync(
    fetch: Callable[[], T], done: Callable[[T], bool], *, timeout: float, interval: float = 0.2
) -> T:
    """:func:`poll` for blocking code (another process's effects, read synchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(interval)


async def eventually(
    check: Callable[[], Awaitable[bool] | bool], timeout: float = 5, interval: float = 0.01
) -> None:
    """Wait until ``check()`` is true; an ``AssertionError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        outcome = check()
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(interval)
