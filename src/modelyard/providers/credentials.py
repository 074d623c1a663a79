"""Which credentials a request may use for a provider kind, in priority order.

1. the user's own key;
2. admin-managed providers of that kind that are active: the default first, then by id;
3. system keys from the environment, in the order they were found.

The result is the ordered list the gateway rotates through. With nothing usable,
:class:`MissingCredentialsError` names the provider and how to add a key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.db.models import Provider, User, UserProviderKey
from modelyard.errors import BadRequestError
from modelyard.providers.kinds import KIND_INFO, ProviderKind, kind_info

__all__ = [
    "Credential",
    "MissingCredentialsError",
    "kinds_with_credentials",
    "resolve_credentials",
    "usable_kinds",
]

CredentialSource = Literal["user", "admin", "system", "keyless"]


@dataclass(frozen=True)
class Credential:
    """One way to call a provider: a key (or none for keyless kinds) and an endpoint."""

    kind: ProviderKind
    source: CredentialSource
    api_key: str | None = field(repr=False)
    base_url: str | None
    organization: str | None = field(default=None, repr=False)
    provider_id: int | None = None
    #: Safe to log: says where the key came from, never the key.
    label: str = ""
    #: The user whose own key this is (``source == "user"``), else None.
    owner_id: int | None = None


class MissingCredentialsError(BadRequestError):
    """No key at all for a provider kind."""

    def __init__(self, kind: ProviderKind) -> None:
        info = kind_info(kind)
        hints = []
        if info.user_keys:
            hints.append(
                f"add your own in your profile (PATCH /v2/users/me/api-key with "
                f'provider "{kind.value}")'
            )
        hints.append(f"ask an administrator to configure a {info.label} provider")
        if info.env_vars:
            hints.append(f"set {info.env_vars[0]} on the server")
        super().__init__(
            f"No API key for {info.label}: " + ", or ".join(hints) + ".",
            code="missing_provider_key",
        )
        self.kind = kind


async def _admin_providers(session: AsyncSession, kind: ProviderKind) -> Sequence[Provider]:
    result = await session.execute(
        select(Provider)
        .where(Provider.kind == kind.value, Provider.is_active.is_(True))
        .order_by(Provider.is_default.desc(), Provider.id)
    )
    return result.scalars().all()


async def resolve_credentials(
    session: AsyncSession,
    *,
    user: User | None,
    kind: ProviderKind | str,
    system_keys: Mapping[ProviderKind, Sequence[str]],
    base_urls: Mapping[str, str] | None = None,
) -> list[Credential]:
    """The credentials for ``kind`` in priority order; raises when there are none.

    User and system keys go to ``base_urls[kind]`` when set (a proxy, a regional or
    compatible endpoint), else to the provider's own URL."""
    kind = ProviderKind(kind)
    info = kind_info(kind)
    default_url = (base_urls or {}).get(kind.value) or info.default_base_url
    credentials: list[Credential] = []
    if user is not None and info.user_keys:
        own = await session.scalar(
            select(UserProviderKey.api_key).where(
                UserProviderKey.user_id == user.id, UserProviderKey.provider == kind.value
            )
        )
        if own:
            credentials.append(
                Credential(kind, "user", own, default_url, label="your own key", owner_id=user.id)
            )
    for provider in await _admin_providers(session, kind):
        if provider.api_key is None and not info.key_optional:
            continue
        credentials.append(
            Credential(
                kind,
                "admin",
                provider.api_key,
                provider.base_url or default_url,
                provider.organization_id,
                provider.id,
                label=f"provider {provider.name!r}",
            )
        )
    for position, key in enumerate(system_keys.get(kind, ()), start=1):
        credentials.append(
            Credential(
                kind,
                "system",
                key,
                default_url,
                label=f"system key {position} ({info.env_vars[0]})",
            )
        )
    if not credentials and kind is ProviderKind.LOCAL:
        credentials.append(Credential(kind, "keyless", None, None, label="local runtime"))
    if not credentials:
        raise MissingCredentialsError(kind)
    return credentials


def kinds_with_credentials(
    *,
    own: Iterable[str],
    providers: Iterable[tuple[str, bool]],
    system_keys: Mapping[ProviderKind, Sequence[str]],
) -> set[ProviderKind]:
    """The kinds with a credential, from rows already read: the user's own key kinds
    and the active admin providers as (kind, has a key); kinds no longer installed are
    left out."""
    kinds = {ProviderKind.LOCAL} | {kind for kind, keys in system_keys.items() if keys}
    kinds |= {ProviderKind(value) for value in own if value in ProviderKind}
    for kind_value, has_key in providers:
        if kind_value in ProviderKind:
            kind = ProviderKind(kind_value)
            if has_key or KIND_INFO[kind].key_optional:
                kinds.add(kind)
    return kinds


async def usable_kinds(
    session: AsyncSession,
    *,
    user: User | None,
    system_keys: Mapping[ProviderKind, Sequence[str]],
) -> set[ProviderKind]:
    """Every kind ``user`` has at least one credential for (one query per source)."""
    own: Sequence[str] = ()
    if user is not None:
        rows = await session.execute(
            select(UserProviderKey.provider).where(UserProviderKey.user_id == user.id)
        )
        own = rows.scalars().all()
    providers = await session.execute(
        select(Provider.kind, Provider.api_key.isnot(None)).where(Provider.is_active.is_(True))
    )
    return kinds_with_credentials(
        own=own,
        providers=[(kind, bool(has_key)) for kind, has_key in providers.all()],
        system_keys=system_keys,
    )
