"""Which models take images (``vision`` in the model list, image attachments in the chat).

The catalog has no capability column, so the rule reads the model's own name (the
upstream model id, after a ``kind/`` or ``ft:`` prefix and any ``vendor/`` path):

* a known multimodal family takes images: ``gpt-4o*``, ``chatgpt-4o*``, ``gpt-4.1*``,
  ``gpt-4.5*``, ``gpt-5*``, ``gpt-4-turbo*``, ``gpt-4-vision*``, ``o1``, ``o3``,
  ``o4-mini*``; ``claude-3*`` and the Claude 4 generation (``claude-*-4*``);
  ``gemini-*``; and open models named for it (``llava*``, ``pixtral*``, ``*-vision*``,
  ``*-vl*``);
* except their audio, speech, realtime, search and embedding variants
  (``gpt-4o-audio-preview``, ``gpt-4o-mini-tts``, ``gemini-embedding-001``…);
* a route takes images when its first target does (the target it tries first);
* local models (built-in and trained, ``local/…``) and every other name do not.

Another vision family is named here (``_FAMILIES``), with a case in
``tests/model_list/test_vision.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.db.models import GatewayRoute
from modelyard.providers.kinds import ProviderKind

__all__ = ["model_takes_images", "name_takes_images", "route_takes_images", "takes_images"]

_FAMILIES = re.compile(
    r"""^(?:
        gpt-4o | chatgpt-4o | gpt-4\.1 | gpt-4\.5 | gpt-5 | gpt-4-turbo | gpt-4-vision
      | o1(?:-\d{4}-\d{2}-\d{2})?$ | o3(?:-\d{4}-\d{2}-\d{2})?$ | o3-pro | o4-mini
      | claude-3 | claude-[a-z]+-4
      | gemini-
      | llava | pixtral
    )""",
    re.VERBOSE,
)
_NAMED_FOR_IT = re.compile(r"(?:^|[-_.])(?:vision|vl)(?:$|[-_.\d])")
_NOT_IMAGES = re.compile(r"audio|tts|transcribe|realtime|search|embed|image-generation")


def takes_images(model_id: str, *, kind: str | None = None) -> bool:
    """Whether the upstream model ``model_id`` (of provider ``kind``) takes images."""
    if kind == ProviderKind.LOCAL:
        return False
    name = model_id.strip().lower()
    if name.startswith("ft:"):
        name = name[3:]
    name = name.rsplit("/", 1)[-1]
    if not name or _NOT_IMAGES.search(name):
        return False
    return bool(_FAMILIES.match(name) or _NAMED_FOR_IT.search(name))


def _target(target: Mapping[str, Any]) -> tuple[str, str]:
    return str(target.get("provider") or ""), str(target.get("model") or "")


def route_takes_images(targets: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a route with ``targets`` takes images: its first target's answer."""
    if not targets:
        return False
    kind, model = _target(targets[0])
    return kind in ProviderKind and takes_images(model, kind=kind)


async def model_takes_images(session: AsyncSession, name: str) -> bool:
    """Whether ``name`` (any name a chat request may send) takes images, by the gateway's
    resolution order: an active route of that name, else a ``kind/model`` name, else a
    bare model id."""
    route = await session.scalar(
        select(GatewayRoute.targets).where(
            GatewayRoute.name == name, GatewayRoute.is_active.is_(True)
        )
    )
    if route is not None:
        return route_takes_images(route)
    return name_takes_images(name)


def name_takes_images(name: str) -> bool:
    """Whether a model name that is not a route takes images: a ``kind/model`` name by
    its kind and model, else a bare model id."""
    prefix, _, rest = name.partition("/")
    if rest and prefix in ProviderKind:
        return takes_images(rest, kind=prefix)
    return takes_images(name)
