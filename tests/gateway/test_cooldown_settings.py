"""The circuit breaker's policy comes from the settings (``MODELYARD_COOLDOWN_*``)."""

from __future__ import annotations

import asyncio

import openai
import pytest
from pydantic import ValidationError

from modelyard.config import Settings
from modelyard.db.engine import Database
from tests.fakes.fixtures import OPENAI_KEY
from tests.fakes.openai_chat import ChatOpenAI
from tests.gateway.conftest import add_provider

ASK = [{"role": "user", "content": "hello"}]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """One failure opens a breaker, for 0.5 s."""
    settings.cooldown_failures = 1
    settings.cooldown_seconds = 0.5
    settings.cooldown_max_seconds = 0.5
    return settings


async def test_the_breaker_opens_and_recovers_as_configured(
    sdk: openai.AsyncOpenAI, database: Database, upstream: ChatOpenAI
) -> None:
    with ChatOpenAI(keys={OPENAI_KEY}) as primary:
        await add_provider(database, "primary", primary.base_url, OPENAI_KEY, default=True)
        await add_provider(database, "fallback", upstream.base_url, OPENAI_KEY)
        primary.fail_with(503)
        first = await sdk.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=ASK
        )
        assert first.headers["x-modelyard-attempts"] == "2"
        # One 503 was enough (the default needs three in a row): the primary is skipped.
        second = await sdk.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=ASK
        )
        assert second.headers["x-modelyard-attempts"] == "1"
        assert len(primary.requests) == 1
        primary.reset()  # healthy again, its request log emptied
        await asyncio.sleep(0.6)  # the configured open period has passed
        probe = await sdk.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=ASK
        )
        assert probe.headers["x-modelyard-attempts"] == "1"
        assert len(primary.requests) == 1 and len(upstream.requests) == 2  # the probe: primary


def test_a_cap_below_the_first_period_is_refused(settings: Settings) -> None:
    with pytest.raises(ValidationError, match="MODELYARD_COOLDOWN_MAX_SECONDS"):
        Settings(data_dir=settings.data_dir, cooldown_seconds=10, cooldown_max_seconds=5)
