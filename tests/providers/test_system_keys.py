"""System keys from the environment and .env: every naming convention, order, placeholders."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from modelyard.providers.kinds import ProviderKind
from modelyard.providers.system_keys import (
    collect_system_keys,
    environment_with_dotenv,
    is_placeholder,
)


def test_every_naming_convention_in_order_without_duplicates() -> None:
    environ = {
        "HF_TOKEN": "hf_aaaaaaaaaaaaaaaaaaaaaaaa",
        "HF_TOKEN_2": "hf_bbbbbbbbbbbbbbbbbbbbbbbb",
        "HUGGINGFACE_TOKEN": "hf_cccccccccccccccccccccccc",
        "HF_API_KEY": "hf_aaaaaaaaaaaaaaaaaaaaaaaa",  # a duplicate
        "HUGGINGFACE_API_KEY": "hf_dddddddddddddddddddddddd",
        "VITE_HUGGINGFACE_API_KEY": "hf_eeeeeeeeeeeeeeeeeeeeeeee",
        "VITE_HF_API_KEY_3": "hf_ffffffffffffffffffffffff",
        "OPENAI_API_KEY": "sk-one-0000000000000000",
        "OPENAI_API_KEY_2": "sk-two-0000000000000000",
        "OPENAI_API_KEY_3": "sk-three-00000000000000",
        "ANTHROPIC_API_KEY": "sk-ant-real-000000000000",
        "GOOGLE_API_KEY": "AIza-google-0000000000000",
        "GROQ_API_KEY_2": "gsk_second_only_000000",
        "UNRELATED": "sk-not-a-provider-000000",
    }
    keys = collect_system_keys(environ)
    assert keys[ProviderKind.HUGGINGFACE] == [
        "hf_aaaaaaaaaaaaaaaaaaaaaaaa",
        "hf_bbbbbbbbbbbbbbbbbbbbbbbb",
        "hf_cccccccccccccccccccccccc",
        "hf_dddddddddddddddddddddddd",
        "hf_eeeeeeeeeeeeeeeeeeeeeeee",
        "hf_ffffffffffffffffffffffff",
    ]
    assert keys[ProviderKind.OPENAI] == [
        "sk-one-0000000000000000",
        "sk-two-0000000000000000",
        "sk-three-00000000000000",
    ]
    assert keys[ProviderKind.ANTHROPIC] == ["sk-ant-real-000000000000"]
    assert keys[ProviderKind.GOOGLE] == ["AIza-google-0000000000000"]
    assert keys[ProviderKind.GROQ] == ["gsk_second_only_000000"]
    assert ProviderKind.LOCAL not in keys


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "your_openai_api_key_here",
        "sk-ant-your-actual-key-here",
        "your-key",
        "YOUR_HF_TOKEN_HERE",
        "xxxxxxxx",
        "<your key>",
        "${OPENAI_API_KEY}",
        "changeme",
    ],
)
def test_placeholders_are_ignored_with_a_warning(
    value: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert is_placeholder(value)
    with caplog.at_level(logging.WARNING):
        keys = collect_system_keys(
            {"ANTHROPIC_API_KEY": value, "ANTHROPIC_API_KEY_2": "sk-ant-ok-0000000000"}
        )
    assert keys[ProviderKind.ANTHROPIC] == ["sk-ant-ok-0000000000"]
    assert "Ignoring ANTHROPIC_API_KEY: it holds a placeholder" in caplog.text


@pytest.mark.parametrize(
    "value", ["sk-proj-abc123def456", "hf_abcdefghijklmnopqrstu", "gsk_heresy0123"]
)
def test_real_looking_keys_are_not_placeholders(value: str) -> None:
    assert not is_placeholder(value)


def test_dotenv_is_read_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("GROQ_API_KEY=gsk_from_dotenv_000\nHF_TOKEN=hf_from_dotenv_0000000000000\n")
    monkeypatch.setenv("GROQ_API_KEY", "gsk_from_environment")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    merged = environment_with_dotenv(env_file)
    assert merged["GROQ_API_KEY"] == "gsk_from_environment"
    assert merged["HF_TOKEN"] == "hf_from_dotenv_0000000000000"
