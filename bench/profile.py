"""Where one gateway worker spends its time under load, and what a change saves.

``python -m bench.profile`` starts the fake upstream and one ``modelyard serve`` worker as
``bench.gateway`` does, sends chat requests at 16 clients, samples the worker with py-spy
(``pip install py-spy``) and prints the functions with the most samples of their own and
the gateway's own functions by inclusive share (``--stream``: streamed answers;
``--parts budget,redis``: deployed with those parts, as ``bench.deployment`` does, here
and with ``--cpu``).
``--cpu CHECKOUT…`` instead measures the worker's CPU time per request (from ``/proc``:
less sensitive to a busy machine than requests per second) for each checkout's ``src``,
all running, loads alternating, nine rounds (``--concurrency``: clients, 16 by default):
the ratio of two checkouts is what a change saved.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from statistics import median

from bench.deployment import PLATFORM, deployed
from bench.gateway import MODEL
from bench.processes import background, cpu_seconds, free_port, load

#: py-spy from this interpreter's environment (a venv's ``bin`` need not be on ``PATH``).
PY_SPY = str(Path(sys.executable).with_name("py-spy"))
_FRAME = re.compile(r"(.*) \((.*?)(?::\d+)?\)$")


def cpu_per_request(
    checkouts: list[Path],
    requests: int = 2000,
    rounds: int = 9,
    stream: bool = False,
    concurrency: int = 16,
    parts: frozenset[str] = frozenset(),
) -> None:
    """Print each checkout's median CPU microseconds per request (and requests per second,
    the noisier figure) at ``concurrency`` clients, each worker deployed with ``parts``.
    Every checkout's worker runs for the whole measurement and the loads alternate between
    them, round by round, so a machine that slows down for a while slows them all alike."""
    figures: dict[Path, list[float]] = collections.defaultdict(list)
    rates: dict[Path, list[float]] = collections.defaultdict(list)
    with ExitStack() as stack:
        workers = {
            checkout: stack.enter_context(_deployed(parts, checkout / "src"))
            for checkout in checkouts
        }
        for _ in range(rounds):
            for checkout, (pid, url, token) in workers.items():
                before = cpu_seconds(pid)
                result = load(
                    url,
                    token=token,
                    model=MODEL,
                    requests=requests,
                    concurrency=concurrency,
                    stream=stream,
                )
                rates[checkout].append(result["rps"])
                figures[checkout].append((cpu_seconds(pid) - before) / requests * 1e6)
    first = median(figures[checkouts[0]])
    for checkout in checkouts:
        value = median(figures[checkout])
        print(
            f"{checkout}: {value:.0f} us CPU per request ({value / first:.2f}x the first),"
            f" {median(rates[checkout]):.0f} requests/s"
        )


def _key(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    where = match.group(2).split("site-packages/")[-1].split("/src/")[-1]
    return f"{match.group(1)} ({where})"


@contextmanager
def _deployed(parts: frozenset[str], src: Path | None = None) -> Iterator[tuple[int, str, str]]:
    """``(pid, chat URL, token)`` of one worker deployed with ``parts`` (bench.deployment),
    running the code of ``src`` if given, with an upstream of its own."""
    upstream, failing = free_port(), free_port()
    upstream_cmd = [sys.executable, "-m", "bench.upstream", str(upstream)]
    with (
        background(upstream_cmd, ready_url=f"http://127.0.0.1:{upstream}/v1/models"),
        deployed(parts, upstream, failing, src) as (url, token, pid),
    ):
        yield pid, url, token


def profile(
    requests: int = 6000,
    stream: bool = False,
    parts: frozenset[str] = frozenset(),
    top: int = 25,
) -> None:
    """Print the main thread's top functions by own and (the gateway's) inclusive samples."""
    worker = _deployed(parts)
    with tempfile.TemporaryDirectory() as tmp, worker as (pid, url, token):
        raw = Path(tmp) / "stacks.txt"
        command = [PY_SPY, "record", "--pid", str(pid), "--format", "raw", "--rate", "500"]
        spy = subprocess.Popen(
            [*command, "-o", str(raw)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1)
        load(url, token=token, model=MODEL, requests=requests, concurrency=16, stream=stream)
        spy.send_signal(2)
        spy.wait(timeout=60)
        own: collections.Counter[str] = collections.Counter()
        inclusive: collections.Counter[str] = collections.Counter()
        total = 0
        for line in raw.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if "modelyard/cli/main.py" not in stack:  # the event loop's thread only
                continue
            frames = [_key(frame) for frame in stack.split(";")]
            total += int(count)
            own[frames[-1]] += int(count)
            for frame in set(frames):
                inclusive[frame] += int(count)
    print(f"{total} samples of the event loop's thread\n\n| own samples | function |\n|---:|---|")
    for name, count in own.most_common(20):
        print(f"| {100 * count / total:.1f}% | `{name}` |")
    print("\n| inclusive | gateway function |\n|---:|---|")
    ours = [(n, c) for n, c in inclusive.most_common() if "modelyard/" in n and c < total]
    for name, count in ours[:top]:
        print(f"| {100 * count / total:.1f}% | `{name}` |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cpu", nargs="+", type=Path, metavar="CHECKOUT")
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--stream", action="store_true", help="Streamed chat requests.")
    parser.add_argument("--concurrency", type=int, default=16, help="Clients (--cpu only).")
    parser.add_argument("--top", type=int, default=25, help="Gateway functions to list.")
    parser.add_argument(
        "--parts",
        default="",
        help=f"Deployed with these of {','.join(sorted(PLATFORM))} (bench.deployment).",
    )
    args = parser.parse_args()
    parts = frozenset(part for part in args.parts.split(",") if part)
    if not parts <= PLATFORM:
        parser.error(f"--parts: choose among {','.join(sorted(PLATFORM))}")
    if args.cpu:
        cpu_per_request(args.cpu, stream=args.stream, concurrency=args.concurrency, parts=parts)
    else:
        profile(args.requests, args.stream, parts, args.top)


if __name__ == "__main__":
    main()
