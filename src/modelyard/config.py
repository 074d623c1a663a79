"""Settings for the whole service, read from ``MODELYARD_*`` variables and a ``.env`` file.

Every setting has a default that runs the service on this machine with SQLite in the data
directory and no key at all. ``DATABASE_URL`` (or ``MODELYARD_DATABASE_URL``) switches to
PostgreSQL. Outside development, placeholder secrets are refused at start-up.
"""

from __future__ import annotations

import ipaddress
from decimal import Decimal
from functools import cached_property
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["PLACEHOLDER_SECRETS", "Network", "Settings", "normalise_database_url", "parse_networks"]

#: Values that are never accepted as a secret outside development.
PLACEHOLDER_SECRETS = frozenset(
    {"changethis", "changeme", "change-me", "secret", "password", "admin", "example", "xxx"}
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """``"10.0.0.1, 192.168.0.0/16"`` → networks; raises ``ValueError`` naming a bad entry."""
    networks = []
    for item in text.split(","):
        entry = item.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                f"{entry!r} is not an IP address or CIDR network (e.g. 10.0.0.1, 10.0.0.0/8)"
            ) from None
    return tuple(networks)


#: The entry-point group of provider kinds (see :mod:`modelyard.providers.kinds`): each
#: entry point is named after its kind.
PROVIDER_GROUP = "modelyard.providers"

_V = TypeVar("_V")


def _known_kinds(value: dict[str, _V]) -> dict[str, _V]:
    """``value``, or a ``ValueError`` naming the keys no installed provider kind has."""
    kinds = {point.name for point in entry_points(group=PROVIDER_GROUP)}
    unknown = sorted(set(value) - kinds)
    if unknown:
        raise ValueError(f"unknown provider kinds {unknown}; use: {', '.join(sorted(kinds))}")
    return value


#: A price in USD per million tokens.
UsdPerMillion = Annotated[Decimal, Field(ge=0)]


def normalise_database_url(url: str) -> str:
    """Return ``url`` with the async driver SQLAlchemy needs (asyncpg, aiosqlite)."""
    for plain, asynchronous in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgresql+psycopg2://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return asynchronous + url[len(plain) :]
    return url


