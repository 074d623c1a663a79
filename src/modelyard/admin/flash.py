"""A tiny cookie session for SQLAdmin's flash messages, without ``itsdangerous``.

SQLAdmin keeps flash messages in ``request.session``. Starlette's SessionMiddleware
would need ``itsdangerous`` and a signing secret; this one encrypts the few messages
with a Fernet key derived (HKDF) from the app's newest encryption key, so the cookie
can be neither read nor forged, and expires after :data:`FLASH_TTL_SECONDS`.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelyard.security.encryption import Keyring

__all__ = ["FLASH_COOKIE", "FLASH_TTL_SECONDS", "FlashCookieMiddleware"]

FLASH_COOKIE = "modelyard_admin_flash"
FLASH_TTL_SECONDS = 600
_MAX_MESSAGES = 10
_MAX_MESSAGE_LENGTH = 300


def _derived_fernet(keyring: Keyring) -> Fernet:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"modelyard admin flash")
    key = hkdf.derive(base64.urlsafe_b64decode(keyring.keys[0]))
    return Fernet(base64.urlsafe_b64encode(key))


class FlashCookieMiddleware:
    """Give each request ``scope["session"]``, kept in an encrypted, HTTP-only cookie."""

    def __init__(self, app: ASGIApp, *, keyring: Keyring, path: str, secure: bool) -> None:
        self.app = app
        self.fernet = _derived_fernet(keyring)
        flags = f"Path={path}; HttpOnly; SameSite=Lax"
        self.flags = f"{flags}; Secure" if secure else flags

    def _load(self, cookie: str | None) -> dict[str, Any]:
        if not cookie:
            return {}
        try:
            data = json.loads(self.fernet.decrypt(cookie.encode(), ttl=FLASH_TTL_SECONDS))
        except (InvalidToken, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _dump(self, session: dict[str, Any]) -> str:
        messages = [
            {**message, "message": str(message.get("message", ""))[:_MAX_MESSAGE_LENGTH]}
            for message in session.get("_messages", [])[-_MAX_MESSAGES:]
        ]
        payload = json.dumps({"_messages": messages}).encode()
        return self.fernet.encrypt(payload).decode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        had_cookie = FLASH_COOKIE in HTTPConnection(scope).cookies
        session = self._load(HTTPConnection(scope).cookies.get(FLASH_COOKIE))
        scope["session"] = session

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if session.get("_messages"):
                    value = self._dump(session)
                    headers.append("Set-Cookie", f"{FLASH_COOKIE}={value}; {self.flags}")
                elif had_cookie:
                    headers.append("Set-Cookie", f"{FLASH_COOKIE}=; Max-Age=0; {self.flags}")
            await send(message)

        await self.app(scope, receive, send_with_cookie)
