"""Load from ``wrk`` (Debian's package ``wrk``), a compiled load generator, when installed.

The Python generator (:mod:`bench.load`) spends about 0.4 of a worker's CPU time per
request; on a 2-core machine that is CPU taken from the server it measures, which
understates most what needs both cores (``--workers 2``). ``wrk`` spends about a tenth of
that. It runs for a time rather than a number of requests and does not see chunks, so
the bench uses it beside the Python generator, for throughput only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["available", "wrk_load"]

#: Sends the body and the bearer token the environment gives (``wrk`` has no flag for a body).
_SCRIPT = """
wrk.method = "POST"
wrk.body = os.getenv("BENCH_WRK_BODY")
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer " .. os.getenv("BENCH_WRK_TOKEN")
"""
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def available() -> bool:
    """Whether ``wrk`` is on ``PATH``."""
    return shutil.which("wrk") is not None


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _figures(output: str, seconds: float) -> dict[str, Any]:
    """``bench.load``'s keys (those ``wrk`` gives) from ``wrk --latency``'s report."""
    done = re.search(r"^\s*(\d+) requests in", output, re.MULTILINE)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    if done is None or rate is None:
        raise RuntimeError(f"wrk printed no request count:\n{output}")
    latency = dict(re.findall(r"^\s*(50|99)(?:\.000)?%\s+(\S+)$", output, re.MULTILINE))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    transport_errors = sum(int(n) for n in socket.groups()) if socket else 0
    requests = int(done.group(1))
    return {
        "requests": requests,
        "errors": (int(non_2xx.group(1)) if non_2xx else 0) + transport_errors,
        "transport_errors": transport_errors,
        "seconds": seconds,
        "rps": float(rate.group(1)),
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
    }


def wrk_load(
    url: str,
    *,
    token: str = "none",
    model: str = "bench-model",
    concurrency: int,
    seconds: float = 6.0,
) -> dict[str, Any]:
    """Chat requests from ``concurrency`` connections for ``seconds`` (one thread: the
    machine's other core stays the server's)."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "Say something short."}],
        "stream": False,
    }
    env = {**os.environ, "BENCH_WRK_BODY": json.dumps(body), "BENCH_WRK_TOKEN": token}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(_SCRIPT)
        command = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--latency", "-s"]
        output = subprocess.run(
            [*command, str(script), url], env=env, check=True, capture_output=True, text=True
        ).stdout
    return _figures(output, seconds)
