"""The batching usage writer: off the request path, batched, timed, retried, bounded."""

from __future__ import annotations

import asyncio
import inspect
import logging
from decimal import Decimal
from typing import Any

import pytest

from modelyard.db.engine import Database
from modelyard.usage.recorder import UsageRecorder
from tests.polling import eventually
from tests.usage.conftest import usage_rows
from tests.usage.recording import counting_commits, rename_table, usage_event


async def count_rows(database: Database) -> int:
    return len(await usage_rows(database))


async def test_record_queues_without_touching_the_database(database: Database) -> None:
    recorder = UsageRecorder(database, flush_interval=60)
    assert not inspect.iscoroutinefunction(recorder.record)
    with counting_commits(database) as commits:
        for _ in range(3):
            recorder.record(usage_event())
    assert commits == []
    assert recorder.pending == 3 and recorder.written == 0
    assert await count_rows(database) == 0
    await recorder.flush()
    assert recorder.pending == 0 and recorder.written == 3
    rows = await usage_rows(database)
    assert len(rows) == 3
    assert rows[0].cost_usd == Decimal("0.00000345") and rows[0].output_tokens == 5
    assert rows[0].created_at.tzinfo is not None


async def test_a_full_batch_is_written_before_the_timer_one_transaction_per_batch(
    database: Database,
) -> None:
    recorder = UsageRecorder(database, flush_interval=3600, batch_size=10)
    await recorder.start()
    try:
        with counting_commits(database) as commits:
            for _ in range(25):
                recorder.record(usage_event())
            await eventually(lambda: recorder.written == 25)
        assert len(commits) == 3  # 10 + 10 + 5, each batch one transaction
        assert await count_rows(database) == 25
        # Fewer than a batch waits for the timer (an hour here).
        recorder.record(usage_event())
        await asyncio.sleep(0.2)
        assert recorder.pending == 1 and await count_rows(database) == 25
    finally:
        await recorder.aclose()
    assert await count_rows(database) == 26


async def test_the_timer_writes_small_batches(database: Database) -> None:
    recorder = UsageRecorder(database, flush_interval=0.05)
    await recorder.start()
    try:
        for _ in range(3):
            recorder.record(usage_event())
        await eventually(lambda: recorder.written == 3, timeout=3)
        assert await count_rows(database) == 3
        recorder.record(usage_event())
        await eventually(lambda: recorder.written == 4, timeout=3)
    finally:
        await recorder.aclose()
    assert not recorder.running


async def test_aclose_writes_everything_queued(database: Database) -> None:
    recorder = UsageRecorder(database, flush_interval=3600, batch_size=4)
    await recorder.start()
    for _ in range(3):
        recorder.record(usage_event())
    await asyncio.sleep(0.05)
    assert await count_rows(database) == 0  # below the batch size, the timer is an hour
    await recorder.aclose()
    assert recorder.pending == 0 and not recorder.running
    assert await count_rows(database) == 3


async def test_a_failed_write_is_retried_without_loss_or_duplicates(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = UsageRecorder(database, flush_interval=0.05, batch_size=3)
    sent = [usage_event() for _ in range(7)]
    await rename_table(database, "usage_records", "usage_records_away")
    try:
        await recorder.start()
        with caplog.at_level(logging.WARNING, logger="modelyard.usage"):
            for event in sent:
                recorder.record(event)
            await eventually(lambda: recorder.failed_writes >= 2)
        assert recorder.written == 0 and recorder.pending == 7
        failure = next(r for r in caplog.records if "stay queued" in r.getMessage())
        assert "INSERT" not in failure.getMessage()  # no statement, no parameters
    finally:
        await rename_table(database, "usage_records_away", "usage_records")
    await eventually(lambda: recorder.written == 7)
    await recorder.aclose()
    rows = await usage_rows(database)
    assert sorted(r.request_id or "" for r in rows) == sorted(e.request_id or "" for e in sent)


async def test_flush_raises_and_keeps_the_events_while_the_database_fails(
    database: Database,
) -> None:
    recorder = UsageRecorder(database, flush_interval=60)
    recorder.record(usage_event())
    recorder.record(usage_event())
    await rename_table(database, "usage_records", "usage_records_away")
    try:
        with pytest.raises(Exception):  # noqa: B017 - the driver's own error class
            await recorder.flush()
        assert recorder.pending == 2 and recorder.failed_writes == 1
    finally:
        await rename_table(database, "usage_records_away", "usage_records")
    await recorder.flush()
    assert recorder.pending == 0 and await count_rows(database) == 2


async def test_the_queue_is_bounded_and_drops_are_counted_and_logged(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = UsageRecorder(database, flush_interval=60, batch_size=100, max_pending=10)
    with caplog.at_level(logging.ERROR, logger="modelyard.usage"):
        kept = [usage_event() for _ in range(10)]
        for event in [*kept, *(usage_event() for _ in range(5))]:
            recorder.record(event)
    assert recorder.pending == 10 and recorder.dropped == 5
    drops = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(drops) == 1  # logged the first time, not once per event
    await recorder.aclose()
    rows = await usage_rows(database)
    assert [r.request_id for r in rows] == [e.request_id for e in kept]


def test_invalid_settings_are_refused(database: Database) -> None:
    with pytest.raises(ValueError):
        UsageRecorder(database, max_pending=0)


async def test_the_recorder_counters_are_on_the_metrics_page(
    app: Any, client: Any, database: Database
) -> None:
    recorder = app.state.modelyard.usage
    recorder.record(usage_event())
    recorder.record(usage_event())
    page = (await client.get("/metrics")).text
    assert "modelyard_usage_records_pending 2.0" in page
    await recorder.flush()
    page = (await client.get("/metrics")).text
    assert "modelyard_usage_records_written_total 2.0" in page
    assert "modelyard_usage_records_pending 0.0" in page
    assert "modelyard_usage_records_dropped_total 0.0" in page


async def test_a_batch_keeps_every_value_and_skips_event_ids_already_written(
    database: Database,
) -> None:
    """Each column round-trips (NULLs, decimals, times, booleans); an event id already in
    the table, or twice in one batch, is written once (on PostgreSQL the batch is one
    statement over column arrays)."""
    recorder = UsageRecorder(database, flush_interval=60)
    first = usage_event(event_id="e-first")
    recorder.record(first)
    await recorder.flush()
    varied = usage_event(
        event_id="e-varied",
        provider=None,
        route="team-fast",
        cost_usd=Decimal("12.34567891"),
        cache_hit=True,
        estimated=True,
        error_code="upstream_timeout",
        status=504,
        api_token_id=7,
        user_id=None,
    )
    for event in (usage_event(event_id="e-first"), varied, usage_event(event_id="e-twice")):
        recorder.record(event)
    recorder.record(usage_event(event_id="e-twice"))
    await recorder.flush()
    rows = {row.event_id: row for row in await usage_rows(database)}
    assert sorted(rows) == ["e-first", "e-twice", "e-varied"]
    assert rows["e-first"].request_id == first.request_id  # the first write stands
    written = rows["e-varied"]
    for name in ("provider", "route", "cost_usd", "cache_hit", "estimated", "error_code"):
        assert getattr(written, name) == getattr(varied, name), name
    assert (written.status, written.api_token_id, written.user_id) == (504, 7, None)
    assert written.created_at == varied.created_at
