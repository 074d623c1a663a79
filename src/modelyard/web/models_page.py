"""The language models page: the models the user can use, as cards with prices and
context length; the others are listed apart, with where to add a key for them."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from modelyard.api.deps import OptionalCaller, SessionDep, app_state
from modelyard.web.catalog import load_catalog
from modelyard.web.rendering import render, sign_in_redirect, signed_in

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/language-models", response_model=None)
async def language_models(
    request: Request, caller: OptionalCaller, session: SessionDep
) -> Response:
    """Cards of the models the user can use; the others greyed, with where to add a key."""
    page = signed_in(caller)
    if page is None:
        return sign_in_redirect(request)
    catalog = await load_catalog(
        session, user=page.user, system_keys=app_state(request).system_keys
    )
    usable = [model for model in catalog if model.usable]
    locked = [model for model in catalog if not model.usable]
    providers = sorted({model.provider_label for model in usable})
    return render(
        request,
        "models.html",
        page=page,
        nav="models",
        usable=usable,
        locked=locked,
        providers=providers,
    )
