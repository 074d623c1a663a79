"""The web app's routes, gathered in one router, and its static files.

========================  ===========================================================
``/login`` ``/register``  sign in, create an account (:mod:`.auth_pages`)
``/logout``               sign out (a form with the CSRF token)
``/``                     a small dashboard (:mod:`.dashboard`), or to sign in
``/language-models``      the models the user can use (:mod:`.models_page`)
``/language-models/{m}``  chat with model ``m`` (:mod:`.chat`, :mod:`.chat_api`)
``/profile``              own provider keys and API tokens (:mod:`.profile`)
``/usage``                tokens and cost, charts and CSV (:mod:`.usage_page`)
``/training``             datasets, jobs, advice, the keys dialog (:mod:`.training_pages`)
``/training/jobs/{id}``   one training job, live (:mod:`.training_pages`)
``/share/{share_id}``     a conversation shared read-only, for anyone with the link
                          (:mod:`.share_page`)
``/static/…``             CSS and the pages' scripts (no CDN, no build step)
========================  ===========================================================
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from modelyard.web import (
    attachments_api,
    auth_pages,
    chat,
    chat_api,
    dashboard,
    models_page,
    profile,
    share_page,
    training_pages,
    usage_page,
)
from modelyard.web.rendering import STATIC_DIR, SecureStaticFiles

__all__ = ["mount_static", "router"]

router = APIRouter(include_in_schema=False)
for _module in (
    auth_pages,
    dashboard,
    models_page,
    chat_api,
    attachments_api,
    chat,
    profile,
    usage_page,
    training_pages,
    share_page,
):
    router.include_router(_module.router)


def mount_static(app: FastAPI) -> None:
    """Serve ``web/static`` at ``/static``."""
    app.mount("/static", SecureStaticFiles(directory=STATIC_DIR), name="static")
