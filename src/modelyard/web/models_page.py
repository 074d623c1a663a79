"""The language models page: every model the user can use (routes, catalog and provider
models, trained and built-in local models), as cards with prices and context length; the
catalog models that need a key are listed apart, with where to add one."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from modelyard.api.deps import OptionalCaller, SessionDep
from modelyard.api.model_lists import model_list
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
    listed = await model_list(request, session, page.user)
    return render(
        request,
        "models.html",
        page=page,
        nav="models",
        usable=listed.usable,
        locked=listed.locked,
        providers=sorted({model.provider_label for model in listed.usable}),
    )
