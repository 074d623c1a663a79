"""The upstream HTTP client: aiohttp against httpx, the same requests to the same fast fake
upstream, one client process, 32 concurrent requests (why the gateway uses aiohttp)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httpx
import orjson

from bench.processes import background, free_port

BODY = orjson.dumps({"model": "bench-model", "messages": [{"role": "user", "content": "hi"}]})
HEADERS = {"content-type": "application/json"}


async def _closed_loop(send: Callable[[], Awaitable[None]], total: int, concurrency: int) -> float:
    left = [total]

    async def client() -> None:
        while left[0] > 0:
            left[0] -= 1
            await send()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return total / (time.perf_counter() - started)


async def _aiohttp(url: str, total: int, concurrency: int) -> float:
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=256)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send() -> None:
            async with session.post(url, data=BODY, headers=HEADERS) as response:
                await response.read()

        return await _closed_loop(send, total, concurrency)


async def _httpx(url: str, total: int, concurrency: int) -> float:
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(limits=limits) as client:

        async def send() -> None:
            (await client.post(url, content=BODY, headers=HEADERS)).read()

        return await _closed_loop(send, total, concurrency)


def run(quick: bool = False) -> dict[str, Any]:
    total = 500 if quick else 3000
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    command = [sys.executable, "-m", "bench.upstream", str(port)]
    with background(command, ready_url=f"http://127.0.0.1:{port}/v1/models"):
        return {
            "aiohttp": asyncio.run(_aiohttp(url, total, 32)),
            "httpx": asyncio.run(_httpx(url, total, 32)),
        }


def report(figures: dict[str, Any]) -> str:
    ratio = figures["aiohttp"] / figures["httpx"]
    return (
        "## Upstream HTTP client (32 concurrent requests, fake upstream on 127.0.0.1)\n\n"
        "| client | requests/s |\n| --- | ---: |\n"
        f"| aiohttp | {figures['aiohttp']:.0f} |\n| httpx | {figures['httpx']:.0f} |\n\n"
        f"aiohttp does {ratio:.1f}x the requests of httpx here: the gateway uses aiohttp.\n"
    )


if __name__ == "__main__":
    print(report(run(quick="--quick" in sys.argv)))
