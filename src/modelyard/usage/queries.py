"""Usage aggregations (SQL ``GROUP BY``, SQLite and PostgreSQL) and the CSV export.

A :class:`UsageQuery` is a period of whole UTC days (``start`` to ``end``, both included)
and optionally one user. :func:`summarize` gives the totals and the breakdowns by day,
model (as the client named it), provider, API token and — when asked — user;
:func:`export_csv` streams the records themselves, one row per request. Costs are
:class:`~decimal.Decimal` in USD, shown with :data:`COST_DECIMALS` decimals everywhere
(:func:`format_cost`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnExpressionArgument,
    Date,
    Numeric,
    Select,
    case,
    cast,
    func,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from modelyard.db.models import ApiToken, UsageRecord, User
from modelyard.security.csv_cells import safe_cell
from modelyard.usage.completion import CLIENT_CLOSED_STATUS

__all__ = [
    "COST_DECIMALS",
    "CSV_COLUMNS",
    "Group",
    "Metrics",
    "UsageQuery",
    "UsageSummary",
    "day_bucket",
    "export_csv",
    "format_cost",
    "summarize",
]

#: Decimals of every cost shown (the column stores 8).
COST_DECIMALS = 8
_COST_QUANTUM = Decimal(1).scaleb(-COST_DECIMALS)
#: Rows fetched at a time while exporting.
EXPORT_PARTITION = 1000

CSV_COLUMNS = (
    "id",
    "created_at",
    "request_id",
    "user_id",
    "api_token_id",
    "api_token_name",
    "endpoint",
    "route",
    "provider",
    "model",
    "upstream_model",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "latency_ms",
    "attempts",
    "status",
    "error_code",
    "cache_hit",
    "estimated",
    "conversation_id",
)


def format_cost(value: Decimal | float | int | None) -> str:
    """A cost in USD as a fixed-point string with :data:`COST_DECIMALS` decimals."""
    amount = Decimal(str(value)) if value is not None else Decimal(0)
    return f"{amount.quantize(_COST_QUANTUM):f}"


@dataclass(frozen=True)
class UsageQuery:
    """Whole UTC days from ``start`` to ``end`` (both included); ``user_id`` or everyone."""

    start: date
    end: date
    user_id: int | None = None

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(), tzinfo=UTC)

    @property
    def until(self) -> datetime:
        """The first moment after the period."""
        return datetime.combine(self.end + timedelta(days=1), time(), tzinfo=UTC)

    def where(self, statement: Select[Any]) -> Select[Any]:
        """``statement`` limited to this period (and user)."""
        statement = statement.where(
            UsageRecord.created_at >= self.since, UsageRecord.created_at < self.until
        )
        if self.user_id is not None:
            statement = statement.where(UsageRecord.user_id == self.user_id)
        return statement


@dataclass(frozen=True)
class Metrics:
    """What a set of requests used."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    errors: int = 0
    cache_hits: int = 0


@dataclass(frozen=True)
class Group:
    """One row of a breakdown: what identifies it (``key``) and its metrics."""

    key: dict[str, Any]
    metrics: Metrics


@dataclass(frozen=True)
class UsageSummary:
    totals: Metrics
    by_day: list[Group]
    by_model: list[Group]
    by_provider: list[Group]
    by_token: list[Group]
    #: Only when asked for (staff).
    by_user: list[Group] | None = None


def day_bucket(column: ColumnExpressionArgument[datetime], dialect: str) -> ColumnElement[Any]:
    """The UTC day of a timestamp column, for ``GROUP BY`` (a date or an ISO string).

    SQLite stores UTC text, so ``date()`` suffices; PostgreSQL converts the ``timestamptz``
    to UTC first (the session's time zone must not matter). No bound parameter is used, so
    the expression is the same in ``SELECT`` and ``GROUP BY``.
    """
    if dialect == "sqlite":
        return func.date(column)
    return cast(func.timezone(literal_column("'UTC'"), column), Date)


def _metric_columns() -> tuple[ColumnElement[Any], ...]:
    def count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    return (
        func.count(UsageRecord.id).label("requests"),
        func.coalesce(func.sum(UsageRecord.input_tokens), 0).label("input_tokens"),
        func.coalesce(func.sum(UsageRecord.output_tokens), 0).label("output_tokens"),
        type_coerce(func.coalesce(func.sum(UsageRecord.cost_usd), 0), Numeric(18, 8)).label(
            "cost_usd"
        ),
        # A stopped answer (the client closed it: the web chat's Stop) is no error.
        count_if((UsageRecord.status >= 400) & (UsageRecord.status != CLIENT_CLOSED_STATUS)).label(
            "errors"
        ),
        count_if(UsageRecord.cache_hit.is_(True)).label("cache_hits"),
    )


