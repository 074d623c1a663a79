"""What a provider's fine-tuning API answers, and the call every client makes.

A client speaks one provider's wire format through the gateway's upstream layer
(:func:`~modelyard.gateway.adapters.wire.send` over the app's
:class:`~modelyard.gateway.http.UpstreamHttp`), with a total timeout per call and the
kind's auth headers. Every failure, classified like the gateway's
(:class:`~modelyard.gateway.upstream_errors.UpstreamError`), becomes a
:class:`~modelyard.finetune.errors.ProviderFailure` carrying the provider's status, code,
message and parameter, with the key masked.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from modelyard.finetune.errors import ProviderFailure, clean_text, provider_error
from modelyard.gateway.adapters.wire import answer_error, send
from modelyard.gateway.http import UpstreamHttp
from modelyard.gateway.upstream_errors import UpstreamError
from modelyard.providers.kinds import AuthHeaders

__all__ = [
    "TERMINAL_STATUSES",
    "FineTuneClient",
    "JobSpec",
    "RemoteError",
    "RemoteEvent",
    "RemoteFile",
    "RemoteJob",
    "parse_event",
    "parse_job",
]

#: Job statuses after which nothing changes any more.
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
_SYNONYMS = {"canceled": "cancelled", "canceling": "cancelling"}


@dataclass(frozen=True)
class RemoteFile:
    id: str
    status: str | None
    detail: str | None = None


@dataclass(frozen=True)
class RemoteError:
    message: str
    code: str | None = None
    param: str | None = None


@dataclass(frozen=True)
class RemoteEvent:
    id: str
    message: str
    level: str = "info"
    created_at: datetime | None = None
    data: dict[str, Any] | None = None


@dataclass(frozen=True)
class RemoteJob:
    id: str
    status: str
    #: The provider's whole answer (stored with the command, key masked).
    raw: dict[str, Any]
    fine_tuned_model: str | None = None
    error: RemoteError | None = None
    #: Events sent along with the job (the custom contract), oldest first.
    events: tuple[RemoteEvent, ...] | None = None


@dataclass(frozen=True)
class JobSpec:
    """A fine-tuning job to create: remote file ids, the base model and the options."""

    model: str
    training_file: str
    validation_file: str | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    suffix: str | None = None
    seed: int | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "training_file": self.training_file}
        if self.validation_file:
            body["validation_file"] = self.validation_file
        if self.hyperparameters:
            body["hyperparameters"] = dict(self.hyperparameters)
        if self.suffix:
            body["suffix"] = self.suffix
        if self.seed is not None:
            body["seed"] = self.seed
        return body


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _time(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def parse_event(value: Any, fallback_id: str) -> RemoteEvent | None:
    """An event object (OpenAI's or the custom contract's); ``None`` when unusable."""
    if not isinstance(value, dict) or _text(value.get("message")) is None:
        return None
    data = value.get("data")
    return RemoteEvent(
        id=str(value.get("id") or fallback_id)[:200],
        message=str(value["message"]),
        level=str(value.get("level") or "info")[:20],
        created_at=_time(value.get("created_at")),
        data=data if isinstance(data, dict) and data else None,
    )


def parse_job(value: Any, *, label: str) -> RemoteJob:
    """A job object (``id``, ``status``, ``fine_tuned_model``, ``error``, [``events``])."""
    if not isinstance(value, dict) or _text(value.get("id")) is None:
        raise provider_error(
            label,
            status=None,
            code="bad_provider_response",
            message="the answer is not a fine-tuning job object (no 'id')",
        )
    status = str(value.get("status") or "unknown").strip().lower()
    error = value.get("error")
    remote_error = None
    if isinstance(error, dict) and _text(error.get("message")):
        remote_error = RemoteError(
            str(error["message"]), _text(error.get("code")), _text(error.get("param"))
        )
    elif _text(error):
        remote_error = RemoteError(str(error))
    events = value.get("events")
    parsed = None
    if isinstance(events, list):
        found = (parse_event(event, f"#{i}") for i, event in enumerate(events, start=1))
        parsed = tuple(event for event in found if event is not None)
    return RemoteJob(
        id=str(value["id"]),
        status=_SYNONYMS.get(status, status)[:30],
        raw=value,
        fine_tuned_model=_text(value.get("fine_tuned_model")),
        error=remote_error,
        events=parsed,
    )


class FineTuneClient(ABC):
    """One provider's files and fine-tuning API, for one provider record."""

    def __init__(
        self,
        *,
        label: str,
        base_url: str,
        api_key: str | None,
        http: UpstreamHttp,
        timeout: float,
        auth: AuthHeaders,
        organization: str | None = None,
    ) -> None:
        self.label = label
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.organization = organization
        self.http = http
        self.timeout = timeout
        self.auth = auth

    def headers(self) -> dict[str, str]:
        """The kind's auth headers (its spec's ``auth``), asking for JSON."""
        return {"accept": "application/json", **self.auth(self.api_key, self.organization)}

    def failure(
        self,
        status: int | None,
        code: str | None,
        message: str,
        param: str | None = None,
        *,
        retry_after: float | None = None,
    ) -> ProviderFailure:
        return provider_error(
            self.label,
            status=status,
            code=code,
            message=clean_text(message, self.api_key),
            param=param,
            retry_after=retry_after,
        )

    def _unanswered(self, error: UpstreamError, host: str) -> ProviderFailure:
        """The failure for a call that got no answer (``timeout`` or ``connection``)."""
        if error.category == "timeout":
            return self.failure(
                None,
                "provider_timeout",
                f"no answer from {host} within {self.timeout:g} s; try again later "
                "(or raise MODELYARD_FINETUNE_TIMEOUT_SECONDS)",
            )
        return self.failure(
            None,
            "provider_unreachable",
            f"could not reach {host} ({error.message}); check the provider's base URL and "
            "that the service is up",
        )

    async def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        upload: tuple[str, Path] | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> Any:
        """One call; the decoded JSON answer, or a :class:`ProviderFailure`.

        ``upload``: ``(filename, path)`` sent as the multipart field ``file``, after the
        form ``fields``."""
        url = f"{self.base_url}{path}"
        host = urlsplit(url).netloc or url
        handle = upload[1].open("rb") if upload else None
        form = None
        if upload is not None:
            form = aiohttp.FormData()
            for name, value in (fields or {}).items():
                form.add_field(name, value)
            form.add_field("file", handle, filename=upload[0], content_type="application/jsonl")
        try:
            answer = await send(
                self.http,
                method,
                url,
                headers=self.headers(),
                timeout=self.timeout,
                json_body=json_body,
                form=form,
                params=params,
            )
        except UpstreamError as error:
            raise self._unanswered(error, host) from None
        finally:
            if handle is not None:
                handle.close()
        refused = answer_error(answer)
        if refused is not None:
            raise self.failure(
                answer.status,
                refused.code,
                refused.detail,
                refused.param,
                retry_after=refused.retry_after,
            )
        status, body = answer.status, answer.body
        if not body.strip():
            return {}
        try:
            return answer.json()
        except ValueError:
            raise self.failure(
                None,
                "bad_provider_response",
                f"{host} answered HTTP {status} with a body that is not JSON; check the "
                "provider's base URL",
            ) from None

    # -- what each provider implements ----------------------------------------------------

    @abstractmethod
    async def upload_file(self, path: Path, filename: str) -> RemoteFile: ...

    @abstractmethod
    async def delete_file(self, file_id: str) -> None: ...

    @abstractmethod
    async def create_job(self, spec: JobSpec) -> RemoteJob: ...

    @abstractmethod
    async def get_job(self, job_id: str) -> RemoteJob: ...

    @abstractmethod
    async def cancel_job(self, job_id: str) -> RemoteJob: ...

    @abstractmethod
    async def list_events(
        self, job_id: str, *, known: Collection[str] = frozenset()
    ) -> list[RemoteEvent]:
        """The job's events, oldest first; paging may stop at an event id in ``known``."""
