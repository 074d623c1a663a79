"""The home page: a small dashboard (who is signed in, this month's use, recent
conversations) with the way on to models, chat, keys and usage."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.api.deps import OptionalCaller, SessionDep, app_state
from modelyard.conversations.service import list_conversations
from modelyard.db.models import UsageRecord
from modelyard.db.types import utcnow
from modelyard.providers.user_keys import user_key_kinds
from modelyard.usage.queries import UsageQuery
from modelyard.web.catalog import load_catalog
from modelyard.web.rendering import redirect, render, signed_in

__all__ = ["MonthUse", "router"]

router = APIRouter(include_in_schema=False)

#: Conversations listed on the dashboard.
RECENT = 5


@dataclass(frozen=True)
class MonthUse:
    """A user's requests, tokens and cost since the first of this month (UTC)."""

    requests: int
    tokens: int
    cost_usd: Decimal


async def month_use(session: AsyncSession, *, user_id: int) -> MonthUse:
    today = utcnow().date()
    query = UsageQuery(start=today.replace(day=1), end=today, user_id=user_id)
    row = (
        await session.execute(
            select(
                func.count(UsageRecord.id),
                func.coalesce(func.sum(UsageRecord.input_tokens + UsageRecord.output_tokens), 0),
                func.coalesce(func.sum(UsageRecord.cost_usd), 0),
            ).where(
                UsageRecord.user_id == user_id,
                UsageRecord.created_at >= query.since,
                UsageRecord.created_at < query.until,
            )
        )
    ).one()
    return MonthUse(int(row[0]), int(row[1]), Decimal(str(row[2])))


def chat_href(model: str | None, conversation_id: int) -> str | None:
    """The chat page of a conversation, continued with ``model``."""
    return f"/language-models/{quote(model)}?c={conversation_id}" if model else None


@router.get("/", response_model=None)
async def home(request: Request, caller: OptionalCaller, session: SessionDep) -> Response:
    """The dashboard, or the sign-in page for visitors."""
    page = signed_in(caller)
    if page is None:
        return redirect("/login")
    catalog = await load_catalog(
        session, user=page.user, system_keys=app_state(request).system_keys
    )
    chat_models = [model for model in catalog if model.usable and model.chat]
    names = {model.model_id: model.name for model in reversed(chat_models)}
    fallback = chat_models[0].name if chat_models else None
    recent = await list_conversations(session, user_id=page.user.id, limit=RECENT, offset=0)
    links = [
        (conversation, chat_href(names.get(conversation.model or "") or fallback, conversation.id))
        for conversation in recent.items
    ]
    return render(
        request,
        "home.html",
        page=page,
        nav="home",
        usable_count=sum(model.usable for model in catalog),
        locked_count=sum(not model.usable for model in catalog),
        chat_model=chat_models[0] if chat_models else None,
        recent=links,
        conversation_count=recent.total,
        own_keys=len(await user_key_kinds(session, user=page.user)),
        use=await month_use(session, user_id=page.user.id),
    )
