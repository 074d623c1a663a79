"""Provider kinds: one :class:`ProviderKindSpec` per kind, found through entry points.

A kind's facts live in its spec, declared by the adapter module that speaks to it
(``modelyard.gateway.adapters.openai`` declares OpenAI, Groq, OpenAI-compatible and
custom): its endpoints (the wire formats the gateway walks), how a key authenticates,
the default base URL, where its system keys come from, the shape its keys have, its
connection check and the fine-tuning API it offers.

Every spec, built-in or third-party, is an entry point of the group
:data:`~modelyard.config.PROVIDER_GROUP` named after its kind::

    [project.entry-points."modelyard.providers"]
    openai = "modelyard.gateway.adapters.openai:OPENAI"

and is loaded on the first lookup (:func:`kind_info`, ``ProviderKind(name)``,
``for kind in ProviderKind``). :class:`ProviderKind` is an open set of names: the
built-in ones are class attributes, a plugin's exist once its spec is installed.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar, Literal

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from modelyard.config import PROVIDER_GROUP

__all__ = [
    "KIND_INFO",
    "AuthHeaders",
    "ConnectionCheck",
    "Endpoint",
    "ProviderKind",
    "ProviderKindSpec",
    "all_kinds",
    "kind_info",
    "reload_kinds",
]

#: Builds a request's authentication headers from a key and an organization (either may
#: be missing).
AuthHeaders = Callable[[str | None, str | None], dict[str, str]]


class _KindNames(type):
    """Lets ``for kind in ProviderKind`` and ``name in ProviderKind`` see installed kinds."""

    def __iter__(cls) -> Iterator[ProviderKind]:
        return iter(list(_registry()))

    def __contains__(cls, name: object) -> bool:
        return isinstance(name, str) and name in _registry()

    def __len__(cls) -> int:
        return len(_registry())


class ProviderKind(str, metaclass=_KindNames):
    """The name of an installed provider kind (a ``str``: it compares, hashes and
    serialises as its name).

    ``ProviderKind(name)`` gives the one instance of that kind, or raises ``ValueError``
    when no installed spec declares it, so ``kind is ProviderKind.LOCAL`` holds."""

    __slots__ = ()

    OPENAI: ClassVar[ProviderKind]
    ANTHROPIC: ClassVar[ProviderKind]
    GOOGLE: ClassVar[ProviderKind]
    GROQ: ClassVar[ProviderKind]
    HUGGINGFACE: ClassVar[ProviderKind]
    OPENAI_COMPATIBLE: ClassVar[ProviderKind]
    CUSTOM: ClassVar[ProviderKind]
    LOCAL: ClassVar[ProviderKind]

    def __new__(cls, value: object) -> ProviderKind:
        if isinstance(value, ProviderKind):
            return value
        installed = _registry()  # loading the specs declares their names
        kind = _NAMES.get(value) if isinstance(value, str) else None
        if kind is None or kind not in installed:
            raise ValueError(f"{value!r} is not a valid ProviderKind")
        return kind

    @classmethod
    def declare(cls, name: str) -> ProviderKind:
        """The kind called ``name``, for the spec that declares it (a plugin's new kind):
        lowercase letters, digits and ``_``, at most 40 characters."""
        if not _KIND_NAME.fullmatch(name):
            raise ValueError(f"{name!r} cannot name a provider kind: use a-z, 0-9 and _")
        return _name(name)

    @property
    def value(self) -> str:
        """The kind's name (as an enum member's ``value``)."""
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"ProviderKind({self.value!r})"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            cls,
            core_schema.str_schema(),
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "enum": sorted(_registry())}


_NAMES: dict[str, ProviderKind] = {}
_KIND_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


def _name(value: str) -> ProviderKind:
    """The one :class:`ProviderKind` instance of ``value`` (created on first use)."""
    if value not in _NAMES:
        _NAMES[value] = str.__new__(ProviderKind, value)
    return _NAMES[value]


ProviderKind.OPENAI = _name("openai")
ProviderKind.ANTHROPIC = _name("anthropic")
ProviderKind.GOOGLE = _name("google")
ProviderKind.GROQ = _name("groq")
ProviderKind.HUGGINGFACE = _name("huggingface")
ProviderKind.OPENAI_COMPATIBLE = _name("openai_compatible")
ProviderKind.CUSTOM = _name("custom")
ProviderKind.LOCAL = _name("local")
_BUILT_IN = tuple(_NAMES)


@dataclass(frozen=True)
class Endpoint:
    """One API of a kind, as the gateway walks them: a wire format (an adapter's ``api``)."""

    api: str
    #: The name a route target may pin (``router``, ``direct``); ``default`` when alone.
    name: str = "default"
    #: Overrides the credential's base URL (for a second API of the same provider).
    base_url_setting: str | None = None


@dataclass(frozen=True)
class ConnectionCheck:
    """The cheap authenticated call of "test connection", and how its answer reads."""

    #: Appended to the base URL; called with GET.
    path: str
    #: ``data``: an OpenAI-style model list; ``models``: Google's list (``models/`` names);
    #: ``message``: the custom contract's ``{"message"}`` (no model list).
    listing: Literal["data", "models", "message"] = "data"
    #: A bare JSON list of models is accepted too (some self-hosted servers send one).
    bare_list: bool = False
    #: Texts of an HTTP 400 body that mean a rejected key (Google answers so).
    bad_key_markers: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProviderKindSpec:
    """Everything modelyard knows about one provider kind."""

    kind: ProviderKind
    label: str
    default_base_url: str | None
    #: The APIs the gateway calls, in the order failover walks them.
    endpoints: tuple[Endpoint, ...]
    #: The adapter classes (:class:`~modelyard.gateway.adapters.base.Adapter`) the
    #: endpoints need; the gateway registers them.
    adapters: tuple[type[object], ...] = ()
    #: The key (and organization) as request headers.
    auth: AuthHeaders = field(default=lambda key, organization: {}, repr=False)
    #: "Test connection"; ``None``: nothing to connect to (in-process models).
    check: ConnectionCheck | None = None
    #: The fine-tuning API the kind offers (``openai``, ``custom``; see
    #: :mod:`modelyard.finetune.clients`), ``None`` when it offers none.
    fine_tuning: str | None = None
    #: Environment variables of system keys, most conventional first.
    env_vars: tuple[str, ...] = ()
    key_prefix: str | None = None
    key_min_length: int = 8
    #: How messages about a key name it; ``"<label> API key"`` when unset.
    key_label: str | None = None
    #: Where a user creates a key.
    key_url: str | None = None
    #: Whether this kind can be used without any key (local models, some self-hosted URLs).
    key_optional: bool = False
    #: Whether a user can store a key of their own for this kind.
    user_keys: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ProviderKind.declare(str(self.kind)))

    def endpoint_names(self) -> tuple[str, ...]:
        """The endpoint names a route target may pin (none when the kind has one)."""
        return tuple(e.name for e in self.endpoints) if len(self.endpoints) > 1 else ()


