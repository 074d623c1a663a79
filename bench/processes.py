"""Starting and stopping the processes a benchmark measures."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx


def cpu_seconds(pid: int) -> float:
    """The user and system CPU time process ``pid`` has used so far (from ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pin(pid: int, cpus: set[int]) -> None:
    """Keep every thread of process ``pid`` (0: this one) on ``cpus``; the threads and
    processes it starts later inherit that."""
    tasks = Path(f"/proc/{pid or os.getpid()}/task")
    for tid in (int(name) for name in os.listdir(tasks)):
        try:
            os.sched_setaffinity(tid, cpus)
        except ProcessLookupError:  # a thread that ended meanwhile
            continue


def split_cpus() -> tuple[set[int], set[int]] | None:
    """This process's CPUs as (one for a measured server, the rest for everything else),
    or ``None`` when there is only one."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[-1]}, set(cpus[:-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def background(
    args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None, ready_url: str
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``args`` until the block ends; ``ready_url`` answers once it is serving."""
    log = open(os.devnull, "wb")
    process = subprocess.Popen(args, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_up(ready_url, process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def load(
    url: str,
    *,
    token: str = "none",
    requests: int,
    concurrency: int,
    stream: bool = False,
    model: str = "bench-model",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the load generator in its own process and return its figures (``extra``: fields
    added to every request body)."""
    args = [
        sys.executable,
        "-m",
        "bench.load",
        url,
        "--token",
        token,
        "--model",
        model,
        "--requests",
        str(requests),
        "--concurrency",
        str(concurrency),
    ]
    if stream:
        args.append("--stream")
    if extra:
        args += ["--extra", json.dumps(extra)]
    output = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(output)
    return result
