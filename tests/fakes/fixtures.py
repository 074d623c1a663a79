"""Pytest fixtures serving each fake provider; import the ones a test module uses::

    from tests.fakes.fixtures import fake_openai as fake_openai

(the ``as`` form keeps ruff from flagging the fixture parameter as a redefinition).
Each fixture yields a started fake accepting its ``*_KEY`` below, and stops it after.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.fakes.providers import (
    FakeAnthropic,
    FakeCustom,
    FakeGemini,
    FakeGroq,
    FakeHuggingFace,
    FakeOpenAI,
)

__all__ = [
    "ANTHROPIC_KEY",
    "CUSTOM_KEY",
    "GEMINI_KEY",
    "GROQ_KEY",
    "HUGGINGFACE_KEY",
    "OPENAI_KEY",
    "fake_anthropic",
    "fake_custom",
    "fake_gemini",
    "fake_groq",
    "fake_huggingface",
    "fake_openai",
    "http_client",
]

OPENAI_KEY = "sk-fake-openai-0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-fake-anthropic-0123456789abcdef"
GEMINI_KEY = "AIzaFakeGemini0123456789abcdefghijklmn"
GROQ_KEY = "gsk_fakegroq0123456789abcdef"
HUGGINGFACE_KEY = "hf_fakehuggingface0123456789abcdef"
CUSTOM_KEY = "custom-fake-token-0123456789"


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(keys={OPENAI_KEY}) as fake:
        yield fake


@pytest.fixture
def fake_groq() -> Iterator[FakeGroq]:
    with FakeGroq(keys={GROQ_KEY}) as fake:
        yield fake


@pytest.fixture
def fake_huggingface() -> Iterator[FakeHuggingFace]:
    with FakeHuggingFace(keys={HUGGINGFACE_KEY}) as fake:
        yield fake


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(keys={ANTHROPIC_KEY}) as fake:
        yield fake


@pytest.fixture
def fake_gemini() -> Iterator[FakeGemini]:
    with FakeGemini(keys={GEMINI_KEY}) as fake:
        yield fake


@pytest.fixture
def fake_custom() -> Iterator[FakeCustom]:
    with FakeCustom(keys={CUSTOM_KEY}) as fake:
        yield fake


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    """A real HTTP client that ignores proxy settings from the environment."""
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client
