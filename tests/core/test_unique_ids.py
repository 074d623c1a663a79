"""Ids from :mod:`modelyard.unique_ids`: 32 hex digits, never repeated in a process, in a
forked child (which draws a new prefix) or in another process."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from modelyard.unique_ids import unique_hex


def test_ids_are_unique_hex_in_and_across_processes() -> None:
    here = [unique_hex() for _ in range(10_000)]
    assert len(set(here)) == len(here)
    assert all(re.fullmatch(r"[0-9a-f]{32}", value) for value in here)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process
        os.write(write, unique_hex().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    forked = os.read(read, 64).decode()
    os.close(read)
    after = unique_hex()
    assert forked[:20] != after[:20]  # a new prefix in the child
    other = subprocess.run(
        [sys.executable, "-c", "from modelyard.unique_ids import unique_hex; print(unique_hex())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert len({*here, forked, after, other}) == len(here) + 3
