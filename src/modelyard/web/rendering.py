"""What every page shares: templates, the signed-in check, security headers, static files.

Pages send a strict Content Security Policy: scripts, styles, images and connections only
from this site, no inline script or style, never framed. Their JavaScript lives in
``static/`` and reads the CSRF token from the ``csrf-token`` meta tag of the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.types import Message, Receive, Scope, Send

from modelyard.api.deps import Caller
from modelyard.db.models import User

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "SECURITY_HEADERS",
    "STATIC_DIR",
    "Page",
    "SecureStaticFiles",
    "format_count",
    "format_usd",
    "local_path",
    "redirect",
    "render",
    "sign_in_redirect",
    "signed_in",
    "templates",
]

_HERE = Path(__file__).parent
STATIC_DIR = _HERE / "static"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

#: Sent with every page (and redirect) of the web app.
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}


def format_usd(value: Decimal | float | int | str | None) -> str:
    """A cost for people: ``$1,234.56``, ``$0.0123``, or the significant digits of a tiny
    one (``$0.0000042``); ``None`` is ``$0.00``."""
    amount = Decimal(str(value or 0))
    if abs(amount) >= 1:
        return f"${amount:,.2f}"
    places = 4 if abs(amount) >= Decimal("0.01") else 8
    whole, _, fraction = f"{amount:.{places}f}".partition(".")
    fraction = fraction.rstrip("0").ljust(2, "0")
    return f"${whole}.{fraction}"


def format_count(value: int | None) -> str:
    """A token count, short: ``8,191``, ``128K``, ``1.05M``."""
    if value is None:
        return "—"
    if value >= 1_000_000:
        return f"{value / 1_000_000:.2f}".rstrip("0").rstrip(".") + "M"
    if value >= 100_000:
        return f"{round(value / 1000)}K"
    return f"{value:,}"


def _templates() -> Jinja2Templates:
    environment = Jinja2Templates(directory=_HERE / "templates")
    environment.env.filters["usd"] = format_usd
    environment.env.filters["count"] = format_count
    return environment


templates = _templates()


@dataclass(frozen=True)
class Page:
    """The signed-in user a page is shown to, and the CSRF token its scripts send."""

    user: User
    csrf_token: str


def signed_in(caller: Caller | None) -> Page | None:
    """The page's user when the browser has a live web session, else ``None``."""
    if caller is None or caller.web_session is None:
        return None
    return Page(caller.user, caller.web_session.csrf_token)


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` when it is a path on this site, else ``default`` (no open redirects)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return default


def _secure(response: Response, *, private: bool) -> Response:
    response.headers.update(SECURITY_HEADERS)
    if private:
        response.headers["cache-control"] = "no-store"
    return response


def sign_in_redirect(request: Request) -> Response:
    """To the sign-in page, coming back to this page (its query included) afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return _secure(
        RedirectResponse(f"/login?next={quote(here, safe='/')}", status_code=303), private=True
    )


def redirect(url: str) -> Response:
    """A 303 to a page of this site."""
    return _secure(RedirectResponse(url, status_code=303), private=True)


def render(
    request: Request,
    name: str,
    *,
    page: Page | None = None,
    nav: str = "",
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """The template ``name`` with the page's user, the active nav entry and the headers."""
    values = {
        "user": page.user if page else None,
        "csrf_token": page.csrf_token if page else "",
        "nav": nav,
        **context,
    }
    response = templates.TemplateResponse(request, name, values, status_code=status_code)
    _secure(response, private=page is not None)
    return response


class SecureStaticFiles(StaticFiles):
    """Static files with ``nosniff`` (scripts and styles are only run as what they are)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"x-content-type-options", b"nosniff"),
                ]
            await send(message)

        await super().__call__(scope, receive, send_with_headers)
