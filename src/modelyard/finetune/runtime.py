"""What provider fine-tuning needs from the running process, and which provider it uses.

:class:`Runtime` carries the app's upstream HTTP session and the fine-tuning settings.
:func:`active_provider` picks the provider new work runs on: the active default
provider, else the first active one (by id); with none, a 409 that says what to do.
A job keeps the provider it was created on (:func:`job_provider`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.config import Settings
from modelyard.db.models import Provider
from modelyard.errors import ConflictError
from modelyard.finetune.clients import client_for
from modelyard.finetune.errors import NoActiveProviderError
from modelyard.finetune.remote import FineTuneClient
from modelyard.gateway.http import UpstreamHttp

__all__ = ["Runtime", "active_provider", "job_provider"]


@dataclass(frozen=True)
class Runtime:
    """The HTTP session provider calls use, their timeout and the file size limit."""

    http: UpstreamHttp
    timeout: float
    max_file_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings, http: UpstreamHttp) -> Runtime:
        return cls(http, settings.finetune_timeout_seconds, settings.finetune_max_file_bytes)

    def client(self, provider: Provider) -> FineTuneClient:
        return client_for(provider, http=self.http, timeout=self.timeout)


async def active_provider(session: AsyncSession) -> Provider:
    """The active default provider, else the first active one; 409 when there is none."""
    provider = await session.scalar(
        select(Provider)
        .where(Provider.is_active.is_(True))
        .order_by(Provider.is_default.desc(), Provider.id)
        .limit(1)
    )
    if provider is None:
        raise NoActiveProviderError()
    return provider


async def job_provider(
    session: AsyncSession, provider_id: int | None, name: str | None
) -> Provider:
    """The provider a job was created on (jobs stay with their provider)."""
    provider = await session.get(Provider, provider_id) if provider_id is not None else None
    if provider is None:
        raise ConflictError(
            f"The provider this job ran on ({name or 'unknown'}) was deleted; its job can no "
            "longer be reached from here.",
            code="provider_deleted",
        )
    return provider
