"""The web session's cookies: set at sign-in, cleared at sign-out; and the same-origin check
that guards the forms which open a session (login CSRF)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.accounts.web_sessions import start_web_session
from modelyard.config import Settings
from modelyard.db.models import User
from modelyard.errors import PermissionDeniedError
from modelyard.security.origin import is_same_origin

__all__ = ["CSRF_COOKIE", "check_same_origin", "clear_session_cookies", "open_session"]

CSRF_COOKIE = "modelyard_csrf"


def check_same_origin(request: Request) -> None:
    """Refuse a cross-site post (login CSRF): another site, ``Origin: null`` or a
    cross-site ``Referer``; a request naming no page at all (an API client) passes."""
    if not is_same_origin(request.headers, require=False):
        raise PermissionDeniedError(
            "Cross-site request refused: the Origin (or Referer) header must name this site.",
            code="csrf_failed",
        )


async def open_session(
    response: Response, session: AsyncSession, settings: Settings, user: User
) -> str:
    """Start a web session for ``user``, set its cookies, and return the CSRF token."""
    ttl = timedelta(hours=settings.session_ttl_hours)
    record, token = await start_web_session(session, user=user, ttl=ttl)
    max_age = int(ttl.total_seconds())
    response.set_cookie(
        settings.session_cookie_name,
        token,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )
    response.set_cookie(
        CSRF_COOKIE,
        record.csrf_token,
        max_age=max_age,
        samesite="strict",
        secure=settings.secure_cookies,
    )
    return record.csrf_token


def clear_session_cookies(response: Response, settings: Settings) -> None:
    """Drop the session and CSRF cookies from the browser (the session ends elsewhere)."""
    response.delete_cookie(settings.session_cookie_name)
    response.delete_cookie(CSRF_COOKIE)
