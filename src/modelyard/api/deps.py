"""FastAPI dependencies: settings, DB session, and who is calling.

A caller is identified by a personal API token (``Authorization: Bearer myd_…``) or by the
web session cookie. Cookie-authenticated requests that change state must carry the
session's CSRF token (``X-CSRF-Token`` header or ``csrf_token`` form field).
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.accounts.api_tokens import resolve_api_token
from modelyard.accounts.web_sessions import resolve_web_session
from modelyard.api.state import AppState
from modelyard.config import Settings
from modelyard.db.models import ApiToken, User, WebSession
from modelyard.db.types import utcnow
from modelyard.errors import AuthenticationError, PaymentRequiredError, PermissionDeniedError
from modelyard.security.tokens import digest

__all__ = [
    "Caller",
    "CurrentCaller",
    "CurrentUser",
    "OptionalCaller",
    "SessionDep",
    "SettingsDep",
    "StaffUser",
    "SubscribedUser",
    "app_state",
    "has_chat_access",
    "refresh_gateway_caches",
]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.modelyard
    return state


def _settings(request: Request) -> Settings:
    return app_state(request).settings


async def _db_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with app_state(request).database.sessions() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(_settings)]
SessionDep = Annotated[AsyncSession, Depends(_db_session)]


@dataclass(frozen=True)
class Caller:
    """The authenticated user and how they authenticated."""

    user: User
    api_token: ApiToken | None = None
    web_session: WebSession | None = None


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return request.headers.get("x-api-key")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthenticationError(
            "Malformed Authorization header; send 'Authorization: Bearer <your API token>'.",
            code="invalid_api_key",
        )
    return value.strip()


async def _csrf_ok(request: Request, expected: str) -> bool:
    supplied = request.headers.get("x-csrf-token")
    if supplied is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get("csrf_token")
        supplied = value if isinstance(value, str) else None
    return supplied is not None and hmac.compare_digest(supplied, expected)


async def _api_token(request: Request, session: AsyncSession, token: str) -> ApiToken | None:
    """The live token record, from the in-process cache when it is fresh."""
    cache = app_state(request).token_cache
    key = digest(token)
    record = cache.get(key)
    if record is not None and (record.expires_at is None or record.expires_at > utcnow()):
        return record
    record = await resolve_api_token(session, token=token)
    if record is not None:
        cache.put(key, record)
    return record


async def _optional_caller(request: Request, session: SessionDep) -> Caller | None:
    token = _bearer(request)
    if token is not None:
        record = await _api_token(request, session, token)
        if record is None:
            raise AuthenticationError(
                "Invalid API token: it is unknown, revoked or expired. "
                "Create a new one in your profile or with `modelyard tokens create`.",
                code="invalid_api_key",
            )
        return Caller(user=record.user, api_token=record)
    cookie = request.cookies.get(app_state(request).settings.session_cookie_name)
    if not cookie:
        return None
    web_session = await resolve_web_session(session, token=cookie)
    if web_session is None:
        return None
    if request.method not in SAFE_METHODS and not await _csrf_ok(request, web_session.csrf_token):
        raise PermissionDeniedError(
            "Missing or wrong CSRF token; send the X-CSRF-Token header given at login.",
            code="csrf_failed",
        )
    return Caller(user=web_session.user, web_session=web_session)


async def _current_caller(caller: Annotated[Caller | None, Depends(_optional_caller)]) -> Caller:
    if caller is None:
        raise AuthenticationError(
            "Authentication required: send 'Authorization: Bearer <your API token>' "
            "or sign in at /login.",
            code="missing_api_key",
        )
    return caller


async def _current_user(caller: Annotated[Caller, Depends(_current_caller)]) -> User:
    return caller.user


async def _staff_user(user: Annotated[User, Depends(_current_user)]) -> User:
    if not user.is_staff:
        raise PermissionDeniedError("This needs a staff account.", code="staff_only")
    return user


def has_chat_access(user: User) -> bool:
    """Staff, subscribers and users in their trial may chat."""
    trial = user.trial_ends_at
    return user.is_staff or user.has_subscription or (trial is not None and trial > utcnow())


async def _subscribed_user(
    user: Annotated[User, Depends(_current_user)], settings: SettingsDep
) -> User:
    if settings.require_subscription and not has_chat_access(user):
        ended = f" Your trial ended on {user.trial_ends_at:%Y-%m-%d}." if user.trial_ends_at else ""
        raise PaymentRequiredError(
            f"Subscription required: chat needs an active subscription or trial.{ended} "
            "Ask an administrator to grant one.",
            code="subscription_required",
        )
    return user


OptionalCaller = Annotated[Caller | None, Depends(_optional_caller)]
CurrentCaller = Annotated[Caller, Depends(_current_caller)]
CurrentUser = Annotated[User, Depends(_current_user)]
StaffUser = Annotated[User, Depends(_staff_user)]
#: A user allowed to chat (subscription or trial when ``MODELYARD_REQUIRE_SUBSCRIPTION``).
SubscribedUser = Annotated[User, Depends(_subscribed_user)]


async def refresh_gateway_caches(request: Request) -> AsyncIterator[None]:
    """Router dependency: after a request that may change keys or providers, this
    process forgets its cached credentials and models."""
    yield
    app_state(request).gateway.invalidate()
