"""The caller's model list (:mod:`modelyard.model_list`) with this app's system keys and
default prices: what ``GET /v1/models`` and the web pages read."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.api.deps import app_state
from modelyard.db.models import User
from modelyard.errors import NotFoundError
from modelyard.model_list import ListedModel, ModelList, load_model_list

__all__ = ["find_model", "model_list"]


async def model_list(request: Request, session: AsyncSession, user: User) -> ModelList:
    """The models ``user`` may use (and the catalog models locked for them)."""
    state = app_state(request)
    return await load_model_list(
        session,
        user=user,
        system_keys=state.system_keys,
        default_prices=state.settings.default_prices,
    )


async def find_model(request: Request, session: AsyncSession, user: User, name: str) -> ListedModel:
    """The usable model ``name`` means; one 404 for a missing name and one the caller may
    not use (another user's private trained model, a provider without a key)."""
    found = (await model_list(request, session, user)).find(name)
    if found is None:
        raise NotFoundError(
            f"The model `{name[:300]}` does not exist or you do not have access to it. "
            "GET /v1/models lists the models you can use.",
            param="model",
            code="model_not_found",
        )
    return found
