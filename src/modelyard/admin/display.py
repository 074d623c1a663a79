"""How the admin shows values to people: column labels, timestamps, money and counts.

Every admin view labels its columns from :data:`LABELS` (a view's own ``column_labels``
come first; a column named nowhere is spelled out from its name), and shows timestamps
as ``2026-12-03 09:14 UTC``: in UTC, to the minute.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup
from sqladmin.formatters import BASE_FORMATTERS

from modelyard.web.rendering import format_usd

__all__ = [
    "LABELS",
    "TYPE_FORMATTERS",
    "format_count",
    "format_timestamp",
    "format_usd",
    "label_for",
    "usd_column",
]

#: Column names as people read them, shared by every view.
LABELS: dict[str, str] = {
    "id": "ID",
    "created_at": "Created",
    "updated_at": "Updated",
    "created_by": "Created by",
    "created_by_id": "Created by (user ID)",
    "updated_by": "Updated by",
    "user_id": "User ID",
    "api_token_id": "API token ID",
    "actor_email": "By",
    "entity_type": "What",
    "entity_id": "Item ID",
    "entity_name": "Item",
    "changed_fields": "Fields changed",
    "email": "E-mail",
    "is_staff": "Staff",
    "is_active": "Active",
    "is_default": "Default",
    "has_subscription": "Subscription",
    "trial_ends_at": "Trial ends",
    "provider_kind": "Provider kind",
    "model_id": "Model ID",
    "input_price_per_million": "Input price / 1M tokens",
    "output_price_per_million": "Output price / 1M tokens",
    "context_length": "Context length (tokens)",
    "input_tokens": "Input tokens",
    "output_tokens": "Output tokens",
    "cost_usd": "Cost (USD)",
    "status": "HTTP status",
    "latency_ms": "Latency (ms)",
    "request_id": "Request ID",
    "upstream_model": "Answered by model",
    "error_code": "Error code",
    "cache_hit": "From cache",
    "estimated": "Tokens estimated",
    "conversation_id": "Conversation ID",
    "cache_ttl_seconds": "Cache for (seconds)",
    "unsupported_params": "Unsupported parameters",
    "managed_by_file": "Managed by",
    "budget_usd": "Budget (USD)",
    "size_bytes": "Size (bytes)",
    "num_examples": "Examples",
    "sha256": "SHA-256",
    "remote_id": "Provider's file ID",
    "remote_job_id": "Provider's job ID",
    "remote_status": "Provider status",
    "provider_id": "Provider ID",
    "training_file_id": "Training file ID",
    "validation_file_id": "Validation file ID",
    "job_command_id": "Job (command ID)",
    "command_id": "Command",
    "hub_push": "Push to the Hub",
    "compute_type": "Compute",
    "output_name": "Output name",
    "started_at": "Started",
    "finished_at": "Finished",
    "ran_at": "Ran",
    "recorded_at": "Recorded",
    "synced_at": "Synced",
    "sync_error": "Sync error",
    "fine_tuned_model": "Fine-tuned model",
    "fine_tuned_model_id": "Fine-tuned model ID",
    "last_test_status": "Last test",
    "last_tested_at": "Tested at",
    "last_test_message": "Test message",
}

#: Words spelled in capitals (or otherwise) when a label is made from a column's name.
_WORDS = {"id": "ID", "api": "API", "url": "URL", "usd": "(USD)", "ms": "(ms)", "http": "HTTP"}


def label_for(name: str) -> str:
    """The label of column ``name``: from :data:`LABELS`, else its words spelled out."""
    if name in LABELS:
        return LABELS[name]
    words = [_WORDS.get(word, word) for word in name.split(".")[-1].split("_") if word]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def format_timestamp(value: datetime | None) -> str:
    """``2026-12-03 09:14 UTC``; a naive value is taken as UTC already."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def format_count(value: int | None) -> str:
    """A count with thousands separators: ``12,345``."""
    return f"{value or 0:,}"


def usd_column(model: Any, attribute: Any) -> str:
    """A column formatter for an amount in USD (blank stays blank)."""
    value = getattr(model, str(attribute))
    return "" if value is None else format_usd(value)


def _yes_no(value: bool) -> Markup:
    """SQLAdmin's tick and cross, with words for screen readers."""
    icon = "fa-check text-success" if value else "fa-times text-danger"
    word = "Yes" if value else "No"
    return Markup(
        "<i class='fa {}' aria-hidden='true'></i><span class='visually-hidden'>{}</span>"
    ).format(icon, word)


#: SQLAdmin's formatters by value type, with the admin's timestamps and booleans.
TYPE_FORMATTERS: dict[Any, Any] = {
    **BASE_FORMATTERS,
    bool: _yes_no,
    datetime: format_timestamp,
}
