"""What creating or updating an admin-managed provider takes: one shape for the staff API,
the admin panel and the ``MODELYARD_CONFIG`` file (secrets are write-only everywhere)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from modelyard.providers.kinds import ProviderKind

__all__ = ["HttpUrlText", "ProviderCreate", "ProviderUpdate", "Secret"]


def _http_url(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().rstrip("/")
    if not value.startswith(("http://", "https://")) or len(value) < 10:
        raise ValueError("must be an http:// or https:// URL, e.g. https://api.example.com/v1")
    return value


HttpUrlText = Annotated[str, Field(max_length=500), AfterValidator(_http_url)]
Secret = Annotated[str, Field(min_length=1, max_length=500)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProviderCreate(_Strict):
    name: str = Field(min_length=1, max_length=100)
    kind: ProviderKind
    api_key: Secret | None = None
    base_url: HttpUrlText | None = None
    base_model: str | None = Field(default=None, max_length=200)
    fine_tuned_model_id: str | None = Field(default=None, max_length=200)
    organization_id: Secret | None = None
    is_active: bool = True
    is_default: bool = False


class ProviderUpdate(_Strict):
    """Fields left out stay as they are; ``api_key: null`` removes the key."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    api_key: Secret | None = None
    base_url: HttpUrlText | None = None
    base_model: str | None = Field(default=None, max_length=200)
    fine_tuned_model_id: str | None = Field(default=None, max_length=200)
    organization_id: Secret | None = None
    is_active: bool | None = None
    is_default: bool | None = None
