"""The local models every caller may use without a key or a download: the built-in
aliases of :data:`modelyard.local.sources.BUILT_IN_MODELS` whose package is installed."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from modelyard.local.sources import BUILT_IN_MODELS

__all__ = ["BuiltInModel", "built_in_models"]


@dataclass(frozen=True)
class BuiltInModel:
    """One built-in model: its first alias names it, the others are aliases."""

    name: str
    aliases: tuple[str, ...]
    task: str
    #: The longest input in tokens, from the model's own ``sentence_bert_config.json``.
    context_length: int | None
    created: datetime


def _max_tokens(folder: Path) -> int | None:
    try:
        config = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    length = config.get("max_seq_length") if isinstance(config, dict) else None
    return length if isinstance(length, int) else None


@functools.cache
def built_in_models() -> tuple[BuiltInModel, ...]:
    """The installed built-in models (read once: they change with the packages only)."""
    names: dict[object, list[str]] = {}
    for name, locate in BUILT_IN_MODELS.items():
        names.setdefault(locate, []).append(name)
    found = []
    for aliases in names.values():
        try:
            folder = Path(BUILT_IN_MODELS[aliases[0]]())
            created = datetime.fromtimestamp((folder / "config.json").stat().st_mtime, UTC)
        except (ImportError, OSError):
            continue
        found.append(
            BuiltInModel(aliases[0], tuple(aliases[1:]), "embedding", _max_tokens(folder), created)
        )
    return tuple(found)
