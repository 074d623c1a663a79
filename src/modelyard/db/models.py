"""ORM models: accounts, keys, admin-managed providers, the model catalog, the audit log."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from modelyard.db.base import Base
from modelyard.db.types import EncryptedString, UTCDateTime, utcnow

__all__ = [
    "ApiToken",
    "AuditLogEntry",
    "GatewayRoute",
    "LlmModel",
    "Provider",
    "User",
    "UserProviderKey",
    "WebSession",
]


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class User(TimestampMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str | None] = mapped_column(String(200), default=None)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    has_subscription: Mapped[bool] = mapped_column(Boolean, default=False)
    trial_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    api_tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )


class ApiToken(Base):
    """A personal API token; only the digest of the token is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    #: The first characters of the token, shown to tell tokens apart.
    display_prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    user: Mapped[User] = relationship(back_populates="api_tokens")


class WebSession(Base):
    """A signed-in browser; the cookie holds the token, the row its digest."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class UserProviderKey(TimestampMixin, Base):
    """A user's own key for one provider kind, encrypted at rest."""

    __tablename__ = "user_provider_keys"
    __table_args__ = (
        UniqueConstraint("user_id", "provider", name="uq_user_provider_keys_user_provider"),
        Index("ix_user_provider_keys_provider", "provider"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(40))
    api_key: Mapped[str] = mapped_column(EncryptedString)


class Provider(TimestampMixin, Base):
    """An admin-managed provider: a kind, its key and endpoint, and its test status.

    At most one row has ``is_default`` true; a partial unique index enforces it.
    """

    __tablename__ = "providers"
    __table_args__ = (
        Index(
            "uq_providers_single_default",
            "is_default",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
        Index("ix_providers_kind", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    api_key: Mapped[str | None] = mapped_column(EncryptedString, default=None)
    base_url: Mapped[str | None] = mapped_column(String(500), default=None)
    base_model: Mapped[str | None] = mapped_column(String(200), default=None)
    fine_tuned_model_id: Mapped[str | None] = mapped_column(String(200), default=None)
    organization_id: Mapped[str | None] = mapped_column(EncryptedString, default=None)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Declared in the ``MODELYARD_CONFIG`` file; edit the file, not the record.
    managed_by_file: Mapped[bool] = mapped_column(Boolean, default=False)
    last_test_status: Mapped[str | None] = mapped_column(String(20), default=None)
    last_tested_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_test_message: Mapped[str | None] = mapped_column(Text, default=None)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    updated_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )

    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    updated_by: Mapped[User | None] = relationship(foreign_keys=[updated_by_id])

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class LlmModel(TimestampMixin, Base):
    """A model in the catalog, with its prices per million tokens and context length."""

    __tablename__ = "llm_models"
    __table_args__ = (
        UniqueConstraint("provider_kind", "model_id", name="uq_llm_models_provider_model"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_kind: Mapped[str] = mapped_column(String(40))
    #: The model's name at the provider, e.g. ``claude-sonnet-4-5``.
    model_id: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(40), default="chat")
    input_price_per_million: Mapped[Decimal] = mapped_column(Numeric(12, 6), default=Decimal(0))
    output_price_per_million: Mapped[Decimal] = mapped_column(Numeric(12, 6), default=Decimal(0))
    context_length: Mapped[int | None] = mapped_column(Integer, default=None)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    def __str__(self) -> str:
        return f"{self.provider_kind}/{self.model_id}"


class AuditLogEntry(Base):
    """Who changed what and when; field names only, never a secret's value."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "entity_type", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    #: Kept as text so the entry still reads after the account is deleted.
    actor_email: Mapped[str | None] = mapped_column(String(320), default=None)
    action: Mapped[str] = mapped_column(String(40))
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int | None] = mapped_column(Integer, default=None)
    entity_name: Mapped[str | None] = mapped_column(String(200), default=None)
    changed_fields: Mapped[list[Any]] = mapped_column(JSON, default=list)
    detail: Mapped[str | None] = mapped_column(Text, default=None)


class GatewayRoute(TimestampMixin, Base):
    """A named route (model alias): an ordered priority list of (provider, model) targets.

    ``targets`` holds ``[{"provider": kind, "model": name, "endpoint": null|"router"|
    "direct"}, …]``, validated by :mod:`modelyard.gateway.route_specs`.
    """

    __tablename__ = "gateway_routes"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    targets: Mapped[list[Any]] = mapped_column(JSON, default=list)
    #: Answers are cached for this many seconds (exact match); ``None``: no caching.
    cache_ttl_seconds: Mapped[int | None] = mapped_column(Integer, default=None)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    managed_by_file: Mapped[bool] = mapped_column(Boolean, default=False)

    def __str__(self) -> str:
        return self.name
