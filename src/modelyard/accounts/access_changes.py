"""Changes to who may do what, announced in this process the moment they are committed.

A cache of resolved credentials (the API token cache) must not outlive a change to what it
holds: a user demoted, deactivated or given a new password, a token revoked. Rather than
each path that makes such a change (API routes, the admin panel, future ones) clearing the
caches itself, SQLAlchemy session events watch every ORM write to ``users`` and
``api_tokens`` and, once the transaction commits, call the listeners registered for that
engine with an :class:`AccessChange`. Nothing is read from the database for it, so a
cached request stays free of queries.

Writes made elsewhere (another process, raw SQL) are not seen; caches there expire on
their own (``MODELYARD_AUTH_CACHE_SECONDS``). A bulk ``UPDATE``/``DELETE`` whose rows are
unknown announces ``everything``, unless it passes ``execution_options`` with
:data:`ACCESS_UNCHANGED` set (as the ``last_used_at`` bookkeeping does).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import ORMExecuteState, Session

from modelyard.db.models import ApiToken, User
from modelyard.ttl_cache import TTLCache

__all__ = [
    "ACCESS_UNCHANGED",
    "AccessChange",
    "forget_cached_tokens",
    "watch_access_changes",
]

logger = logging.getLogger("modelyard.accounts")

#: An execution option: this bulk statement changes nothing a credential cache holds.
ACCESS_UNCHANGED = "modelyard_access_unchanged"
#: Token columns whose change does not matter to a cached token.
_TOKEN_BOOKKEEPING = frozenset({"last_used_at"})
_PENDING = "modelyard_access_change"

Listener = Callable[["AccessChange"], None]
_listeners: WeakKeyDictionary[Engine, list[Listener]] = WeakKeyDictionary()


@dataclass
class AccessChange:
    """Users and tokens whose rows changed; ``everything`` when the rows are unknown."""

    user_ids: set[int] = field(default_factory=set)
    token_ids: set[int] = field(default_factory=set)
    everything: bool = False

    def __bool__(self) -> bool:
        return self.everything or bool(self.user_ids or self.token_ids)


def watch_access_changes(engine: AsyncEngine | Engine, listener: Listener) -> None:
    """Call ``listener`` after each commit through ``engine`` that changed access."""
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    _listeners.setdefault(sync_engine, []).append(listener)


def forget_cached_tokens(cache: TTLCache[str, ApiToken]) -> Listener:
    """A listener dropping the cached tokens (token digest → record) a change touches."""

    def forget(change: AccessChange) -> None:
        if change.everything:
            cache.clear()
            return
        cache.discard_where(
            lambda _digest, record: (
                record.id in change.token_ids or record.user_id in change.user_ids
            )
        )

    return forget


def _pending(session: Session) -> AccessChange:
    change: AccessChange = session.info.setdefault(_PENDING, AccessChange())
    return change


def _changed_columns(instance: object) -> set[str]:
    state = inspect(instance)
    return {attr.key for attr in state.attrs if attr.history.has_changes()}


@event.listens_for(Session, "before_flush")
def _note_flushed(session: Session, _context: Any, _instances: Any) -> None:
    """Before the flush, while each object's changes are still known."""
    if not _listeners:
        return
    for instance in session.dirty:
        if isinstance(instance, User) and _changed_columns(instance):
            _pending(session).user_ids.add(instance.id)
        elif isinstance(instance, ApiToken) and _changed_columns(instance) - _TOKEN_BOOKKEEPING:
            _pending(session).token_ids.add(instance.id)
    for instance in session.deleted:
        if isinstance(instance, User):
            _pending(session).user_ids.add(instance.id)
        elif isinstance(instance, ApiToken):
            _pending(session).token_ids.add(instance.id)


@event.listens_for(Session, "do_orm_execute")
def _note_bulk(state: ORMExecuteState) -> None:
    """A bulk ``UPDATE``/``DELETE`` of users or tokens: which rows is unknown."""
    if not (state.is_update or state.is_delete) or not _listeners:
        return
    mapper = state.bind_mapper
    if mapper is None or mapper.class_ not in (User, ApiToken):
        return
    if state.execution_options.get(ACCESS_UNCHANGED):
        return
    _pending(state.session).everything = True


@event.listens_for(Session, "after_commit")
def _announce(session: Session) -> None:
    change: AccessChange | None = session.info.pop(_PENDING, None)
    if not change:
        return
    bind = session.bind
    engine = bind.engine if bind is not None else None
    for listener in _listeners.get(engine, ()) if engine is not None else ():
        try:
            listener(change)
        except Exception:
            logger.exception("An access-change listener failed")


@event.listens_for(Session, "after_rollback")
def _discard(session: Session) -> None:
    if not session.in_transaction():  # a savepoint's rollback keeps the outer changes
        session.info.pop(_PENDING, None)
