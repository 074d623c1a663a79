"""ORM models: accounts, keys, admin-managed providers, the model catalog, the audit log."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
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
    "Conversation",
    "ConversationMessage",
    "GatewayRoute",
    "LlmModel",
    "Provider",
    "TrainedModel",
    "TrainingDataset",
    "TrainingEvent",
    "TrainingJob",
    "UsageLimit",
    "UsageRecord",
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
    #: The user's default system prompt ("custom instructions") for new conversations.
    custom_instructions: Mapped[str | None] = mapped_column(Text, default=None)

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
    #: Cached answers are shared by every user (only those paid by an admin or system key);
    #: otherwise each user has cached answers of their own.
    cache_shared: Mapped[bool] = mapped_column(Boolean, default=False)
    #: What to do with a request parameter a target cannot honour: ``error`` (a 400 naming
    #: it) or ``drop`` (leave it out, named in the ``x-modelyard-dropped-params`` header).
    unsupported_params: Mapped[str] = mapped_column(String(10), default="error")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    managed_by_file: Mapped[bool] = mapped_column(Boolean, default=False)

    def __str__(self) -> str:
        return self.name


class UsageRecord(Base):
    """One gateway request (chat, messages or embeddings; success or failure).

    An append-only accounting log: the user, token and conversation ids carry no foreign
    keys, so a batch of records never fails because one of them was deleted meanwhile
    (and inserts stay cheap).
    """

    __tablename__ = "usage_records"
    __table_args__ = (
        Index("ix_usage_records_user_created", "user_id", "created_at"),
        Index("ix_usage_records_created", "created_at"),
        Index("ix_usage_records_event_id", "event_id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    request_id: Mapped[str | None] = mapped_column(String(64), default=None)
    user_id: Mapped[int | None] = mapped_column(Integer, default=None)
    api_token_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    #: ``chat``, ``messages`` or ``embeddings``.
    endpoint: Mapped[str] = mapped_column(String(20))
    route: Mapped[str | None] = mapped_column(String(200), default=None)
    provider: Mapped[str | None] = mapped_column(String(40), default=None)
    #: The model name the client asked for.
    model: Mapped[str] = mapped_column(String(300))
    #: The model that answered (after routing).
    upstream_model: Mapped[str | None] = mapped_column(String(300), default=None)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(18, 8), default=Decimal(0))
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: The HTTP status the client got (for a stream that failed midway: 502).
    status: Mapped[int] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(100), default=None)
    cache_hit: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Tokens counted by modelyard (the provider reported none).
    estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    conversation_id: Mapped[int | None] = mapped_column(Integer, default=None)
    #: The event's unique id: a record replayed from the usage journal after a crash is
    #: inserted once (``NULL`` on rows written before the journal existed).
    event_id: Mapped[str | None] = mapped_column(String(32), default=None)


class Conversation(TimestampMixin, Base):
    """A chat of the web app: its title and messages."""

    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_user_updated", "user_id", "updated_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    #: The conversation's model: the one its next turn uses unless the user picks another.
    model: Mapped[str | None] = mapped_column(String(300), default=None)
    #: Per-conversation settings; ``None`` means the user's default (custom instructions)
    #: or the model's own default.
    system_prompt: Mapped[str | None] = mapped_column(Text, default=None)
    temperature: Mapped[float | None] = mapped_column(Float, default=None)
    max_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    #: The id in the read-only share link (random, URL-safe); ``None`` when not shared.
    share_id: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    #: The leaf of the branch shown (message versions form a tree through ``parent_id``).
    current_message_id: Mapped[int | None] = mapped_column(Integer, default=None)

    messages: Mapped[list[ConversationMessage]] = relationship(
        back_populates="conversation",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="ConversationMessage.id",
    )


class ConversationMessage(Base):
    """One user or assistant message, with what the answer cost."""

    __tablename__ = "conversation_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    role: Mapped[str] = mapped_column(String(20))
    content: Mapped[str] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(300), default=None)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(18, 8), default=Decimal(0))
    latency_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    #: The message this one answers or follows; siblings (same parent and role) are the
    #: versions a Regenerate or an edit made.
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversation_messages.id", ondelete="CASCADE"), index=True, default=None
    )
    #: ``None``: complete; ``stopped``: the answer was cut (client stop or disconnect) and
    #: holds what had arrived.
    status: Mapped[str | None] = mapped_column(String(20), default=None)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")


class MessageAttachment(Base):
    """A file a user attached to a chat message: an image sent as an image part, or a
    text/Markdown/PDF file whose extracted text is inlined as context."""

    __tablename__ = "message_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: ``None`` until the message it was uploaded for is sent.
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversation_messages.id", ondelete="CASCADE"), index=True, default=None
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100))
    #: ``image`` or ``text``.
    kind: Mapped[str] = mapped_column(String(10))
    size_bytes: Mapped[int] = mapped_column(Integer)
    #: The image's bytes (``None`` for text files, whose text is in ``text``).
    content: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    text: Mapped[str | None] = mapped_column(Text, default=None)
    token_estimate: Mapped[int] = mapped_column(Integer, default=0)


class AppSetting(Base):
    """One setting an admin changed in the app (for example the default chat model)."""

    __tablename__ = "app_settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )


class UsageLimit(TimestampMixin, Base):
    """Budget and rate limits of one user or one API token (exactly one of the two)."""

    __tablename__ = "usage_limits"
    __table_args__ = (
        CheckConstraint("(user_id IS NULL) != (api_token_id IS NULL)", name="one_subject"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True, default=None
    )
    api_token_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="CASCADE"), unique=True, default=None
    )
    #: Spend limit in USD per ``budget_period``; ``None``: no budget.
    budget_usd: Mapped[Decimal | None] = mapped_column(Numeric(18, 6), default=None)
    #: ``day``, ``week`` or ``month`` (calendar periods, UTC).
    budget_period: Mapped[str] = mapped_column(String(10), default="month")
    requests_per_minute: Mapped[int | None] = mapped_column(Integer, default=None)
    tokens_per_minute: Mapped[int | None] = mapped_column(Integer, default=None)


class TrainingDataset(Base):
    """An uploaded, validated training file (stored under ``<data dir>/datasets``)."""

    __tablename__ = "training_datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), default=None, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    name: Mapped[str] = mapped_column(String(200))
    #: ``csv``, ``jsonl`` or ``parquet``.
    format: Mapped[str] = mapped_column(String(10))
    #: ``classification``, ``chat`` or ``instruction``.
    kind: Mapped[str] = mapped_column(String(20))
    #: The file, relative to the data directory.
    path: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    num_examples: Mapped[int] = mapped_column(Integer)
    columns: Mapped[list[Any]] = mapped_column(JSON, default=list)
    #: Classification: the distinct labels, sorted.
    labels: Mapped[list[Any] | None] = mapped_column(JSON, default=None)


class TrainingJob(TimestampMixin, Base):
    """A fine-tuning job: its config, state, latest progress and final metrics.

    States: ``queued``, ``validating``, ``running``, ``succeeded``, ``failed``,
    ``cancelled``. Secrets a job needs (a Hugging Face token, …) are never stored here.
    """

    __tablename__ = "training_jobs"
    __table_args__ = (
        Index("ix_training_jobs_state", "state"),
        Index("ix_training_jobs_user_created", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    dataset_id: Mapped[int | None] = mapped_column(
        ForeignKey("training_datasets.id", ondelete="SET NULL"), default=None
    )
    #: ``classification`` or ``sft``.
    task: Mapped[str] = mapped_column(String(20))
    base_model: Mapped[str] = mapped_column(String(300))
    #: The trained model's name (its directory under ``<data dir>/models``).
    output_name: Mapped[str] = mapped_column(String(100))
    #: ``cpu`` or ``gpu``.
    compute_type: Mapped[str] = mapped_column(String(10), default="cpu")
    #: The full :class:`~modelyard.training.config.TrainingConfig`.
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(20), default="queued")
    #: The latest progress: step, total_steps, epoch, loss, learning_rate, samples/s, ETA.
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    #: The job's working directory (checkpoints, logs), relative to the data directory.
    work_dir: Mapped[str | None] = mapped_column(String(500), default=None)
    #: The latest complete checkpoint (absolute), resumed from after an interruption.
    checkpoint_path: Mapped[str | None] = mapped_column(String(1000), default=None)
    worker_pid: Mapped[int | None] = mapped_column(Integer, default=None)
    #: Which runner holds the job (``host:pid``); the executor (local, later Celery).
    runner_id: Mapped[str | None] = mapped_column(String(200), default=None)
    executor: Mapped[str] = mapped_column(String(20), default="local")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The Hub repository the model is pushed to when done (``org/name``), if any.
    push_to: Mapped[str | None] = mapped_column(String(300), default=None)
    #: The push's outcome: ``repo_id``, ``private``, ``state`` (``pending``, ``pushed``,
    #: ``failed``), ``url`` and ``error``.
    hub_push: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    #: The hyperparameter advice shown when the job was started (source and content).
    advice: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class TrainedModel(TimestampMixin, Base):
    """A model trained by this service: who owns it, who may use it, where it lies.

    Names are unique per owner (``owner_id`` ``None``: trained from the CLI without a user,
    visible to staff only). ``visibility``: ``private`` (owner and staff) or ``everyone``.
    """

    __tablename__ = "trained_models"
    __table_args__ = (UniqueConstraint("owner_id", "name", name="uq_trained_models_owner_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), default=None, index=True
    )
    name: Mapped[str] = mapped_column(String(100), index=True)
    visibility: Mapped[str] = mapped_column(String(20), default="private")
    task: Mapped[str] = mapped_column(String(20))
    base_model: Mapped[str] = mapped_column(String(300))
    job_id: Mapped[int | None] = mapped_column(
        ForeignKey("training_jobs.id", ondelete="SET NULL"), default=None
    )
    #: The model's directory, relative to the data directory.
    path: Mapped[str] = mapped_column(String(500))


class StoredResponse(Base):
    """A Responses API answer kept for its user (``store``), until ``expires_at``.

    ``response`` is the Response object as returned; ``context`` the conversation in chat
    form up to and including this answer, which a later ``previous_response_id`` continues.
    """

    __tablename__ = "stored_responses"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    model: Mapped[str] = mapped_column(String(300))
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    context: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True), index=True)


class TrainingEvent(Base):
    """One line of a job's history: progress, evaluation, state change or log."""

    __tablename__ = "training_events"
    __table_args__ = (Index("ix_training_events_job_id_id", "job_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: ``progress``, ``eval``, ``state`` or ``log``.
    kind: Mapped[str] = mapped_column(String(20))
    step: Mapped[int | None] = mapped_column(Integer, default=None)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# -- provider fine-tuning (issue 10) ----------------------------------------------------

__all__ += ["FineTuneCommand", "FineTuneEvent", "FineTuneFile"]


class FineTuneFile(TimestampMixin, Base):
    """A training file checked and uploaded to a provider for fine-tuning (issue 10).

    Only its summary is kept here; the content lives at the provider as ``remote_id``.
    """

    __tablename__ = "finetune_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    provider_id: Mapped[int | None] = mapped_column(
        ForeignKey("providers.id", ondelete="SET NULL"), default=None, index=True
    )
    #: The provider's kind and name, kept as text so the record reads after it is deleted.
    provider_kind: Mapped[str] = mapped_column(String(40))
    provider_name: Mapped[str] = mapped_column(String(100))
    filename: Mapped[str] = mapped_column(String(255))
    purpose: Mapped[str] = mapped_column(String(20), default="fine-tune")
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    num_examples: Mapped[int] = mapped_column(Integer)
    #: The file's id at the provider (``file-…``) and its status there.
    remote_id: Mapped[str] = mapped_column(String(200))
    remote_status: Mapped[str | None] = mapped_column(String(40), default=None)
    status_detail: Mapped[str | None] = mapped_column(Text, default=None)

    def __str__(self) -> str:
        return f"{self.filename} ({self.remote_id})"


class FineTuneCommand(TimestampMixin, Base):
    """One fine-tuning command run on a provider: ``create`` a job, or ``refresh``,
    ``cancel`` or ``list_events`` of the job of a ``create`` command (``job_command_id``).

    ``state`` is the command's own (``pending``, ``done``, ``failed``); a ``create``
    command also carries its job's status, synced in the background. Provider errors are
    kept with the provider's status, code, message and parameter; never a key.
    """

    __tablename__ = "finetune_commands"
    __table_args__ = (
        Index("ix_finetune_commands_state_job_status", "state", "job_status"),
        Index("ix_finetune_commands_job_command_id", "job_command_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    #: ``create``, ``refresh``, ``cancel`` or ``list_events``.
    command_type: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20), default="pending")
    provider_id: Mapped[int | None] = mapped_column(
        ForeignKey("providers.id", ondelete="SET NULL"), default=None
    )
    provider_kind: Mapped[str | None] = mapped_column(String(40), default=None)
    provider_name: Mapped[str | None] = mapped_column(String(100), default=None)
    training_file_id: Mapped[int | None] = mapped_column(
        ForeignKey("finetune_files.id", ondelete="SET NULL"), default=None
    )
    validation_file_id: Mapped[int | None] = mapped_column(
        ForeignKey("finetune_files.id", ondelete="SET NULL"), default=None
    )
    job_command_id: Mapped[int | None] = mapped_column(
        ForeignKey("finetune_commands.id", ondelete="SET NULL"), default=None
    )
    #: The base model (``create``).
    model: Mapped[str | None] = mapped_column(String(200), default=None)
    #: The validated command data: hyperparameters, suffix, seed.
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: The body sent to the provider (no secrets).
    request: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    remote_job_id: Mapped[str | None] = mapped_column(String(200), default=None)
    #: ``validating_files``, ``queued``, ``running``, ``succeeded``, ``failed``, ``cancelled``.
    job_status: Mapped[str | None] = mapped_column(String(30), default=None)
    fine_tuned_model: Mapped[str | None] = mapped_column(String(200), default=None)
    #: The provider's latest answer (the job, or the events fetched).
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    error_status: Mapped[int | None] = mapped_column(Integer, default=None)
    error_code: Mapped[str | None] = mapped_column(String(100), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    error_param: Mapped[str | None] = mapped_column(String(100), default=None)
    #: Why the latest status check failed (cleared by the next one that works).
    sync_error: Mapped[str | None] = mapped_column(Text, default=None)
    ran_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    def __str__(self) -> str:
        return f"{self.command_type} #{self.id}"


class FineTuneEvent(Base):
    """One event of a provider fine-tuning job, stored once (``remote_id`` per job)."""

    __tablename__ = "finetune_events"
    __table_args__ = (
        UniqueConstraint("command_id", "remote_id", name="uq_finetune_events_command_remote"),
        Index("ix_finetune_events_command_id_id", "command_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    #: The ``create`` command whose job this is.
    command_id: Mapped[int] = mapped_column(ForeignKey("finetune_commands.id", ondelete="CASCADE"))
    remote_id: Mapped[str] = mapped_column(String(200))
    #: When the provider says it happened (``None`` when it does not say).
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    level: Mapped[str] = mapped_column(String(20), default="info")
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
