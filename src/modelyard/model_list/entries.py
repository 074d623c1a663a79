"""A listed model (one name a caller may send) and the list of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Literal

from modelyard.providers.kinds import ProviderKind

__all__ = ["CHAT_TASKS", "ListedModel", "ModelList", "Source"]

#: Where a name comes from.
Source = Literal["route", "catalog", "provider", "trained", "local"]

#: Tasks the chat page can talk to.
CHAT_TASKS = frozenset({"chat"})


@dataclass(frozen=True)
class ListedModel:
    """One name the gateway answers to, with what is known about it."""

    #: The name to send (``model`` of a request): unique in a list.
    name: str
    #: The model's own name: the upstream model, the route's or the trained model's name.
    model_id: str
    display_name: str
    source: Source
    #: ``chat``, ``embedding``, ``classification`` (or another task a catalog row names).
    task: str
    #: The provider kind that serves it; ``None`` for a route (it may try several).
    kind: ProviderKind | None
    provider_label: str
    owned_by: str
    created: datetime
    #: USD per million tokens; ``None`` when unknown (a route whose targets differ).
    input_price_per_million: Decimal | None
    output_price_per_million: Decimal | None
    context_length: int | None
    description: str | None
    #: Whether the caller has a credential for it (only catalog models may be locked).
    usable: bool = True
    #: Whether a user can add a key of their own for its provider.
    user_keys: bool = False
    #: Other names that mean the same model for the gateway (``openai/gpt-4o`` for
    #: ``gpt-4o``), answered by :meth:`ModelList.find` but not listed.
    aliases: tuple[str, ...] = ()
    #: Whether it takes images (a chat model of a multimodal family, a route whose first
    #: target does; see :mod:`modelyard.model_list.vision`).
    vision: bool = False

    @property
    def chat(self) -> bool:
        return self.task in CHAT_TASKS


@dataclass(frozen=True)
class ModelList:
    """The models usable by one caller, and the catalog models locked for them."""

    usable: Sequence[ListedModel]
    locked: Sequence[ListedModel]

    @property
    def chat(self) -> list[ListedModel]:
        """The usable models the chat page can talk to."""
        return [model for model in self.usable if model.chat]

    def find(self, name: str) -> ListedModel | None:
        """The usable model ``name`` means, answered under ``name`` (a listed name first,
        then an alias), else ``None``."""
        found = _lookup(self.usable, name)
        if found is None or found.name == name:
            return found
        return replace(found, name=name, aliases=())

    def entry(self, name: str) -> ListedModel | None:
        """The model ``name`` means, usable or else locked, under its listed name (for
        pages that say which key is missing)."""
        return _lookup(self.usable, name) or _lookup(self.locked, name)


def _lookup(models: Sequence[ListedModel], name: str) -> ListedModel | None:
    found = next((model for model in models if model.name == name), None)
    return found or next((model for model in models if name in model.aliases), None)
