"""The model catalog: what the caller can use, with prices and context length."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from sqlalchemy import select

from modelyard.api.deps import CurrentUser, SessionDep, app_state
from modelyard.api.schemas.catalog import LlmModelPublic
from modelyard.db.models import LlmModel
from modelyard.errors import NotFoundError
from modelyard.providers.credentials import usable_kinds
from modelyard.providers.kinds import ProviderKind, kind_info

router = APIRouter(prefix="/v2/llm-models", tags=["models"])


def _public(model: LlmModel, usable: set[ProviderKind]) -> LlmModelPublic:
    kind = ProviderKind(model.provider_kind)
    return LlmModelPublic.model_validate(
        {
            **{column: getattr(model, column) for column in LlmModel.__table__.columns.keys()},
            "provider_label": kind_info(kind).label,
            "usable": kind in usable,
        }
    )


@router.get("/")
async def list_models(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    all: bool = Query(False, description="Also list models of providers you have no key for"),
    task: str | None = Query(None, max_length=40),
) -> list[LlmModelPublic]:
    """Active models, by provider then name; only usable ones unless ``all=true``."""
    usable = await usable_kinds(session, user=user, system_keys=app_state(request).system_keys)
    statement = select(LlmModel).where(LlmModel.is_active.is_(True))
    if task:
        statement = statement.where(LlmModel.task == task)
    models = (
        await session.execute(statement.order_by(LlmModel.provider_kind, LlmModel.id))
    ).scalars()
    return [
        _public(model, usable)
        for model in models
        if all or ProviderKind(model.provider_kind) in usable
    ]


@router.get("/{model_id}")
async def get_model(
    model_id: int, request: Request, user: CurrentUser, session: SessionDep
) -> LlmModelPublic:
    """One catalog model (shown even without a key; ``usable`` says whether it can be used)."""
    model = await session.get(LlmModel, model_id)
    if model is None or not model.is_active:
        raise NotFoundError(f"No model with id {model_id} in the catalog.")
    usable = await usable_kinds(session, user=user, system_keys=app_state(request).system_keys)
    return _public(model, usable)
