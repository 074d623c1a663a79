"""Unique ids without a system call each: a random prefix per process and a counter.

``uuid4`` reads 16 bytes from the kernel for every id; the request path makes a few per
request (its request id, its usage event's id). Here each process draws 80 random bits
once (again in a forked child) and numbers its ids after them: 32 hex digits like a
UUID's, unique across processes and restarts, not guessable as a whole but not secret.
"""

from __future__ import annotations

import itertools
import os
import secrets

__all__ = ["unique_hex"]

_prefix = secrets.token_hex(10)
_counter = itertools.count()


def _reseed() -> None:
    global _prefix, _counter
    _prefix = secrets.token_hex(10)
    _counter = itertools.count()


os.register_at_fork(after_in_child=_reseed)


def unique_hex() -> str:
    """32 hex digits no other call in any process returns."""
    return f"{_prefix}{next(_counter):012x}"
