"""The fine-tuning clients per fine-tuning API, and :func:`client_for` to pick one.

A kind's spec names the API it offers
(:attr:`~modelyard.providers.kinds.ProviderKindSpec.fine_tuning`):

* ``openai``: :class:`OpenAIFineTuning` — OpenAI and OpenAI-compatible services: the
  Files API (``POST /files``, multipart, purpose ``fine-tune``) and ``/fine_tuning/jobs``.
* ``custom``: :class:`CustomFineTuning` — the custom REST contract
  (``docs/custom-provider.md``): ``POST /files``, ``POST /fine-tune``,
  ``GET /fine-tune/{id}`` (with its events) and ``POST /fine-tune/{id}/cancel``.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any
from urllib.parse import quote

from modelyard.db.models import Provider
from modelyard.errors import BadRequestError
from modelyard.finetune.remote import (
    FineTuneClient,
    JobSpec,
    RemoteEvent,
    RemoteFile,
    RemoteJob,
    parse_event,
    parse_job,
)
from modelyard.gateway.http import UpstreamHttp
from modelyard.providers.kinds import all_kinds, kind_info

__all__ = [
    "FINE_TUNING_APIS",
    "CustomFineTuning",
    "OpenAIFineTuning",
    "client_for",
    "provider_label",
]

#: Events asked for per page, and pages read at most per look.
EVENTS_PAGE = 100
EVENT_PAGES = 20


def _id(value: str) -> str:
    return quote(value, safe="")


def _remote_file(answer: Any, client: FineTuneClient) -> RemoteFile:
    if not isinstance(answer, dict) or not isinstance(answer.get("id"), str):
        raise client.failure(None, "bad_provider_response", "the upload answer has no file 'id'")
    detail = answer.get("status_details")
    return RemoteFile(
        answer["id"][:200],
        str(answer["status"])[:40] if answer.get("status") else None,
        str(detail) if detail else None,
    )


class OpenAIFineTuning(FineTuneClient):
    """OpenAI's Files and fine-tuning APIs (any OpenAI-compatible base URL)."""

    async def upload_file(self, path: Path, filename: str) -> RemoteFile:
        answer = await self.call(
            "POST", "/files", upload=(filename, path), fields={"purpose": "fine-tune"}
        )
        return _remote_file(answer, self)

    async def delete_file(self, file_id: str) -> None:
        await self.call("DELETE", f"/files/{_id(file_id)}")

    async def create_job(self, spec: JobSpec) -> RemoteJob:
        answer = await self.call("POST", "/fine_tuning/jobs", json_body=spec.body())
        return parse_job(answer, label=self.label)

    async def get_job(self, job_id: str) -> RemoteJob:
        answer = await self.call("GET", f"/fine_tuning/jobs/{_id(job_id)}")
        return parse_job(answer, label=self.label)

    async def cancel_job(self, job_id: str) -> RemoteJob:
        answer = await self.call("POST", f"/fine_tuning/jobs/{_id(job_id)}/cancel")
        return parse_job(answer, label=self.label)

    async def list_events(
        self, job_id: str, *, known: Collection[str] = frozenset()
    ) -> list[RemoteEvent]:
        """The events, following ``has_more`` (OpenAI lists the newest first) until a
        page reaches one already ``known``."""
        events: list[RemoteEvent] = []
        params = {"limit": str(EVENTS_PAGE)}
        for _page in range(EVENT_PAGES):
            answer = await self.call(
                "GET", f"/fine_tuning/jobs/{_id(job_id)}/events", params=params
            )
            data = answer.get("data") if isinstance(answer, dict) else None
            if not isinstance(data, list):
                raise self.failure(
                    None, "bad_provider_response", "the events answer has no 'data' list"
                )
            found = [parse_event(item, "") for item in data]
            page = [event for event in found if event is not None and event.id]
            events.extend(page)
            if not page or answer.get("has_more") is not True or any(e.id in known for e in page):
                break
            params = {"limit": str(EVENTS_PAGE), "after": page[-1].id}
        return list(reversed(events))


class CustomFineTuning(FineTuneClient):
    """The custom REST provider contract."""

    async def upload_file(self, path: Path, filename: str) -> RemoteFile:
        answer = await self.call(
            "POST", "/files", upload=(filename, path), fields={"purpose": "fine-tune"}
        )
        return _remote_file(answer, self)

    async def delete_file(self, file_id: str) -> None:
        await self.call("DELETE", f"/files/{_id(file_id)}")

    async def create_job(self, spec: JobSpec) -> RemoteJob:
        body = {"validation_file": None, "hyperparameters": {}, **spec.body()}
        answer = await self.call("POST", "/fine-tune", json_body=body)
        return parse_job(answer, label=self.label)

    async def get_job(self, job_id: str) -> RemoteJob:
        return parse_job(await self.call("GET", f"/fine-tune/{_id(job_id)}"), label=self.label)

    async def cancel_job(self, job_id: str) -> RemoteJob:
        answer = await self.call("POST", f"/fine-tune/{_id(job_id)}/cancel")
        return parse_job(answer, label=self.label)

    async def list_events(
        self, job_id: str, *, known: Collection[str] = frozenset()
    ) -> list[RemoteEvent]:
        return list((await self.get_job(job_id)).events or ())


#: The fine-tuning APIs a kind's spec may name, with their client.
FINE_TUNING_APIS: dict[str, type[FineTuneClient]] = {
    "openai": OpenAIFineTuning,
    "custom": CustomFineTuning,
}


def provider_label(provider: Provider) -> str:
    """How messages name a provider: ``Provider 'Main' (OpenAI)``."""
    return f"Provider {provider.name!r} ({kind_info(provider.kind).label})"


def client_for(provider: Provider, *, http: UpstreamHttp, timeout: float) -> FineTuneClient:
    """The client for ``provider``; a 400 when its kind cannot fine-tune or it lacks a
    key or base URL."""
    info = kind_info(provider.kind)
    label = provider_label(provider)
    client_class = FINE_TUNING_APIS.get(info.fine_tuning or "")
    if client_class is None:
        names = ", ".join(
            spec.label for spec in all_kinds() if spec.fine_tuning in FINE_TUNING_APIS
        )
        raise BadRequestError(
            f"{label} cannot fine-tune through its API here; fine-tuning works with {names} "
            "providers: make one of those the default in /admin (Providers, Set as default) "
            "or with POST /v2/admin/providers/actions/set-default.",
            code="provider_cannot_fine_tune",
        )
    base_url = provider.base_url or info.default_base_url
    if not base_url:
        raise BadRequestError(
            f"{label} has no base URL; set it in /admin (Providers).", code="missing_base_url"
        )
    if provider.api_key is None and not info.key_optional:
        raise BadRequestError(
            f"{label} has no API key; add one in /admin (Providers) or with "
            f"PATCH /v2/admin/providers/{provider.id}.",
            code="missing_provider_key",
        )
    return client_class(
        label=label,
        base_url=base_url,
        api_key=provider.api_key,
        organization=provider.organization_id,
        http=http,
        timeout=timeout,
        auth=info.auth,
    )