_lock = threading.RLock()
_loaded: dict[ProviderKind, ProviderKindSpec] | None = None
_loading = False


def _load() -> dict[ProviderKind, ProviderKindSpec]:
    """Every installed spec, from the entry points (name: the kind; value: its spec):
    the built-in kinds in the order of :class:`ProviderKind`, then the others by name."""

    def order(name: str) -> tuple[int, str]:
        return (_BUILT_IN.index(name), "") if name in _BUILT_IN else (len(_BUILT_IN), name)

    specs: dict[ProviderKind, ProviderKindSpec] = {}
    for point in sorted(entry_points(group=PROVIDER_GROUP), key=lambda p: order(p.name)):
        spec = point.load()
        if not isinstance(spec, ProviderKindSpec) or spec.kind != point.name:
            raise TypeError(
                f"entry point {point.name} = {point.value} of {PROVIDER_GROUP} must be the "
                f"ProviderKindSpec of kind {point.name!r}"
            )
        specs[spec.kind] = spec
    return specs


def _registry() -> dict[ProviderKind, ProviderKindSpec]:
    global _loaded, _loading
    if _loaded is not None:
        return _loaded
    with _lock:
        if _loaded is None:
            if _loading:
                raise RuntimeError(
                    "a provider kind was looked up while the provider plugins were loading"
                )
            _loading = True
            try:
                _loaded = _load()
            finally:
                _loading = False
        return _loaded


def reload_kinds() -> None:
    """Forget the loaded specs; the next lookup reads the entry points again (after a
    plugin is installed or removed)."""
    global _loaded
    with _lock:
        _loaded = None


def all_kinds() -> tuple[ProviderKindSpec, ...]:
    """Every installed spec, in the order of their kinds' names."""
    return tuple(_registry().values())


def kind_info(kind: ProviderKind | str) -> ProviderKindSpec:
    """The facts about ``kind``; ``ValueError`` when no installed spec declares it."""
    return _registry()[ProviderKind(kind)]


class _Specs(Mapping[ProviderKind, ProviderKindSpec]):
    """The installed specs by kind, read on use."""

    def __getitem__(self, kind: ProviderKind) -> ProviderKindSpec:
        return _registry()[kind]

    def __iter__(self) -> Iterator[ProviderKind]:
        return iter(list(_registry()))

    def __len__(self) -> int:
        return len(_registry())


#: Every installed spec by kind (a live view of the entry points).
KIND_INFO: Mapping[ProviderKind, ProviderKindSpec] = _Specs()
