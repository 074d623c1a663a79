"""Encryption of secrets at rest with ``cryptography``'s MultiFernet.

Keys come from ``MODELYARD_ENCRYPTION_KEYS`` (comma-separated, newest first) or from a key
file in the data directory, generated with mode 0600 on first use (one key per line,
newest first). The newest key encrypts; every key decrypts, so a new key can be put in
front and ``modelyard secrets rotate`` re-encrypts what is stored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from modelyard.config import Settings

__all__ = [
    "EncryptionKeyError",
    "Keyring",
    "SecretDecryptionError",
    "add_key_to_file",
    "load_keyring",
]


class EncryptionKeyError(RuntimeError):
    """The configured encryption keys are missing or malformed."""


class SecretDecryptionError(RuntimeError):
    """A stored secret cannot be decrypted with any configured key."""


@dataclass(frozen=True)
class Keyring:
    """The encryption keys in use, newest first, and where they came from."""

    keys: tuple[str, ...]
    source: str

    def __post_init__(self) -> None:
        if not self.keys:
            raise EncryptionKeyError(f"No encryption key found in {self.source}.")
        for position, key in enumerate(self.keys, start=1):
            try:
                Fernet(key.encode())
            except (ValueError, TypeError):
                raise EncryptionKeyError(
                    f"Encryption key {position} in {self.source} is not a valid Fernet key "
                    "(32 url-safe base64-encoded bytes). Generate one with "
                    "`modelyard secrets generate-key`."
                ) from None

    @property
    def _fernet(self) -> MultiFernet:
        return MultiFernet([Fernet(key.encode()) for key in self.keys])

    def encrypt(self, plaintext: str) -> str:
        """Encrypt with the newest key."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        """Decrypt with whichever key matches, or raise :class:`SecretDecryptionError`."""
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise SecretDecryptionError(
                f"A stored secret cannot be decrypted with the keys in {self.source}. "
                "The key that encrypted it is missing: restore it (keep it after the newer "
                "keys), then run `modelyard secrets rotate`."
            ) from None

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt ``ciphertext`` with the newest key."""
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken:
            raise SecretDecryptionError(
                f"A stored secret cannot be decrypted with the keys in {self.source}; "
                "nothing was re-encrypted. Restore the missing key and run again."
            ) from None


def _split_keys(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.replace("\n", ",").split(",") if part.strip())


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(Fernet.generate_key().decode() + "\n")


def load_keyring(settings: Settings, *, create: bool = True) -> Keyring:
    """Return the keyring from the environment, else from the key file (created if absent)."""
    if settings.encryption_keys:
        return Keyring(_split_keys(settings.encryption_keys), "MODELYARD_ENCRYPTION_KEYS")
    path = settings.key_file
    if not path.exists():
        if not create:
            raise EncryptionKeyError(
                f"No encryption keys: set MODELYARD_ENCRYPTION_KEYS or restore {path}."
            )
        _create_key_file(path)
    return Keyring(_split_keys(path.read_text()), f"the key file {path}")


def add_key_to_file(path: Path) -> None:
    """Put a newly generated key in front of the keys in ``path`` (kept at mode 0600)."""
    existing = path.read_text() if path.exists() else ""
    if not path.exists():
        _create_key_file(path)
        return
    path.write_text(Fernet.generate_key().decode() + "\n" + existing)
    path.chmod(0o600)
