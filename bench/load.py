"""A closed-loop load generator: C clients send N requests in total, latencies recorded.

Run as its own process (``python -m bench.load …``) so it does not share the event loop
of what it measures; it prints one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import aiohttp


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(
    url: str, token: str, total: int, concurrency: int, stream: bool, model: str = "bench-model"
) -> dict[str, float]:
    body = json.dumps(
        {
            "model": model,
            "messages": [{"role": "user", "content": "Say something short."}],
            "stream": stream,
        }
    ).encode()
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    latencies: list[float] = []
    first_chunks: list[float] = []
    errors = 0
    remaining = total
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            nonlocal remaining, errors
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    if stream:
                        first = True
                        async for _line in response.content:
                            if first:
                                first_chunks.append(time.perf_counter() - started)
                                first = False
                    else:
                        await response.read()
                    if response.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    result = {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000,
    }
    if first_chunks:
        result["ttfc_p50_ms"] = percentile(first_chunks, 0.5) * 1000
        result["ttfc_p99_ms"] = percentile(first_chunks, 0.99) * 1000
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--token", default="none")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--model", default="bench-model")
    args = parser.parse_args()
    result = asyncio.run(
        run(args.url, args.token, args.requests, args.concurrency, args.stream, args.model)
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
