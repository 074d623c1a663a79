"""The HTTP clients for upstream calls, one of each per process.

The request path (the adapters' JSON and SSE calls) uses :attr:`UpstreamHttp.client`, the
lean keep-alive client of :mod:`modelyard.gateway.http1_client`; every other call
(connection checks, provider fine-tuning with its uploads, the training advice) uses the
aiohttp :attr:`UpstreamHttp.session`. On the 2-core reference machine, 32 concurrent
requests to a fast upstream ran at about 7,000 requests/s with aiohttp and 400 with
httpx (``python -m bench.http_clients``, also part of ``make bench``, which measures the
lean client too).
"""

from __future__ import annotations

import aiohttp

from modelyard.gateway.http1_client import CONNECTIONS_PER_ORIGIN, Http1Client

__all__ = ["UpstreamHttp"]

#: Connections kept open per upstream host.
CONNECTIONS_PER_HOST = CONNECTIONS_PER_ORIGIN


class UpstreamHttp:
    """Creates its clients lazily, inside the running event loop, and closes them once."""

    def __init__(self, *, connect_timeout: float = 10.0) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._client: Http1Client | None = None
        self._connect_timeout = connect_timeout

    @property
    def client(self) -> Http1Client:
        """The request path's client (JSON and SSE POSTs to providers)."""
        if self._client is None:
            self._client = Http1Client(connect_timeout=self._connect_timeout)
        return self._client

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=0, limit_per_host=CONNECTIONS_PER_HOST, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout),
                trust_env=False,
                auto_decompress=True,
            )
        return self._session

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
