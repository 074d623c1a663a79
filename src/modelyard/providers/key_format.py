"""Format checks for provider keys (the shape each kind's spec declares), with messages
that say what is wrong."""

from __future__ import annotations

from modelyard.providers.kinds import ProviderKind, kind_info

__all__ = ["InvalidKeyFormat", "check_key_format", "header_safe"]


class InvalidKeyFormat(ValueError):
    """The key cannot be right for this provider; the message says why."""


def header_safe(secret: str) -> bool:
    """Whether ``secret`` can go out in an HTTP header: printable ASCII (no line breaks)."""
    return secret.isascii() and secret.isprintable()


def check_key_format(kind: ProviderKind | str, api_key: str) -> str:
    """Return the stripped key, or raise :class:`InvalidKeyFormat`."""
    info = kind_info(kind)
    key = api_key.strip()
    label = info.key_label or f"{info.label} API key"
    if not key:
        raise InvalidKeyFormat(f"{label} is empty.")
    if any(character.isspace() for character in key):
        raise InvalidKeyFormat(f"{label} must not contain spaces or line breaks.")
    if not header_safe(key):
        raise InvalidKeyFormat(f"{label} must be printable ASCII characters only.")
    if info.key_prefix and not key.startswith(info.key_prefix):
        raise InvalidKeyFormat(f'{label} should start with "{info.key_prefix}"')
    if len(key) < info.key_min_length:
        raise InvalidKeyFormat(f"{label} seems too short")
    return key
