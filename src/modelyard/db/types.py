"""Column types: encrypted secrets and timezone-aware UTC timestamps.

:class:`EncryptedString` is the only code that touches ciphertext. It finds the keyring on
the engine's dialect (see :func:`modelyard.db.engine.attach_keyring`), so every engine,
and every test, carries its own keys and no global state is involved.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect, Text
from sqlalchemy.types import TypeDecorator

from modelyard.security.encryption import EncryptionKeyError, Keyring
from modelyard.security.redaction import secret_registry

__all__ = ["EncryptedString", "UTCDateTime", "keyring_of", "utcnow"]

KEYRING_ATTRIBUTE = "modelyard_keyring"


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def keyring_of(dialect: Dialect) -> Keyring:
    """Return the keyring attached to ``dialect`` or explain how to attach one."""
    keyring = getattr(dialect, KEYRING_ATTRIBUTE, None)
    if not isinstance(keyring, Keyring):
        raise EncryptionKeyError(
            "This database engine has no encryption keys; create it with "
            "modelyard.db.engine.create_engine(settings) so secrets can be stored."
        )
    return keyring


class EncryptedString(TypeDecorator[str]):
    """A string stored as Fernet ciphertext; reads give the plaintext back."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return keyring_of(dialect).encrypt(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        plaintext = keyring_of(dialect).decrypt(value)
        secret_registry.add(plaintext)
        return plaintext


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite included)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use modelyard.db.types.utcnow()")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
