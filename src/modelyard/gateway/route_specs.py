"""Named routes: their schema, shared by the admin, the API and the config file.

A route is an ordered priority list of targets; each target names a provider kind, a
model, and optionally one endpoint of that provider (Hugging Face: ``router`` or
``direct``). The gateway tries, in order: each target, each of its endpoints, each key.
The example from the routing issue::

    routes:
      text-generation:
        targets:
          - {provider: openai, model: gpt-3.5-turbo}
          - {provider: huggingface, endpoint: router, model: HuggingFaceH4/zephyr-7b-beta}
          - {provider: huggingface, endpoint: direct, model: OpenAssistant/oasst-sft-7-llama-2-13b}
          - {provider: huggingface, endpoint: direct, model: HuggingFaceH4/zephyr-7b-beta}
          - {provider: huggingface, endpoint: direct, model: facebook/bart-large-cnn}
        cache_ttl_seconds: 300
        unsupported_params: drop   # or error (the default)

``unsupported_params`` says what a parameter a target cannot honour does: ``error``, a 400
naming it, or ``drop``, left out (named in the ``x-modelyard-dropped-params`` header); see
:mod:`~modelyard.gateway.parameter_policy`.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from modelyard.gateway.parameter_policy import UnsupportedParams
from modelyard.providers.kinds import ProviderKind, kind_info

__all__ = ["RouteSpec", "RouteTargetSpec"]

_ROUTE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,199}$")


class RouteTargetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: ProviderKind
    model: str = Field(min_length=1, max_length=300)
    endpoint: str | None = None

    @model_validator(mode="after")
    def _known_endpoint(self) -> RouteTargetSpec:
        if self.endpoint is None:
            return self
        names = kind_info(self.provider).endpoint_names()
        if self.endpoint not in names:
            choices = ", ".join(names) or "none (it has one endpoint)"
            raise ValueError(
                f"endpoint {self.endpoint!r} is not an endpoint of {self.provider.value}; "
                f"choose: {choices}"
            )
        return self


class RouteSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str | None = Field(default=None, max_length=2000)
    targets: list[RouteTargetSpec] = Field(min_length=1, max_length=50)
    cache_ttl_seconds: int | None = Field(default=None, ge=1, le=30 * 24 * 3600)
    #: Share cached answers across users (only answers paid by an admin or system key).
    cache_shared: bool = False
    #: A parameter a target cannot honour: ``error`` (a 400) or ``drop`` (left out).
    unsupported_params: UnsupportedParams = "error"
    is_active: bool = True

    @field_validator("name")
    @classmethod
    def _route_name(cls, value: str) -> str:
        if not _ROUTE_NAME.match(value) or "/" in value:
            raise ValueError(
                "a route name uses letters, digits and . _ : - (no slash: `provider/model` "
                "names are reserved), at most 200 characters"
            )
        return value
