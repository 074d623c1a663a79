"""The upstream HTTP clients: the gateway's own HTTP/1.1 client (the request path's), aiohttp
(calls off it) and httpx, the same requests to the same fast fake upstream, one client
process, 32 concurrent requests: requests per second and the client's CPU per request."""

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
from modelyard.gateway.http1_client import Http1Client

BODY = orjson.dumps({"model": "bench-model", "messages": [{"role": "user", "content": "hi"}]})
HEADERS = {"content-type": "application/json"}


async def _closed_loop(
    send: Callable[[], Awaitable[None]], total: int, concurrency: int
) -> tuple[float, float]:
    """Requests per second and the client's CPU microseconds per request."""
    left = [total]

    async def client() -> None:
        while left[0] > 0:
            left[0] -= 1
            await send()

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    used = time.process_time() - cpu
    return total / (time.perf_counter() - started), used / total * 1e6


async def _own(url: str, total: int, concurrency: int) -> tuple[float, float]:
    client = Http1Client()
    try:

        async def send() -> None:
            await client.post(url, headers=HEADERS, body=BODY, timeout=10)

        await _closed_loop(send, total // 5, concurrency)  # warm: connections open
        return await _closed_loop(send, total, concurrency)
    finally:
        await client.aclose()


async def _aiohttp(url: str, total: int, concurrency: int) -> tuple[float, float]:
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=256)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send() -> None:
            async with session.post(url, data=BODY, headers=HEADERS) as response:
                await response.read()

        await _closed_loop(send, total // 5, concurrency)
        return await _closed_loop(send, total, concurrency)


async def _httpx(url: str, total: int, concurrency: int) -> tuple[float, float]:
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(limits=limits) as client:

        async def send() -> None:
            (await client.post(url, content=BODY, headers=HEADERS)).read()

        await _closed_loop(send, total // 5, concurrency)
        return await _closed_loop(send, total, concurrency)


def run(quick: bool = False) -> dict[str, Any]:
    total = 500 if quick else 3000
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    command = [sys.executable, "-m", "bench.upstream", str(port)]
    with background(command, ready_url=f"http://127.0.0.1:{port}/v1/models"):
        return {
            "modelyard.gateway.http1_client": asyncio.run(_own(url, total, 32)),
            "aiohttp": asyncio.run(_aiohttp(url, total, 32)),
            "httpx": asyncio.run(_httpx(url, total, 32)),
        }


def report(figures: dict[str, Any]) -> str:
    rows = "".join(
        f"| {name} | {rate:.0f} | {cpu:.0f} µs |\n" for name, (rate, cpu) in figures.items()
    )
    own, aiohttp_cpu = figures["modelyard.gateway.http1_client"][1], figures["aiohttp"][1]
    return (
        "## Upstream HTTP clients (32 concurrent requests, fake upstream on 127.0.0.1)\n\n"
        "| client | requests/s | client CPU per request |\n| --- | ---: | ---: |\n"
        f"{rows}\n"
        f"The gateway's own client uses {own / aiohttp_cpu:.2f}x aiohttp's CPU per request: "
        "it carries the request path's calls; aiohttp the calls off it.\n"
    )


if __name__ == "__main__":
    print(report(run(quick="--quick" in sys.argv)))
