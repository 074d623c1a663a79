"""The staff-only admin panel at ``/admin``, built on SQLAdmin.

:func:`mount_admin` adds it to an application: staff sign in with the app's own web
session (``/login``), state-changing requests must come from this site, every response
carries a Content Security Policy (``frame-ancestors 'none'``) and ``X-Frame-Options``, and
every change goes through the same record functions as the API, with its audit row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import sqladmin
from fastapi import FastAPI
from sqladmin import Admin
from starlette import status
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from modelyard.admin.auth import (
    LOGIN_URL,
    SameOriginGuard,
    SecurityHeaders,
    WebSessionAuth,
    content_security_policy,
    inline_script_hashes,
    login_redirect,
    web_session_of,
)
from modelyard.admin.base import StaffView
from modelyard.admin.errors import install_error_pages
from modelyard.admin.finetune import FineTuneCommandAdmin, FineTuneEventAdmin, FineTuneFileAdmin
from modelyard.admin.flash import FlashCookieMiddleware
from modelyard.admin.gateway_routes import GatewayRouteAdmin
from modelyard.admin.limits import UsageLimitAdmin
from modelyard.admin.providers import ProviderAdmin
from modelyard.admin.templates import LOGOUT_TEMPLATE, install_templates
from modelyard.admin.training import TrainingDatasetAdmin, TrainingJobAdmin
from modelyard.admin.usage import UsageRecordAdmin
from modelyard.admin.views import AuditLogAdmin, LlmModelAdmin, UserAdmin
from modelyard.api.state import AppState

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
        install_templates(self.templates)
        install_error_pages(self)
        for view in VIEWS:
            # A subclass per app: SQLAdmin keeps its wiring on the view class itself.
            bound = cast(type[StaffView], type(view.__name__, (view,), {"app_state": state}))
            self.add_view(bound)

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
