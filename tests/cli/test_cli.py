"""The command line: setup, users, tokens, secrets and db, run as an operator would."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from modelyard.accounts.api_tokens import resolve_api_token
from modelyard.accounts.users import authenticate
from modelyard.config import Settings
from modelyard.db.engine import create_database
from modelyard.db.models import UserProviderKey
from tests.cli_helpers import invoke, isolate_cli


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolate_cli(tmp_path, monkeypatch)


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, _env_file=None)  # type: ignore[call-arg]


def test_setup_creates_the_admin_once_with_a_generated_password(data_dir: Path) -> None:
    code, output = invoke("setup")
    assert code == 0, output
    assert "Created admin account admin@modelyard.local" in output
    password = re.search(r"Generated password .*: (\S+)", output)
    assert password is not None

    async def check() -> None:
        database = create_database(_settings(data_dir))
        async with database.sessions() as session:
            user = await authenticate(
                session, email="admin@modelyard.local", password=password.group(1)
            )
            assert user.is_staff
        await database.dispose()

    asyncio.run(check())
    code, again = invoke("setup")
    assert code == 0 and "Admin account exists already" in again
    assert password.group(1) not in again


def test_setup_takes_admin_credentials_from_the_environment(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_ADMIN_EMAIL", "Boss@Example.com")
    monkeypatch.setenv("MODELYARD_ADMIN_PASSWORD", "a-long-admin-password")
    code, output = invoke("setup")
    assert code == 0 and "boss@example.com" in output
    assert "Generated password" not in output and "a-long-admin-password" not in output


def test_users_create_and_tokens_create(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert invoke("db", "upgrade")[0] == 0
    monkeypatch.setenv("MODELYARD_NEW_PASSWORD", "operator-password")
    code, output = invoke("users", "create", "ops@example.com", "--staff")
    assert code == 0 and "Created staff account ops@example.com" in output
    code, output = invoke("users", "create", "OPS@example.com")
    assert code == 1 and "exists already" in output

    code, output = invoke("tokens", "create", "--user", "ops@example.com", "--name", "deploy")
    assert code == 0
    token = re.search(r"myd_[A-Za-z0-9_\-]+", output)
    assert token is not None

    async def check() -> None:
        database = create_database(_settings(data_dir))
        async with database.sessions() as session:
            record = await resolve_api_token(session, token=token.group(0))
            assert record is not None and record.user.email == "ops@example.com"
            assert record.name == "deploy"
        await database.dispose()

    asyncio.run(check())
    code, output = invoke("tokens", "create", "--user", "nobody@example.com")
    assert code == 1 and "no account" in output

    code, output = invoke("users", "list")
    assert code == 0 and "ops@example.com" in output


def test_secrets_rotate_with_a_new_key_file_key(data_dir: Path) -> None:
    assert invoke("db", "upgrade")[0] == 0
    settings = _settings(data_dir)
    secret = "gsk_rotation-canary-0123456789abcdef"

    async def store() -> int:
        database = create_database(settings)
        async with database.sessions() as session:
            from modelyard.accounts.users import create_user

            user = await create_user(session, email="k@example.com", password="password1")
            record = UserProviderKey(user_id=user.id, provider="groq", api_key=secret)
            session.add(record)
            await session.commit()
            key_id = record.id
        await database.dispose()
        return key_id

    async def read(key_id: int) -> str:
        database = create_database(settings)
        try:
            async with database.sessions() as session:
                record = await session.get(UserProviderKey, key_id)
                assert record is not None
                return record.api_key
        finally:
            await database.dispose()

    key_id = asyncio.run(store())
    old_keys = settings.key_file.read_text().split()
    code, output = invoke("secrets", "rotate", "--new-key")
    assert code == 0 and "Re-encrypted 1 stored secret" in output, output
    new_keys = settings.key_file.read_text().split()
    assert len(new_keys) == 2 and new_keys[1] == old_keys[0]

    settings.key_file.write_text(new_keys[0] + "\n")  # drop the old key entirely
    assert asyncio.run(read(key_id)) == secret

    settings.key_file.write_text(old_keys[0] + "\n")  # only a key that no longer fits
    code, output = invoke("secrets", "rotate")
    assert code == 1 and "cannot be decrypted" in output
    assert secret not in output


def test_generate_key_prints_a_fernet_key() -> None:
    code, output = invoke("secrets", "generate-key")
    assert code == 0 and len(output.strip()) == 44


@pytest.mark.parametrize(
    "command",
    [
        ("users", "list"),
        ("jobs", "list"),
        ("finetune", "list"),
        ("train", "--data", "DATA", "--task", "classification"),
    ],
)
def test_a_command_on_an_unmigrated_database_says_what_to_run(
    data_dir: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\ngood,pos\nbad,neg\n")
    code, output = invoke(*(str(data) if part == "DATA" else part for part in command))
    assert code == 1, output
    assert "never migrated" in output and "modelyard setup" in output
    assert "Traceback" not in output and "OperationalError" not in output
    assert not (data_dir / "datasets").exists()  # nothing was half done
