"""A closed-loop load generator: C clients send N requests in total, latencies recorded.

Run as its own process (``python -m bench.load …``) so it does not share the event loop
of what it measures; it prints one JSON object with the figures: ``errors`` (answers that
were not 200, plus requests that got no answer), ``statuses`` (answers by status code),
``transport_errors`` (no answer: connection refused or reset, timeout). With
``--request-id-prefix P`` request ``i`` carries ``x-request-id: P`` + ``i`` (8 digits), so
what the server recorded can be matched request by request. A URL ending in ``/responses``
gets a Responses API body (``input``) instead of a chat one; ``--extra`` adds fields.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections import Counter
from typing import Any

import aiohttp


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(
    url: str,
    token: str,
    total: int,
    concurrency: int,
    stream: bool,
    model: str = "bench-model",
    request_id_prefix: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    prompt: Any = [{"role": "user", "content": "Say something short."}]
    key = "messages"
    if url.endswith("/responses"):  # OpenAI's Responses API
        key, prompt = "input", prompt[0]["content"]
    fields = {"model": model, key: prompt, "stream": stream, **(extra or {})}
    body = json.dumps(fields).encode()
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    latencies: list[float] = []
    first_chunks: list[float] = []
    statuses: Counter[int] = Counter()
    transport_errors = 0
    sent = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            nonlocal sent, transport_errors
            while sent < total:
                number = sent
                sent += 1
                request_headers = headers
                if request_id_prefix is not None:
                    request_id = f"{request_id_prefix}{number:08d}"
                    request_headers = {**headers, "x-request-id": request_id}
                started = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=request_headers) as response:
                        if stream:
                            first = True
                            async for _line in response.content:
                                if first:
                                    first_chunks.append(time.perf_counter() - started)
                                    first = False
                        else:
                            await response.read()
                        statuses[response.status] += 1
                except (aiohttp.ClientError, TimeoutError):
                    transport_errors += 1
                    continue
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    errors = transport_errors + sum(n for status, n in statuses.items() if status != 200)
    result: dict[str, Any] = {
        "requests": len(latencies),
        "errors": errors,
        "statuses": {str(status): n for status, n in sorted(statuses.items())},
        "transport_errors": transport_errors,
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
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
    parser.add_argument("--request-id-prefix", default=None)
    parser.add_argument("--extra", default=None, help="JSON fields added to every body")
    args = parser.parse_args()
    result = asyncio.run(
        run(
            args.url,
            args.token,
            args.requests,
            args.concurrency,
            args.stream,
            args.model,
            args.request_id_prefix,
            json.loads(args.extra) if args.extra else None,
        )
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
