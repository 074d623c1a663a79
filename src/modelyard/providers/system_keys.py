"""System keys: provider keys from the environment and ``.env``, in every naming convention.

For each kind, each of its variable names is read as ``NAME``, then ``NAME_2``, ``NAME_3``,
… (up to :data:`MAX_NUMBERED`); values are collected in that order and de-duplicated.
Placeholders (empty, ``your_..._here``, ``sk-ant-your-actual-key-here``, …) are skipped
with a warning that names the variable, never its value.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

from modelyard.providers.kinds import KIND_INFO, ProviderKind
from modelyard.security.redaction import secret_registry

__all__ = [
    "MAX_NUMBERED",
    "collect_system_keys",
    "environment_with_dotenv",
    "is_placeholder",
    "load_system_keys",
]

logger = logging.getLogger(__name__)

MAX_NUMBERED = 20

_PLACEHOLDER = re.compile(
    r"^(|your[_\-].*|.*[_\-]here|.*your[_\-]?(actual|api|real)[_\-]?key.*|x+|\*+|"
    r"changeme|changethis|placeholder|none|null|todo|<.*>|\$\{.*\})$",
    re.IGNORECASE,
)


def is_placeholder(value: str) -> bool:
    """Whether ``value`` is an example value rather than a key."""
    return bool(_PLACEHOLDER.match(value.strip()))


def _names(base: str) -> list[str]:
    return [base] + [f"{base}_{number}" for number in range(2, MAX_NUMBERED + 1)]


def collect_system_keys(environ: Mapping[str, str | None]) -> dict[ProviderKind, list[str]]:
    """The usable keys per kind found in ``environ``, in order, without duplicates."""
    found: dict[ProviderKind, list[str]] = {}
    for kind, info in KIND_INFO.items():
        keys: list[str] = []
        for base in info.env_vars:
            for name in _names(base):
                value = environ.get(name)
                if value is None:
                    continue
                value = value.strip()
                if is_placeholder(value):
                    logger.warning("Ignoring %s: it holds a placeholder, not a key", name)
                elif value not in keys:
                    keys.append(value)
        if keys:
            found[kind] = keys
            secret_registry.update(keys)
    return found


def environment_with_dotenv(env_file: Path | None = Path(".env")) -> dict[str, str]:
    """The variables of ``.env`` overlaid by the process environment (which wins)."""
    merged: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(os.environ)
    return merged


def load_system_keys(env_file: Path | None = Path(".env")) -> dict[ProviderKind, list[str]]:
    """System keys from ``.env`` and the process environment."""
    return collect_system_keys(environment_with_dotenv(env_file))
