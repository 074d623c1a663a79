"""Fixtures for provider tests: the upstream HTTP session, real or recording."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from modelyard.gateway.http import UpstreamHttp
from tests.fakes.recording_http import RecordingHttp


@pytest.fixture
async def upstream_http() -> AsyncIterator[UpstreamHttp]:
    """The app's upstream HTTP session, as connection checks use it."""
    http = UpstreamHttp()
    yield http
    await http.aclose()


@pytest.fixture
def no_network() -> Iterator[UpstreamHttp]:
    """An upstream session that fails the test when a request is made."""

    def refuse(method: str, url: str) -> tuple[int, Any]:
        pytest.fail(f"no request expected ({method} {url})")

    yield RecordingHttp(refuse)