class Settings(BaseSettings):
    """The service's settings; build one per process (tests build their own)."""

    model_config = SettingsConfigDict(
        env_prefix="MODELYARD_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    env: Literal["development", "production", "test"] = "development"
    data_dir: Path = Path(".modelyard")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    #: The event loop a worker runs: ``auto`` (uvloop when installed: about 7% less CPU
    #: per request), ``uvloop`` or ``asyncio`` (the standard library's: under saturation
    #: with many connections its p99 stays near 2x p50; docs/benchmarks.md, 2026-12-07).
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("MODELYARD_DATABASE_URL", "DATABASE_URL")
    )
    #: Comma-separated Fernet keys, newest first. Empty: a key file in the data directory.
    encryption_keys: str | None = None
    admin_email: str = "admin@modelyard.local"
    admin_password: str | None = None
    session_cookie_name: str = "modelyard_session"
    session_ttl_hours: int = Field(default=24 * 14, ge=1)
    #: Send cookies with the Secure flag (set it when the service is behind HTTPS).
    secure_cookies: bool = False
    #: Comma-separated addresses or CIDR networks of the reverse proxies in front of the
    #: service. Only a request from one of them has its ``X-Forwarded-For`` (and
    #: ``X-Forwarded-Proto``) believed; by default none is, and the client is the TCP peer.
    trusted_proxies: str = ""
    #: When set, ``/metrics`` answers only ``Authorization: Bearer <this token>``.
    metrics_token: str | None = None
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    #: The body limit of dataset uploads.
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    #: The most rows (CSV records, JSONL lines, Parquet rows) a training dataset may have.
    dataset_max_rows: int = Field(default=1_000_000, ge=10)
    #: The most bytes a training dataset may take once read (decompressed and decoded).
    dataset_max_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    allow_registration: bool = True
    #: Special-use e-mail domains (RFC 6761) accepted on registration, with their
    #: subdomains (comma-separated): the default admin is ``admin@modelyard.local``.
    #: ``onion`` and ``arpa`` are refused unless listed; empty: none accepted.
    registration_special_use_domains: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["local", "localhost", "test", "example", "invalid"]
    )
    #: Chat needs an active subscription or trial when on (otherwise 402).
    require_subscription: bool = False
    #: The (cheap) model that titles a new conversation after its first answer, asked as
    #: the user and metered like chat; empty: titles are the question's first words.
    title_model: str = Field(default="", max_length=300)
    #: Days of trial a new account gets (0: none).
    trial_days: int = Field(default=14, ge=0, le=3650)
    #: A YAML file declaring providers (and gateway routes), kept in version control.
    config_file: Path | None = Field(
        default=None, validation_alias=AliasChoices("MODELYARD_CONFIG", "MODELYARD_CONFIG_FILE")
    )
    #: Seconds an upstream model call may take (between chunks, for streams).
    upstream_timeout: float = Field(default=600.0, gt=0)
    #: A request's whole budget: every target, pass and backoff included.
    route_deadline_seconds: float = Field(default=120.0, gt=0)
    #: Consecutive 5xx/timeout/connection failures that open a target's circuit breaker.
    cooldown_failures: int = Field(default=3, ge=1, le=1000)
    #: The breaker's first open period; it doubles on each re-open, up to the maximum.
    cooldown_seconds: float = Field(default=5.0, gt=0, le=86400)
    cooldown_max_seconds: float = Field(default=300.0, gt=0, le=86400)
    #: Redis for state shared by several app processes (cooldowns, response cache).
    redis_url: str | None = None
    #: Prefix of every Redis key (several deployments can share one Redis).
    redis_prefix: str = "modelyard:"
    #: Entries of the in-memory response cache (used without Redis).
    response_cache_entries: int = Field(default=1000, ge=0)
    #: Hugging Face's direct (serverless) inference API, the second Hugging Face endpoint.
    hf_inference_url: str = "https://api-inference.huggingface.co/models"
    #: Seconds a resolved API token is trusted before the database is asked again (a token
    #: revoked through another process stops working within this time).
    auth_cache_seconds: float = Field(default=10.0, ge=0)
    #: Seconds resolved provider credentials are reused (changes made through another
    #: process are seen within this time; this process sees its own at once).
    credentials_cache_seconds: float = Field(default=5.0, ge=0)
    #: Days a Responses API answer created with ``store`` is kept (for
    #: ``previous_response_id`` and ``GET /v1/responses/{id}``); expired ones are purged.
    responses_retention_days: int = Field(default=30, ge=1, le=3650)
    #: Usage records are written in batches at least this often (journaled first, see
    #: ``usage_journal``; without the journal a crash loses at most this much).
    usage_flush_seconds: float = Field(default=1.0, gt=0, le=60)
    #: Every usage record is first appended to a local journal (``<data_dir>/usage-journal``,
    #: one file per process) and replayed from it at start-up after a crash: a killed
    #: process loses none. ``false``: memory only (a crash loses what was queued).
    usage_journal: bool = True
    #: When the journal is flushed to the disk itself: ``never`` (the operating system
    #: decides: a killed process loses nothing, a machine crash may lose the last ~30 s),
    #: ``batch`` (once per write of the batch writer: a machine crash loses at most one
    #: flush interval) or ``always`` (after every record: nothing, at one fsync a request).
    usage_journal_fsync: Literal["never", "batch", "always"] = "batch"
    #: Freeze the heap built at start-up out of the garbage collector (``gc.freeze``), so
    #: full collections under load do not walk it again and again.
    gc_freeze: bool = True
    #: Net allocations that start a young garbage collection in a serving process
    #: (``gc.set_threshold``'s first value; Python's is 700, ``0`` keeps it): see
    #: :func:`modelyard.runtime_probes.young_threshold`.
    gc_young_threshold: int = Field(default=50_000, ge=0)
    #: FastAPI's native OpenTelemetry (a span, metrics and logs for every request, through
    #: the process's global OpenTelemetry providers: set them up with
    #: ``opentelemetry-instrument`` or an SDK of your own). Off: looking the providers up
    #: cost every request a few microseconds, and ``/metrics`` is the service's own.
    opentelemetry: bool = False
    #: Seconds a provider connection test may take.
    connection_test_timeout: float = Field(default=10.0, gt=0, le=120)
    #: Local models kept in memory together (parameter bytes); the least recently used
    #: are unloaded past it.
    local_memory_budget_mb: int = Field(default=4096, ge=1)
    #: Where local models run: ``cpu``, ``cuda`` (``cuda:N``) when available, or ``auto``.
    local_device: str = Field(default="cpu", pattern=r"^(cpu|auto|cuda(:\d+)?)$")
    #: Non-streaming generations of one local model run together, up to this many.
    local_max_batch: int = Field(default=8, ge=1, le=256)
    #: Folders under which staff may load local models by path (comma-separated); users
    #: never load paths. Empty: no paths at all (trained models and Hub ids still load).
    local_model_dirs: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    #: Whether users (not staff) may make the server download local models from the Hub;
    #: off, they use the models an admin offers in the catalog (provider kind ``local``).
    local_hub_downloads: bool = False
    #: The largest Hub download a user may cause (MiB, from the Hub's file metadata).
    local_hub_max_mb: int = Field(default=2048, ge=1)
    #: The Hugging Face Hub (or a mirror) local models are downloaded from; the Hub when unset.
    hf_endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("MODELYARD_HF_ENDPOINT", "HF_ENDPOINT")
    )
    #: Base URLs per provider kind for user and system keys (JSON, e.g.
    #: ``{"openai": "https://proxy.internal/v1"}``); admin providers set their own.
    provider_base_urls: dict[str, str] = Field(default_factory=dict)
    #: USD per million input and output tokens for models of a kind that the catalog does
    #: not price (JSON, e.g. ``{"openai_compatible": [0.5, 1.5]}``); see
    #: :mod:`modelyard.usage.pricing`. A caller with a USD budget is refused models that
    #: have no price at all.
    default_prices: dict[str, tuple[UsdPerMillion, UsdPerMillion]] = Field(default_factory=dict)
    #: Where training jobs run: worker processes of this server (``local``) or Celery
    #: workers over Redis (``celery``, scale-out: GPU machines take the queue).
    jobs_backend: Literal["local", "celery"] = "local"
    #: Seconds a CPU training job may take (from its worker's start) when the passes
    #: over the data are left to the recommendation: before training, the job's speed is
    #: measured and fewer passes are trained when the recommended ones would not fit
    #: (:mod:`modelyard.training.pace`). 0: the recommended passes are trained whatever
    #: they take. A job that sets ``epochs`` or ``max_steps`` trains them.
    training_cpu_time_target_seconds: float = Field(default=240.0, ge=0, le=7 * 86400)
    #: The Celery broker (and result backend); ``MODELYARD_REDIS_URL`` when unset.
    celery_broker_url: str | None = None
    #: The Celery queue training jobs are sent to.
    celery_queue: str = "modelyard-training"
    #: The OpenAI-compatible API the training advice asks (Groq's by default).
    advice_base_url: str = "https://api.groq.com/openai/v1"
    #: The model that writes the training advice.
    advice_model: str = "llama-3.3-70b-versatile"
    #: Seconds the advice may take before the rule-based advice is used instead.
    advice_timeout_seconds: float = Field(default=20.0, gt=0, le=300)
    # -- provider fine-tuning (issue 10) --
    #: Seconds between two status checks of unfinished provider fine-tuning jobs, done by
    #: a background task of each app process (0: no background checks; an explicit
    #: refresh still works).
    finetune_poll_seconds: float = Field(default=30.0, ge=0, le=86400)
    #: Seconds one call to a provider's files or fine-tuning API may take (uploads too).
    finetune_timeout_seconds: float = Field(default=300.0, gt=0, le=3600)
    #: The largest training file accepted, in bytes (OpenAI's own limit is 512 MB).
    finetune_max_file_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)

    @field_validator("local_model_dirs", "registration_special_use_domains", mode="before")
    @classmethod
    def _comma_separated_dirs(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("default_prices")
    @classmethod
    def _priced_kinds(
        cls, value: dict[str, tuple[Decimal, Decimal]]
    ) -> dict[str, tuple[Decimal, Decimal]]:
        return _known_kinds(value)

    @field_validator("provider_base_urls")
    @classmethod
    def _base_urls(cls, value: dict[str, str]) -> dict[str, str]:
        _known_kinds(value)
        bad = sorted(k for k, url in value.items() if not url.startswith(("http://", "https://")))
        if bad:
            raise ValueError(f"base URLs must start with http:// or https:// ({bad})")
        return {kind: url.rstrip("/") for kind, url in value.items()}

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: str) -> str:
        parse_networks(value)
        return ",".join(item.strip() for item in value.split(",") if item.strip())

    @property
    def trusted_proxy_networks(self) -> tuple[Network, ...]:
        """``trusted_proxies`` parsed (read each time: tests change settings in place)."""
        return parse_networks(self.trusted_proxies)

    @model_validator(mode="after")
    def _cooldown_cap_covers_the_first_period(self) -> Settings:
        if self.cooldown_max_seconds < self.cooldown_seconds:
            raise ValueError(
                f"MODELYARD_COOLDOWN_MAX_SECONDS ({self.cooldown_max_seconds:g}) is below "
                f"MODELYARD_COOLDOWN_SECONDS ({self.cooldown_seconds:g}); raise it or "
                "lower the first period"
            )
        return self

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.env == "development":
            return self
        candidates = {
            "MODELYARD_ADMIN_PASSWORD": self.admin_password,
            "MODELYARD_ENCRYPTION_KEYS": self.encryption_keys,
            "MODELYARD_METRICS_TOKEN": self.metrics_token,
        }
        for name, value in candidates.items():
            if value is not None and value.strip().lower() in PLACEHOLDER_SECRETS:
                raise ValueError(
                    f"{name} is a placeholder value; set a real secret "
                    f"(placeholders are only accepted when MODELYARD_ENV=development)"
                )
        return self

    @cached_property
    def sqlalchemy_url(self) -> str:
        """The async SQLAlchemy URL: ``DATABASE_URL`` or SQLite in the data directory."""
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'modelyard.db'}"

    @property
    def key_file(self) -> Path:
        """Where the generated encryption key lives when no keys come from the environment."""
        return self.data_dir / "encryption.key"

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")
