"""Settings: defaults that run with no keys, DATABASE_URL, and placeholder refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from modelyard.config import Settings, normalise_database_url


def test_defaults_use_sqlite_in_the_data_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("MODELYARD_DATABASE_URL", raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.host == "127.0.0.1" and settings.port == 8000
    assert settings.data_dir == Path(".modelyard")
    assert settings.sqlalchemy_url.startswith("sqlite+aiosqlite:///")
    assert settings.sqlalchemy_url.endswith(".modelyard/modelyard.db")


def test_environment_variables_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("MODELYARD_PORT=9100\nDATABASE_URL=postgresql://u@db:5432/app\n")
    monkeypatch.setenv("MODELYARD_HOST", "0.0.0.0")  # noqa: S104
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("MODELYARD_DATABASE_URL", raising=False)
    settings = Settings(_env_file=env_file)  # type: ignore[call-arg]
    assert settings.host == "0.0.0.0"  # noqa: S104
    assert settings.port == 9100
    assert settings.sqlalchemy_url == "postgresql+asyncpg://u@db:5432/app"
    assert not settings.is_sqlite


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql+asyncpg://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_database_url_gets_the_async_driver(given: str, expected: str) -> None:
    assert normalise_database_url(given) == expected


@pytest.mark.parametrize("field", ["admin_password", "encryption_keys", "metrics_token"])
def test_placeholder_secrets_are_refused_outside_development(field: str) -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        Settings(env="production", _env_file=None, **{field: "changethis"})  # type: ignore[call-arg]
    allowed = Settings(env="development", _env_file=None, **{field: "changethis"})  # type: ignore[call-arg]
    assert getattr(allowed, field) == "changethis"


def test_provider_base_urls_are_checked() -> None:
    from pydantic import ValidationError

    from modelyard.config import Settings

    settings = Settings(
        provider_base_urls={"openai": "http://127.0.0.1:9/v1/"},
        _env_file=None,  # type: ignore[call-arg]
    )
    assert settings.provider_base_urls == {"openai": "http://127.0.0.1:9/v1"}
    with pytest.raises(ValidationError, match="unknown provider kinds"):
        Settings(provider_base_urls={"opnai": "http://x"}, _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="must start with http"):
        Settings(provider_base_urls={"groq": "ftp://x"}, _env_file=None)  # type: ignore[call-arg]


def test_trusted_proxies_default_to_none_and_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    import ipaddress

    assert Settings(_env_file=None).trusted_proxy_networks == ()  # type: ignore[call-arg]
    monkeypatch.setenv("MODELYARD_TRUSTED_PROXIES", " 10.0.0.1, 192.168.0.0/16 ,")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.trusted_proxies == "10.0.0.1,192.168.0.0/16"
    assert settings.trusted_proxy_networks == (
        ipaddress.ip_network("10.0.0.1/32"),
        ipaddress.ip_network("192.168.0.0/16"),
    )
    monkeypatch.setenv("MODELYARD_TRUSTED_PROXIES", "10.0.0.1, localhost")
    with pytest.raises(ValidationError, match="'localhost' is not an IP address"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_metrics_token_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).metrics_token is None  # type: ignore[call-arg]
    monkeypatch.setenv("MODELYARD_METRICS_TOKEN", "scrape-0123456789")
    assert Settings(_env_file=None).metrics_token == "scrape-0123456789"  # type: ignore[call-arg]
