"""Who may use the admin: staff signed in with the app's own web session cookie.

There is no second login: :class:`WebSessionAuth` reads the cookie set by ``/login``,
sends anonymous visitors there, and refuses signed-in users who are not staff.
:class:`SameOriginGuard` stands in for the CSRF tokens SQLAdmin's forms lack, and
:class:`SecurityHeaders` gives every admin response the web app's headers: a Content
Security Policy (only this site's scripts and styles — SQLAdmin's statics are served from
the installed package — plus the hashes of SQLAdmin's few inline scripts; never framed).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from urllib.parse import quote

from sqladmin.authentication import AuthenticationBackend
from starlette import status
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelyard.accounts.web_sessions import resolve_web_session
from modelyard.api.state import AppState
from modelyard.db.models import User, WebSession
from modelyard.security.origin import is_same_origin

__all__ = [
    "LOGIN_URL",
    "SameOriginGuard",
    "SecurityHeaders",
    "WebSessionAuth",
    "admin_user",
    "content_security_policy",
    "inline_script_hashes",
    "login_redirect",
    "web_session_of",
]

LOGIN_URL = "/login"
_USER_ATTRIBUTE = "modelyard_admin_user"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: SQLAdmin runs its bulk actions as GET ``/<view>/action/<name>?pks=…``: they change state.
_ACTION_PATH = re.compile(r"/[^/]+/action/[^/]+/?$")


def login_redirect(request: Request) -> RedirectResponse:
    """Send the browser to the sign-in page, to come back here afterwards."""
    return RedirectResponse(
        f"{LOGIN_URL}?next={quote(request.url.path, safe='/')}",
        status_code=status.HTTP_303_SEE_OTHER,
    )


async def web_session_of(request: Request, state: AppState) -> WebSession | None:
    """The live web session of the request's cookie (with its user), if any."""
    cookie = request.cookies.get(state.settings.session_cookie_name)
    if not cookie:
        return None
    async with state.database.sessions() as session:
        return await resolve_web_session(session, token=cookie)


def admin_user(request: Request) -> User | None:
    """The staff user this admin request was authenticated as (``None`` before that)."""
    user: User | None = getattr(request.state, _USER_ATTRIBUTE, None)
    return user


class WebSessionAuth(AuthenticationBackend):
    """SQLAdmin authentication on top of the app's web session cookie."""

    def __init__(self, state: AppState) -> None:
        # The base class would add Starlette's SessionMiddleware (and a login of its
        # own); the admin uses the app's web session instead, so neither is wanted.
        self.middlewares = []
        self.state = state

    async def login(self, request: Request) -> Response | bool:
        return login_redirect(request)

    async def logout(self, request: Request) -> Response | bool:
        return RedirectResponse("/", status_code=status.HTTP_303_SEE_OTHER)

    async def authenticate(self, request: Request) -> Response | bool:
        web_session = await web_session_of(request, self.state)
        if web_session is None:
            return login_redirect(request)
        if not web_session.user.is_staff:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "The admin needs a staff account.")
        setattr(request.state, _USER_ATTRIBUTE, web_session.user)
        return True

    async def get_user_id(self, request: Request) -> int | None:
        user = admin_user(request)
        return user.id if user else None


class SameOriginGuard:
    """Refuse state-changing admin requests whose Origin (or Referer) is another host.

    Unsafe methods and SQLAdmin's GET actions must name this host: browsers send
    ``Origin`` on form posts and fetches, and ``Referer`` when an action link is followed
    (``Origin: null`` or neither header is refused; see ``security.origin``).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            changes_state = scope["method"] not in _SAFE_METHODS or bool(
                _ACTION_PATH.search(scope["path"])
            )
            if changes_state and not is_same_origin(Headers(scope=scope), require=True):
                response = PlainTextResponse(
                    "Cross-site request refused: the Origin or Referer header must name this site.",
                    status_code=status.HTTP_403_FORBIDDEN,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def inline_script_hashes(sources: Iterable[str]) -> list[str]:
    """CSP sources (``'sha256-…'``) for the inline ``<script>`` blocks of these templates
    (their text holds no template code, so it is sent exactly as written)."""
    hashes = []
    for source in sources:
        for body in _INLINE_SCRIPT.findall(source):
            digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
            hashes.append(f"'sha256-{digest}'")
    return hashes


def content_security_policy(script_hashes: Iterable[str]) -> str:
    """The admin's policy: the web app's, with SQLAdmin's inline scripts by hash."""
    scripts = " ".join(["'self'", *script_hashes])
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src {scripts}",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


class SecurityHeaders:
    """Add the security headers to every admin response (pages, statics, redirects)."""

    def __init__(self, app: ASGIApp, *, policy: str) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", policy.encode()),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", ())}
                extra = [header for header in self.headers if header[0] not in names]
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
