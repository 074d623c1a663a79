"""A third-party provider plugin: pip-installed, found through the ``modelyard.providers``
entry points like the built-in kinds, and routed to by the gateway (official openai SDK)."""

from __future__ import annotations

import openai
import pytest
from pydantic import ValidationError

from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.gateway.adapters.registry import installed_adapters
from modelyard.providers.key_format import InvalidKeyFormat, check_key_format
from modelyard.providers.kinds import ProviderKind, kind_info
from modelyard.providers.system_keys import collect_system_keys
from tests.plugins.conftest import add_provider

ECHO_KEY = "echo-key-0123456789"


def test_the_plugin_kind_is_installed_like_a_built_in_one() -> None:
    kind = ProviderKind("echo")
    assert kind in ProviderKind and kind is ProviderKind("echo")
    assert list(ProviderKind)[-1] is kind  # after the built-in kinds
    spec = kind_info("echo")
    assert (spec.label, spec.default_base_url) == ("Echo", "http://echo.invalid")
    assert "EchoAdapter" in {adapter.__name__ for adapter in installed_adapters()}
    # Its key format, system keys and settings work as a built-in kind's do.
    assert check_key_format("echo", f"  {ECHO_KEY} ") == ECHO_KEY
    with pytest.raises(InvalidKeyFormat, match='Echo API key should start with "echo-"'):
        check_key_format("echo", "sk-not-an-echo-key")
    assert collect_system_keys({"ECHO_API_KEY": ECHO_KEY}) == {kind: [ECHO_KEY]}
    settings = Settings(provider_base_urls={"echo": "http://echo.internal/"}, _env_file=None)  # type: ignore[call-arg]
    assert settings.provider_base_urls == {"echo": "http://echo.internal"}


def test_an_unknown_kind_is_still_refused() -> None:
    with pytest.raises(ValueError, match="not a valid ProviderKind"):
        ProviderKind("echoes")
    with pytest.raises(ValidationError, match="unknown provider kinds"):
        Settings(provider_base_urls={"echoes": "http://x"}, _env_file=None)  # type: ignore[call-arg]


async def test_a_chat_completion_is_routed_to_the_plugin(
    database: Database, sdk: openai.AsyncOpenAI
) -> None:
    await add_provider(database, "echo box", "http://echo.invalid", ECHO_KEY, kind="echo")
    completion = await sdk.chat.completions.create(
        model="echo/parrot", messages=[{"role": "user", "content": "hello from a plugin"}]
    )
    assert completion.choices[0].message.content == "echo: hello from a plugin"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.prompt_tokens == 4

    with pytest.raises(openai.BadRequestError, match="does not offer streaming"):
        await sdk.chat.completions.create(
            model="echo/parrot", messages=[{"role": "user", "content": "hi"}], stream=True
        )
