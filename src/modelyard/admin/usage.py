"""A read-only admin view of the usage records: newest first, searchable."""

from __future__ import annotations

from modelyard.admin.base import StaffView
from modelyard.admin.display import usd_column
from modelyard.db.models import UsageRecord

__all__ = ["UsageRecordAdmin"]


class UsageRecordAdmin(StaffView, model=UsageRecord):
    """One row per gateway request; nothing here can be created, changed or deleted."""

    name = "Usage record"
    name_plural = "Usage"
    icon = "fa-solid fa-chart-line"
    can_create = False
    can_edit = False
    can_delete = False
    can_export = False
    page_size = 50
    column_list = [
        UsageRecord.id,
        UsageRecord.created_at,
        UsageRecord.user_id,
        UsageRecord.endpoint,
        UsageRecord.model,
        UsageRecord.provider,
        UsageRecord.upstream_model,
        UsageRecord.input_tokens,
        UsageRecord.output_tokens,
        UsageRecord.cost_usd,
        UsageRecord.status,
        UsageRecord.latency_ms,
    ]
    column_details_list = [
        *column_list,
        UsageRecord.request_id,
        UsageRecord.api_token_id,
        UsageRecord.route,
        UsageRecord.attempts,
        UsageRecord.error_code,
        UsageRecord.cache_hit,
        UsageRecord.estimated,
        UsageRecord.conversation_id,
    ]
    column_searchable_list = [
        UsageRecord.model,
        UsageRecord.provider,
        UsageRecord.upstream_model,
        UsageRecord.request_id,
    ]
    column_sortable_list = [
        UsageRecord.id,
        UsageRecord.created_at,
        UsageRecord.cost_usd,
        UsageRecord.latency_ms,
    ]
    column_default_sort = [("id", True)]
    column_formatters = {UsageRecord.cost_usd: usd_column}
    column_formatters_detail = {UsageRecord.cost_usd: usd_column}
