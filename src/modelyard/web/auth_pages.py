"""Sign in, create an account (when registration is open) and sign out: plain HTML forms,
so they work before any script has loaded."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from modelyard.accounts.email_addresses import InvalidEmail, check_email
from modelyard.accounts.errors import EmailTaken, InvalidCredentials, WeakPassword
from modelyard.accounts.login_throttle import authenticate_throttled
from modelyard.accounts.users import create_user
from modelyard.accounts.web_sessions import end_web_session
from modelyard.api.deps import OptionalCaller, SessionDep, SettingsDep, app_state, client_address
from modelyard.api.session_cookies import check_same_origin, clear_session_cookies, open_session
from modelyard.db.types import utcnow
from modelyard.errors import RateLimitError
from modelyard.security.passwords import MIN_PASSWORD_LENGTH
from modelyard.web.rendering import local_path, redirect, render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

#: Where a new account lands.
HOME = "/language-models"

Text = Annotated[str, Form(max_length=320)]
Secret = Annotated[str, Form(max_length=256)]


@router.get("/login", response_model=None)
async def login_page(
    request: Request, caller: OptionalCaller, settings: SettingsDep, next: str = "/"
) -> Response:
    """The sign-in form (a signed-in visitor goes on to ``next``)."""
    if caller is not None and caller.web_session is not None:
        return redirect(local_path(next))
    return render(
        request,
        "login.html",
        email="",
        error=None,
        next=local_path(next),
        allow_registration=settings.allow_registration,
    )


@router.post("/login", response_model=None)
async def login_form(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    email: Text = "",
    password: Secret = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    """Check the credentials: a session and on to ``next``, or the form with the error."""
    check_same_origin(request)
    try:
        user = await authenticate_throttled(
            session,
            app_state(request).login_throttle,
            email=email,
            password=password,
            address=client_address(request),
        )
    except (InvalidCredentials, RateLimitError) as exc:
        throttled = isinstance(exc, RateLimitError)
        return render(
            request,
            "login.html",
            status_code=429 if throttled else 401,
            email=email,
            error=exc.message if isinstance(exc, RateLimitError) else str(exc),
            next=local_path(next),
            allow_registration=settings.allow_registration,
        )
    response = redirect(local_path(next))
    await open_session(response, session, settings, user)
    return response


def _register_page(
    request: Request,
    *,
    open_: bool,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "register.html",
        status_code=status_code,
        registration_open=open_,
        values=values or {"email": "", "full_name": ""},
        errors=errors or {},
        min_password_length=MIN_PASSWORD_LENGTH,
    )


@router.get("/register", response_model=None)
async def register_page(
    request: Request, caller: OptionalCaller, settings: SettingsDep
) -> Response:
    """The account form, or a notice when registration is closed."""
    if caller is not None and caller.web_session is not None:
        return redirect(HOME)
    status = 200 if settings.allow_registration else 403
    return _register_page(request, open_=settings.allow_registration, status_code=status)


def _check_registration(
    email: str, password: str, confirm: str, *, special_use_domains: list[str]
) -> dict[str, str]:
    errors: dict[str, str] = {}
    try:
        check_email(email, special_use_domains=special_use_domains)
    except InvalidEmail as exc:
        errors["email"] = f"Enter a valid e-mail address: {exc}"
    if len(password) < MIN_PASSWORD_LENGTH:
        errors["password"] = f"Use at least {MIN_PASSWORD_LENGTH} characters."
    elif password != confirm:
        errors["confirm"] = "The two passwords differ; type the same password twice."
    return errors


@router.post("/register", response_model=None)
async def register_form(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    email: Text = "",
    full_name: Annotated[str, Form(max_length=200)] = "",
    password: Secret = "",
    confirm: Secret = "",
) -> Response:
    """Create the account and sign it in; each field's problem is shown next to it."""
    check_same_origin(request)
    values = {"email": email, "full_name": full_name}
    if not settings.allow_registration:
        return _register_page(request, open_=False, values=values, status_code=403)
    errors = _check_registration(
        email.strip(),
        password,
        confirm,
        special_use_domains=settings.registration_special_use_domains,
    )
    if errors:
        return _register_page(request, open_=True, values=values, errors=errors, status_code=400)
    trial = utcnow() + timedelta(days=settings.trial_days) if settings.trial_days else None
    try:
        user = await create_user(
            session,
            email=email.strip(),
            password=password,
            full_name=full_name.strip() or None,
            trial_ends_at=trial,
        )
    except EmailTaken as exc:
        errors = {"email": f"{exc} Sign in instead, or use another address."}
        return _register_page(request, open_=True, values=values, errors=errors, status_code=409)
    except WeakPassword as exc:
        errors = {"password": str(exc)}
        return _register_page(request, open_=True, values=values, errors=errors, status_code=400)
    response = redirect(HOME)
    await open_session(response, session, settings, user)
    return response


@router.post("/logout", response_model=None)
async def logout_form(
    request: Request, session: SessionDep, settings: SettingsDep, caller: OptionalCaller
) -> Response:
    """End the session (the form carries the CSRF token, checked with the cookie)."""
    cookie = request.cookies.get(settings.session_cookie_name)
    if cookie and caller is not None:
        await end_web_session(session, token=cookie)
    response = redirect("/login")
    clear_session_cookies(response, settings)
    return response
