"""The staff-only admin panel at ``/admin``, built on SQLAdmin.

:func:`mount_admin` adds it to an application: staff sign in with the app's own web
session (``/login``), state-changing requests must come from this site, every response
carries a Content Security Policy (``frame-ancestors 'none'``) and ``X-Frame-Options``, and
every change goes through the same record functions as the API, with its audit row.
Its index page is a dashboard of today's traffic (``dashboard``); its pages have the
app's look and theme and a way back to the app (``templates``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import sqladmin
from fastapi import FastAPI
from sqladmin import Admin, Flash
from sqladmin.authentication import login_required
from sqlalchemy.ext.asyncio import AsyncSession
from starlette import status
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from modelyard.admin.auth import (
    LOGIN_URL,
    SameOriginGuard,
    SecurityHeaders,
    WebSessionAuth,
    admin_user,
    content_security_policy,
    inline_script_hashes,
    login_redirect,
    web_session_of,
)
from modelyard.admin.base import StaffView
from modelyard.admin.dashboard import today_figures
from modelyard.admin.display import format_count, format_usd
from modelyard.admin.errors import install_error_pages
from modelyard.admin.finetune import FineTuneCommandAdmin, FineTuneEventAdmin, FineTuneFileAdmin
from modelyard.admin.flash import FlashCookieMiddleware
from modelyard.admin.gateway_routes import GatewayRouteAdmin
from modelyard.admin.limits import UsageLimitAdmin
from modelyard.admin.providers import ProviderAdmin
from modelyard.admin.templates import DASHBOARD_TEMPLATE, LOGOUT_TEMPLATE, install_templates
from modelyard.admin.training import TrainingDatasetAdmin, TrainingJobAdmin
from modelyard.admin.usage import UsageRecordAdmin
from modelyard.admin.views import AuditLogAdmin, LlmModelAdmin, UserAdmin
from modelyard.api.state import AppState
from modelyard.errors import ModelyardError
from modelyard.model_list import ModelList, load_model_list
from modelyard.model_list.default_chat import (
    checked_default,
    default_chat_model,
    set_default_chat_model,
)

__all__ = ["ADMIN_URL", "VIEWS", "ModelyardAdmin", "admin_policy", "mount_admin"]

ADMIN_URL = "/admin"
VIEWS: tuple[type[StaffView], ...] = (
    ProviderAdmin,
    GatewayRouteAdmin,
    UserAdmin,
    LlmModelAdmin,
    AuditLogAdmin,
    UsageRecordAdmin,
    UsageLimitAdmin,
    FineTuneFileAdmin,
    FineTuneCommandAdmin,
    FineTuneEventAdmin,
    TrainingDatasetAdmin,
    TrainingJobAdmin,
)
_MOUNTED = "modelyard_admin"
#: SQLAdmin's templates with inline scripts (allowed by hash in the admin's CSP).
_INLINE_SCRIPT_TEMPLATES = ("sqladmin/flash.html",)


def admin_policy() -> str:
    """The admin's Content Security Policy, for the installed SQLAdmin's templates."""
    templates = Path(sqladmin.__file__).parent / "templates"
    sources = [(templates / name).read_text() for name in _INLINE_SCRIPT_TEMPLATES]
    return content_security_policy(inline_script_hashes(sources))


class ModelyardAdmin(Admin):
    """SQLAdmin without a login of its own: ``/admin/login`` leads to the app's sign-in."""

    def __init__(self, app: FastAPI, state: AppState) -> None:
        self.app_state = state
        super().__init__(
            app,
            engine=state.database.engine,
            base_url=ADMIN_URL,
            title="modelyard admin",
            middlewares=[
                Middleware(SecurityHeaders, policy=admin_policy()),
                Middleware(SameOriginGuard),
                Middleware(
                    FlashCookieMiddleware,
                    keyring=state.keyring,
                    path=ADMIN_URL,
                    secure=state.settings.secure_cookies,
                ),
            ],
            authentication_backend=WebSessionAuth(state),
        )
        self.admin.router.routes.append(
            Route(
                "/settings/default-chat-model",
                self.set_default_chat_model,
                methods=["POST"],
                name="default_chat_model",
            )
        )
        install_templates(self.templates)
        install_error_pages(self)
        for view in VIEWS:
            # A subclass per app: SQLAdmin keeps its wiring on the view class itself.
            bound = cast(type[StaffView], type(view.__name__, (view,), {"app_state": state}))
            self.add_view(bound)

    @login_required
    async def index(self, request: Request) -> Response:
        """The dashboard: today's requests, cost, errors and top models; active counts;
        the default chat model."""
        async with self.app_state.database.sessions() as session:
            figures = await today_figures(session)
            listed = await self._model_list(session, request)
            default = await default_chat_model(session)
        context: dict[str, Any] = {
            "figures": figures,
            "count": format_count,
            "usd": format_usd,
            "title": "Dashboard",
            "chat_models": [model.name for model in listed.chat],
            "default_chat_model": default,
        }
        return await self.templates.TemplateResponse(request, DASHBOARD_TEMPLATE, context)

    async def _model_list(self, session: AsyncSession, request: Request) -> ModelList:
        staff = admin_user(request)
        assert staff is not None, "behind login_required"
        return await load_model_list(
            session,
            user=staff,
            system_keys=self.app_state.system_keys,
            default_prices=self.app_state.settings.default_prices,
        )

    @login_required
    async def set_default_chat_model(self, request: Request) -> Response:
        """The dashboard's form: set or clear the default chat model (audited)."""
        staff = admin_user(request)
        assert staff is not None, "behind login_required"
        wanted = str((await request.form()).get("model") or "")
        async with self.app_state.database.sessions() as session:
            try:
                name = checked_default(await self._model_list(session, request), wanted)
            except ModelyardError as error:
                Flash.error(request, error.message)
            else:
                await set_default_chat_model(session, actor=staff, model=name)
                Flash.success(
                    request,
                    f"New chats open with {name}."
                    if name
                    else "New chats open with each user's first chat model.",
                )
        return RedirectResponse(f"{ADMIN_URL}/", status_code=status.HTTP_303_SEE_OTHER)

    async def login(self, request: Request) -> Response:
        return login_redirect(request)

    async def logout(self, request: Request) -> Response:
        web_session = await web_session_of(request, self.app_state)
        if web_session is None:
            return RedirectResponse(LOGIN_URL, status_code=status.HTTP_303_SEE_OTHER)
        context: dict[str, Any] = {"csrf_token": web_session.csrf_token, "title": "Sign out"}
        return await self.templates.TemplateResponse(request, LOGOUT_TEMPLATE, context)


def mount_admin(app: FastAPI, state: AppState) -> None:
    """Mount the admin panel on ``app`` at ``/admin``; call it once per application."""
    if getattr(app.state, _MOUNTED, None) is not None:
        raise RuntimeError("The admin panel is mounted on this application already.")
    setattr(app.state, _MOUNTED, ModelyardAdmin(app, state))
