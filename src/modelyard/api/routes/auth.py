"""Register, log in (HTTP-only session cookie + CSRF token), log out, and who am I."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, Response, status

from modelyard.accounts.email_addresses import InvalidEmail, check_email
from modelyard.accounts.errors import EmailTaken, InvalidCredentials, WeakPassword
from modelyard.accounts.login_throttle import authenticate_throttled
from modelyard.accounts.users import create_user
from modelyard.accounts.web_sessions import end_web_session
from modelyard.api.deps import (
    CurrentUser,
    OptionalCaller,
    SessionDep,
    SettingsDep,
    app_state,
    client_address,
)
from modelyard.api.schemas.accounts import LoginRequest, LoginResponse, UserCreate, UserPublic
from modelyard.api.session_cookies import (
    check_same_origin,
    clear_session_cookies,
    open_session,
)
from modelyard.db.types import utcnow
from modelyard.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    PermissionDeniedError,
)

router = APIRouter(prefix="/v2/auth", tags=["auth"])


@router.post("/register", status_code=status.HTTP_201_CREATED)
async def register(
    body: UserCreate, session: SessionDep, settings: SettingsDep, request: Request
) -> UserPublic:
    """Create an account (when registration is open)."""
    if not settings.allow_registration:
        raise PermissionDeniedError(
            "Registration is closed on this server; ask an administrator for an account.",
            code="registration_closed",
        )
    check_same_origin(request)
    try:
        email = check_email(
            body.email, special_use_domains=settings.registration_special_use_domains
        )
    except InvalidEmail as exc:
        raise BadRequestError(
            f"Enter a valid e-mail address: {exc}", param="email", code="invalid_email"
        ) from None
    try:
        trial = utcnow() + timedelta(days=settings.trial_days) if settings.trial_days else None
        user = await create_user(
            session,
            email=email,
            password=body.password,
            full_name=body.full_name,
            trial_ends_at=trial,
        )
    except EmailTaken as exc:
        raise ConflictError(str(exc), param="email", code="email_taken") from None
    except WeakPassword as exc:
        raise BadRequestError(str(exc), param="password", code="weak_password") from None
    return UserPublic.model_validate(user)


@router.post("/login")
async def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
) -> LoginResponse:
    """Check the credentials and set the session cookie."""
    check_same_origin(request)
    try:
        user = await authenticate_throttled(
            session,
            app_state(request).login_throttle,
            email=body.email,
            password=body.password,
            address=client_address(request),
        )
    except InvalidCredentials as exc:
        raise AuthenticationError(str(exc), code="invalid_credentials") from None
    csrf_token = await open_session(response, session, settings, user)
    return LoginResponse(user=UserPublic.model_validate(user), csrf_token=csrf_token)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    caller: OptionalCaller,
) -> None:
    """End the web session (if any) and clear its cookies."""
    cookie = request.cookies.get(settings.session_cookie_name)
    if cookie and caller is not None and caller.web_session is not None:
        await end_web_session(session, token=cookie)
    clear_session_cookies(response, settings)


@router.get("/me")
async def me(user: CurrentUser) -> UserPublic:
    """The signed-in user."""
    return UserPublic.model_validate(user)
