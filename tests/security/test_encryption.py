"""Encrypted columns: ciphertext at rest, rotation, and clear errors for missing keys."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text

from modelyard.config import Settings
from modelyard.db.engine import Database, attach_keyring, create_database
from modelyard.db.models import UserProviderKey
from modelyard.db.secrets_rotation import encrypted_columns, rotate_secrets
from modelyard.security.encryption import (
    EncryptionKeyError,
    Keyring,
    SecretDecryptionError,
    add_key_to_file,
    load_keyring,
)
from tests.helpers import make_user

CANARY = "sk-canary-0123456789abcdefABCDEF"


async def _store_key(database: Database, email: str, value: str) -> int:
    user = await make_user(database, email)
    async with database.sessions() as session:
        record = UserProviderKey(user_id=user.id, provider="openai", api_key=value)
        session.add(record)
        await session.commit()
        return record.id


async def _raw(database: Database, key_id: int) -> str:
    async with database.engine.connect() as connection:
        result = await connection.execute(
            text("SELECT api_key FROM user_provider_keys WHERE id = :id"), {"id": key_id}
        )
        return str(result.scalar_one())


async def _read(database: Database, key_id: int) -> str:
    async with database.sessions() as session:
        record = await session.get(UserProviderKey, key_id)
        assert record is not None
        return record.api_key


async def test_raw_row_holds_ciphertext_and_orm_reads_plaintext(database: Database) -> None:
    key_id = await _store_key(database, "a@example.com", CANARY)
    raw = await _raw(database, key_id)
    assert CANARY not in raw
    assert raw.startswith("gAAAA")  # a Fernet token
    assert await _read(database, key_id) == CANARY


async def test_wrong_key_gives_clear_error_not_garbage(database: Database) -> None:
    key_id = await _store_key(database, "b@example.com", CANARY)
    attach_keyring(database.engine, Keyring((Fernet.generate_key().decode(),), "a test keyring"))
    async with database.sessions() as session:
        with pytest.raises(SecretDecryptionError) as caught:
            await session.execute(select(UserProviderKey).where(UserProviderKey.id == key_id))
    message = str(caught.value)
    assert "cannot be decrypted" in message and "modelyard secrets rotate" in message
    assert CANARY not in message


async def test_rotation_keeps_every_secret_readable(settings: Settings) -> None:
    old_key = settings.encryption_keys
    assert old_key is not None
    database = create_database(settings)
    values = {f"user{i}@example.com": f"hf_secretvalue{i:04d}abcdefgh" for i in range(5)}
    ids = {email: await _store_key(database, email, value) for email, value in values.items()}
    await database.dispose()

    new_key = Fernet.generate_key().decode()
    rotating = create_database(
        settings.model_copy(update={"encryption_keys": f"{new_key},{old_key}"})
    )
    assert await rotate_secrets(rotating) == len(values)
    await rotating.dispose()

    only_new = create_database(settings.model_copy(update={"encryption_keys": new_key}))
    for email, value in values.items():
        assert await _read(only_new, ids[email]) == value
    await only_new.dispose()

    only_old = create_database(settings)
    with pytest.raises(SecretDecryptionError):
        await _read(only_old, ids["user0@example.com"])
    await only_old.dispose()


def test_every_encrypted_column_is_found() -> None:
    assert ("user_provider_keys", "api_key") in {
        (table.name, column.name) for table, column in encrypted_columns()
    }


def test_key_file_is_created_with_mode_0600(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]
    keyring = load_keyring(settings)
    mode = stat.S_IMODE(settings.key_file.stat().st_mode)
    assert mode == 0o600
    assert load_keyring(settings) == keyring  # the same key next time

    add_key_to_file(settings.key_file)
    rotated = load_keyring(settings)
    assert len(rotated.keys) == 2 and rotated.keys[1] == keyring.keys[0]
    assert stat.S_IMODE(settings.key_file.stat().st_mode) == 0o600


def test_missing_key_file_without_create_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(EncryptionKeyError, match="MODELYARD_ENCRYPTION_KEYS"):
        load_keyring(settings, create=False)


def test_malformed_key_is_refused() -> None:
    with pytest.raises(EncryptionKeyError, match="not a valid Fernet key"):
        Keyring(("not-a-key",), "MODELYARD_ENCRYPTION_KEYS")


def test_keyring_from_environment_splits_newest_first(tmp_path: Path) -> None:
    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings = Settings(  # type: ignore[call-arg]
        data_dir=tmp_path, encryption_keys=f" {first} , {second} ", _env_file=None
    )
    keyring = load_keyring(settings)
    assert keyring.keys == (first, second)
    assert not settings.key_file.exists()
    token = Keyring((second,), "old").encrypt("value")
    assert Fernet(first.encode()).decrypt(keyring.rotate(token).encode()) == b"value"