_METRICS = ("requests", "input_tokens", "output_tokens", "cost_usd", "errors", "cache_hits")


def _metrics(row: Any) -> Metrics:
    values = row._mapping
    return Metrics(
        requests=int(values["requests"] or 0),
        input_tokens=int(values["input_tokens"] or 0),
        output_tokens=int(values["output_tokens"] or 0),
        cost_usd=Decimal(format_cost(values["cost_usd"])),
        errors=int(values["errors"] or 0),
        cache_hits=int(values["cache_hits"] or 0),
    )


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


async def _groups(
    session: AsyncSession,
    query: UsageQuery,
    keys: Sequence[ColumnElement[Any]],
    *,
    join: tuple[Any, ColumnElement[bool]] | None = None,
    by_day: bool = False,
) -> list[Group]:
    statement = select(*keys, *_metric_columns()).select_from(UsageRecord)
    if join is not None:
        statement = statement.outerjoin(*join)
    statement = query.where(statement).group_by(*keys)
    if by_day:
        statement = statement.order_by(keys[0])
    else:
        statement = statement.order_by(
            literal_column("cost_usd").desc(), literal_column("requests").desc()
        )
    rows = (await session.execute(statement)).all()
    groups = []
    for row in rows:
        key = {name: value for name, value in row._mapping.items() if name not in _METRICS}
        if by_day:
            key["day"] = _day(key["day"])
        groups.append(Group(key, _metrics(row)))
    return groups


def _dialect(session: AsyncSession) -> str:
    bind = session.bind
    if bind is None:
        raise RuntimeError("the session is not bound to an engine")
    return bind.dialect.name


async def summarize(
    session: AsyncSession, query: UsageQuery, *, by_user: bool = False
) -> UsageSummary:
    """Totals and breakdowns for ``query``; ``by_user`` adds the per-user breakdown."""
    totals_row = (
        await session.execute(query.where(select(*_metric_columns()).select_from(UsageRecord)))
    ).one()
    day = day_bucket(UsageRecord.created_at, _dialect(session)).label("day")
    token_join = (ApiToken, ApiToken.id == UsageRecord.api_token_id)
    return UsageSummary(
        totals=_metrics(totals_row),
        by_day=await _groups(session, query, [day], by_day=True),
        by_model=await _groups(session, query, [UsageRecord.model.label("model")]),
        by_provider=await _groups(session, query, [UsageRecord.provider.label("provider")]),
        by_token=await _groups(
            session,
            query,
            [
                UsageRecord.api_token_id.label("api_token_id"),
                ApiToken.name.label("name"),
                ApiToken.display_prefix.label("display_prefix"),
            ],
            join=token_join,
        ),
        by_user=(
            await _groups(
                session,
                query,
                [UsageRecord.user_id.label("user_id"), User.email.label("email")],
                join=(User, User.id == UsageRecord.user_id),
            )
            if by_user
            else None
        ),
    )


def _csv_value(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name == "cost_usd":
        return format_cost(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, str):
        return safe_cell(value)  # clients choose model names: never let one run as a formula
    return str(value)


def _export_statement(query: UsageQuery) -> Select[Any]:
    columns = [
        getattr(UsageRecord, name) if name != "api_token_name" else ApiToken.name.label(name)
        for name in CSV_COLUMNS
    ]
    statement = (
        select(*columns)
        .select_from(UsageRecord)
        .outerjoin(ApiToken, ApiToken.id == UsageRecord.api_token_id)
    )
    return query.where(statement).order_by(UsageRecord.created_at, UsageRecord.id)


def _csv_text(rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow(
            [_csv_value(name, value) for name, value in zip(CSV_COLUMNS, row, strict=True)]
        )
    return buffer.getvalue()


async def export_csv(connection: AsyncConnection, query: UsageQuery) -> AsyncIterator[str]:
    """The records of ``query`` as CSV text, header first, oldest first, in pieces."""
    yield ",".join(CSV_COLUMNS) + "\r\n"
    result = await connection.stream(_export_statement(query))
    async for partition in result.partitions(EXPORT_PARTITION):
        yield _csv_text(partition)
