"""A user's own provider keys: set (format-checked, encrypted), removed, and listed as flags."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.db.models import User, UserProviderKey
from modelyard.providers.key_format import InvalidKeyFormat, check_key_format
from modelyard.providers.kinds import KIND_INFO, ProviderKind

__all__ = ["delete_user_key", "own_key_kinds", "set_user_key", "user_key_kinds"]


def own_key_kinds() -> tuple[ProviderKind, ...]:
    """The kinds a user can hold a key of their own for."""
    return tuple(kind for kind, info in KIND_INFO.items() if info.user_keys)


def _user_kind(provider: str) -> ProviderKind:
    try:
        kind = ProviderKind(provider)
    except ValueError:
        kind = None
    if kind not in own_key_kinds():
        choices = ", ".join(own_key_kinds())
        raise InvalidKeyFormat(f"Unknown provider {provider!r}; choose one of: {choices}.")
    assert kind is not None
    return kind


async def set_user_key(
    session: AsyncSession, *, user: User, provider: str, api_key: str
) -> ProviderKind:
    """Store (or replace) ``user``'s key for ``provider``; raises :class:`InvalidKeyFormat`."""
    kind = _user_kind(provider)
    key = check_key_format(kind, api_key)
    existing = await session.scalar(
        select(UserProviderKey).where(
            UserProviderKey.user_id == user.id, UserProviderKey.provider == kind.value
        )
    )
    if existing is None:
        session.add(UserProviderKey(user_id=user.id, provider=kind.value, api_key=key))
    else:
        existing.api_key = key
    await session.commit()
    return kind


async def delete_user_key(session: AsyncSession, *, user: User, provider: str) -> bool:
    """Remove ``user``'s key for ``provider``; ``False`` when there was none."""
    kind = _user_kind(provider)
    result = await session.execute(
        delete(UserProviderKey).where(
            UserProviderKey.user_id == user.id, UserProviderKey.provider == kind.value
        )
    )
    await session.commit()
    return bool(getattr(result, "rowcount", 0))


async def user_key_kinds(session: AsyncSession, *, user: User) -> set[str]:
    """The kinds ``user`` holds a key for (reads no secret)."""
    result = await session.execute(
        select(UserProviderKey.provider).where(UserProviderKey.user_id == user.id)
    )
    return set(result.scalars())
