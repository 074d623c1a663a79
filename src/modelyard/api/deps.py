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
from modelyard.security import proxies
from modelyard.security.tokens import digest
from modelyard.usage.completion import CallDetails, CallOrigin
from modelyard.usage.metering import MeteredCall

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
    "client_address",
    "has_chat_access",
    "identify_caller",
    "metered_call",
    "refresh_gateway_caches",
    "subscribed_user",
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


def client_address(request: Request) -> str | None:
    """The client's IP address: the TCP peer, or what a trusted proxy forwarded
    (``MODELYARD_TRUSTED_PROXIES``; see ``security.proxies``)."""
    peer = request.client.host if request.client else None
    trusted = app_state(request).settings.trusted_proxy_networks
    return proxies.client_address(peer, request.headers.getlist("x-forwarded-for"), trusted)


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


async def _api_token(request: Request, token: str) -> ApiToken | None:
    """The live token record, from the in-process cache when it is fresh."""
    state = app_state(request)
    key = digest(token)

    async def load() -> ApiToken | None:
        async with state.database.sessions() as session:
            return await resolve_api_token(session, token=token)

    record = await state.token_cache.get_or_load(key, load)
    if record is not None and record.expires_at is not None and record.expires_at <= utcnow():
        state.token_cache.discard(key)
        return await state.token_cache.get_or_load(key, load)  # expired: None from the database
    return record


async def _identify(request: Request) -> Caller | None:
    token = _bearer(request)
    if token is not None:
        record = await _api_token(request, token)
        if record is None:
            raise AuthenticationError(
                "Invalid API token: it is unknown, revoked or expired. "
                "Create a new one in your profile or with `modelyard tokens create`.",
                code="invalid_api_key",
            )
        return Caller(user=record.user, api_token=record)
    state = app_state(request)
    cookie = request.cookies.get(state.settings.session_cookie_name)
    if not cookie:
        return None
    async with state.database.sessions() as session:
        web_session = await resolve_web_session(session, token=cookie)
    if web_session is None:
        return None
    if request.method not in SAFE_METHODS and not await _csrf_ok(request, web_session.csrf_token):
        raise PermissionDeniedError(
            "Missing or wrong CSRF token; send the X-CSRF-Token header given at login.",
            code="csrf_failed",
        )
    return Caller(user=web_session.user, web_session=web_session)


async def identify_caller(request: Request) -> Caller | None:
    """Who is calling (API token or web session), worked out once per request.

    Each dependency below depends on the request alone (no nested dependencies): on the
    gateway's hot path that keeps FastAPI's dependency solving cheap, and a cached token
    means no database session is opened at all.
    """
    if "caller" not in request.scope.setdefault("state", {}):
        request.scope["state"]["caller"] = await _identify(request)
    caller: Caller | None = request.scope["state"]["caller"]
    return caller


async def _current_caller(request: Request) -> Caller:
    caller = await identify_caller(request)
    if caller is None:
        raise AuthenticationError(
            "Authentication required: send 'Authorization: Bearer <your API token>' "
            "or sign in at /login.",
            code="missing_api_key",
        )
    return caller


async def _current_user(request: Request) -> User:
    return (await _current_caller(request)).user


async def _staff_user(request: Request) -> User:
    user = await _current_user(request)
    if not user.is_staff:
        raise PermissionDeniedError("This needs a staff account.", code="staff_only")
    return user


def has_chat_access(user: User) -> bool:
    """Staff, subscribers and users in their trial may chat."""
    trial = user.trial_ends_at
    return user.is_staff or user.has_subscription or (trial is not None and trial > utcnow())


async def subscribed_user(request: Request) -> User:
    """The caller, when it may chat (:data:`SubscribedUser` outside FastAPI's dependencies)."""
    user = await _current_user(request)
    if app_state(request).settings.require_subscription and not has_chat_access(user):
        ended = f" Your trial ended on {user.trial_ends_at:%Y-%m-%d}." if user.trial_ends_at else ""
        raise PaymentRequiredError(
            f"Subscription required: chat needs an active subscription or trial.{ended} "
            "Ask an administrator to grant one.",
            code="subscription_required",
        )
    return user


OptionalCaller = Annotated[Caller | None, Depends(identify_caller)]
CurrentCaller = Annotated[Caller, Depends(_current_caller)]
CurrentUser = Annotated[User, Depends(_current_user)]
StaffUser = Annotated[User, Depends(_staff_user)]
#: A user allowed to chat (subscription or trial when ``MODELYARD_REQUIRE_SUBSCRIPTION``).
SubscribedUser = Annotated[User, Depends(subscribed_user)]


async def refresh_gateway_caches(request: Request) -> AsyncIterator[None]:
    """Router dependency: after a request that may change keys or providers, this
    process forgets its cached credentials and models."""
    yield
    app_state(request).gateway.invalidate()


async def metered_call(request: Request, user: User, details: CallDetails) -> MeteredCall:
    """A gateway call by ``user`` for this request, metered (see ``usage.metering``): the
    request's API token and id are passed on as plain values."""
    caller = await identify_caller(request)
    origin = CallOrigin(
        user=user,
        api_token_id=caller.api_token.id if caller is not None and caller.api_token else None,
        request_id=request.scope.get("state", {}).get("request_id"),
    )
    return app_state(request).metering.call(origin, details)
