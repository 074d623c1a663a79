"""Connection checks of admin providers, run concurrently, each outcome recorded on its
provider with an audit row."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.db.models import Provider, User
from modelyard.gateway.http import UpstreamHttp
from modelyard.providers.connection import ConnectionResult, check_connection
from modelyard.providers.records import save_test_result

__all__ = ["check_and_record"]


async def check_and_record(
    session: AsyncSession,
    *,
    actor: User | None,
    providers: Sequence[Provider],
    http: UpstreamHttp,
    timeout: float,
) -> list[tuple[Provider, ConnectionResult]]:
    """Check every provider at once, then store each outcome on its record."""
    results = await asyncio.gather(
        *(
            check_connection(
                kind=provider.kind,
                base_url=provider.base_url,
                api_key=provider.api_key,
                organization=provider.organization_id,
                http=http,
                timeout=timeout,
            )
            for provider in providers
        )
    )
    for provider, result in zip(providers, results, strict=True):
        await save_test_result(session, actor=actor, provider=provider, result=result)
    return list(zip(providers, results, strict=True))
