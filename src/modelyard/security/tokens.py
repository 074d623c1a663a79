"""Random bearer tokens: personal API tokens and web session tokens.

A token is shown once; only its SHA-256 digest is stored. The tokens carry 256 bits of
randomness, so a plain digest is safe (no salt or slow hash is needed for lookup).
"""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["API_TOKEN_PREFIX", "digest", "new_api_token", "new_session_token"]

API_TOKEN_PREFIX = "myd_"  # noqa: S105 (a prefix, not a secret)
#: How many characters of an API token are kept in clear to tell tokens apart.
DISPLAY_LENGTH = len(API_TOKEN_PREFIX) + 6


def new_api_token() -> str:
    """Return a new personal API token, e.g. ``myd_3kq…``."""
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_session_token() -> str:
    """Return a new web session token."""
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    """Return the hex SHA-256 digest under which ``token`` is stored."""
    return hashlib.sha256(token.encode()).hexdigest()
