"""Providers declared in a YAML file (``MODELYARD_CONFIG``), for configuration kept in
version control. Loaded at start: declared providers are created or updated and marked
``managed_by_file``; ones no longer declared are removed.

Secrets are never written inline: ``api_key: ${OPENAI_API_KEY}`` names an environment
variable, and an inline value is refused. Example::

    providers:
      - name: OpenAI
        kind: openai
        api_key: ${OPENAI_API_KEY}
        is_default: true
      - name: Local vLLM
        kind: openai_compatible
        base_url: http://127.0.0.1:8001/v1
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.db.engine import Database
from modelyard.db.models import Provider
from modelyard.gateway.route_records import sync_file_routes
from modelyard.gateway.route_specs import RouteSpec
from modelyard.providers import records
from modelyard.providers.record_schemas import ProviderCreate
from modelyard.providers.system_keys import environment_with_dotenv

__all__ = [
    "ConfigFileError",
    "FileConfig",
    "apply_config_file",
    "load_config_file",
    "sync_file_providers",
]

logger = logging.getLogger(__name__)

_ENV_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_SECRET_FIELDS = ("api_key", "organization_id")


class ConfigFileError(ValueError):
    """The config file cannot be used; the message says where and why."""


class DeclaredProvider(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    kind: str
    api_key: str | None = None
    organization_id: str | None = None
    base_url: str | None = None
    base_model: str | None = None
    fine_tuned_model_id: str | None = None
    is_active: bool = True
    is_default: bool = False

    @field_validator(*_SECRET_FIELDS)
    @classmethod
    def _reference_only(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_REFERENCE.match(value.strip()):
            raise ValueError(
                "secrets are never written inline; reference an environment variable, "
                "e.g. ${OPENAI_API_KEY}"
            )
        return value


class FileConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    providers: list[DeclaredProvider] = Field(default_factory=list)
    #: Named gateway routes: name → {targets, description, cache_ttl_seconds, cache_shared,
    #: unsupported_params, is_active} (see :mod:`modelyard.gateway.route_specs`).
    routes: dict[str, Any] = Field(default_factory=dict)


def load_config_file(path: Path) -> FileConfig:
    """Parse and validate ``path``; raises :class:`ConfigFileError` with the location."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigFileError(f"Cannot read MODELYARD_CONFIG file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"{path} is not valid YAML: {exc}") from None
    try:
        config = FileConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigFileError(f"{path}: {problems}") from None
    for name, body in config.routes.items():
        try:
            RouteSpec.model_validate({"name": name, **(body or {})})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ConfigFileError(f"{path}: routes.{name}.{where}: {first['msg']}") from None
    names = [provider.name for provider in config.providers]
    if len(names) != len(set(names)):
        raise ConfigFileError(f"{path}: provider names must be unique")
    if sum(provider.is_default for provider in config.providers) > 1:
        raise ConfigFileError(f"{path}: at most one provider can have is_default: true")
    return config


def _resolve(declared: DeclaredProvider, environ: Mapping[str, str]) -> dict[str, Any]:
    values = declared.model_dump()
    for name in _SECRET_FIELDS:
        reference = values.get(name)
        if reference is None:
            continue
        match = _ENV_REFERENCE.match(reference.strip())
        assert match is not None
        variable = match.group(1)
        if not environ.get(variable):
            raise ConfigFileError(
                f"Provider {declared.name!r}: {name} references ${{{variable}}}, "
                "which is not set in the environment."
            )
        values[name] = environ[variable]
    try:
        return ProviderCreate.model_validate(values).model_dump()
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigFileError(
            f"Provider {declared.name!r}: {'.'.join(map(str, first['loc']))}: {first['msg']}"
        ) from None


async def sync_file_providers(
    session: AsyncSession, config: FileConfig, environ: Mapping[str, str]
) -> list[Provider]:
    """Make the database's file-managed providers match ``config``."""
    wanted = {declared.name: _resolve(declared, environ) for declared in config.providers}
    existing = {
        provider.name: provider for provider in (await session.execute(select(Provider))).scalars()
    }
    for name, provider in existing.items():
        if provider.managed_by_file and name not in wanted:
            provider.managed_by_file = False
            await records.delete_provider(session, actor=None, provider=provider)
    synced = []
    for name, values in wanted.items():
        current = existing.get(name)
        if current is None:
            provider = await records.create_provider(session, actor=None, values=values)
        else:
            current.managed_by_file = False  # lets the shared update path change it
            changes = {key: value for key, value in values.items() if key != "kind"}
            if values["kind"] != current.kind:
                raise ConfigFileError(
                    f"Provider {name!r} exists with kind {current.kind}; rename it in the file."
                )
            provider = await records.update_provider(
                session, actor=None, provider=current, changes=changes
            )
        provider.managed_by_file = True
        await session.commit()
        synced.append(provider)
    logger.info("Loaded %d provider(s) from the config file", len(synced))
    return synced


async def apply_config_file(path: Path, database: Database) -> list[Provider]:
    """Load ``path`` and sync its providers, with secrets from the environment and ``.env``."""
    config = load_config_file(path)
    async with database.sessions() as session:
        providers = await sync_file_providers(session, config, environment_with_dotenv())
        await sync_file_routes(session, config.routes)
        return providers
