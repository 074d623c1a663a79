"""The web app's pages: sign-in, home and sign-out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from modelyard.accounts.errors import InvalidCredentials
from modelyard.accounts.users import authenticate
from modelyard.accounts.web_sessions import end_web_session
from modelyard.api.deps import OptionalCaller, SessionDep, SettingsDep
from modelyard.api.routes.auth import CSRF_COOKIE, check_same_origin, open_session

__all__ = ["mount_static", "router"]

_HERE = Path(__file__).parent
templates = Jinja2Templates(directory=_HERE / "templates")
router = APIRouter(include_in_schema=False)


def mount_static(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")


def _render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code)


@router.get("/", response_model=None)
async def home(request: Request, caller: OptionalCaller) -> Response:
    if caller is None:
        return RedirectResponse("/login", status_code=303)
    csrf = caller.web_session.csrf_token if caller.web_session else ""
    return _render(request, "home.html", user=caller.user, csrf_token=csrf)


def _local_path(target: str | None) -> str:
    """``target`` when it is a path on this site, else ``/`` (no open redirects)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


@router.get("/login", response_model=None)
async def login_page(request: Request, caller: OptionalCaller, next: str = "/") -> Response:
    if caller is not None:
        return RedirectResponse(_local_path(next), status_code=303)
    return _render(request, "login.html", email="", error=None, next=_local_path(next))


@router.post("/login", response_model=None)
async def login_form(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    check_same_origin(request)
    try:
        user = await authenticate(session, email=email, password=password)
    except InvalidCredentials as exc:
        return _render(
            request,
            "login.html",
            status_code=401,
            email=email,
            error=str(exc),
            next=_local_path(next),
        )
    response = RedirectResponse(_local_path(next), status_code=303)
    await open_session(response, session, settings, user)
    return response


@router.post("/logout", response_model=None)
async def logout_form(
    request: Request, session: SessionDep, settings: SettingsDep, caller: OptionalCaller
) -> Response:
    cookie = request.cookies.get(settings.session_cookie_name)
    if cookie and caller is not None:
        await end_web_session(session, token=cookie)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(settings.session_cookie_name)
    response.delete_cookie(CSRF_COOKIE)
    return response
