"""The usage journal: every record on disk before it is committed, replayed exactly once
after a crash (real processes killed with SIGKILL), torn lines ignored, segments rotated
and deleted once committed, live processes' segments left alone."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.usage.journal import UsageJournal, claim_orphans, decode, encode, usage_journal
from modelyard.usage.recorder import UsageRecorder
from tests.polling import eventually
from tests.usage.conftest import usage_rows
from tests.usage.recording import counting_commits, rename_table, usage_event

REPO = Path(__file__).resolve().parents[2]

#: A process that journals ``count`` events (request ids ``{prefix}{n}``), then prints
#: "ready" and either is killed (``kill``) or waits for stdin to close.
_WRITER = """
import os, signal, sys
from decimal import Decimal
from pathlib import Path
from modelyard.usage.events import UsageEvent
from modelyard.usage.journal import UsageJournal
directory, count, prefix, action = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
journal = UsageJournal(directory, fsync="never")
for n in range(count):
    journal.append(UsageEvent(endpoint="chat", model="gpt-4o-mini", status=200,
                              request_id=f"{prefix}{n}", cost_usd=Decimal("0.25")))
print("ready", flush=True)
if action == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
sys.stdin.read()
"""


def _writer(directory: Path, count: int, prefix: str, action: str) -> subprocess.Popen[str]:
    script = textwrap.dedent(_WRITER)
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(directory), str(count), prefix, action],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def _crashed_writer(directory: Path, count: int, prefix: str = "crashed-") -> None:
    process = _writer(directory, count, prefix, "kill")
    assert process.wait(30) == -signal.SIGKILL


async def _request_ids(database: Database) -> list[str]:
    return [str(row.request_id) for row in await usage_rows(database)]


def test_an_event_survives_its_journal_line() -> None:
    event = usage_event(cache_hit=True, estimated=True, conversation_id=7)
    line = encode(event)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode(line) == event


async def test_a_killed_process_s_records_are_written_once_at_start(
    database: Database, tmp_path: Path
) -> None:
    directory = tmp_path / "journal"
    _crashed_writer(directory, 250)
    assert len(list(directory.glob("*.jsonl"))) == 1
    saved = tmp_path / "copy.jsonl"
    shutil.copy(next(directory.glob("*.jsonl")), saved)

    recorder = UsageRecorder(database, flush_interval=60, journal=UsageJournal(directory))
    await recorder.start()  # the replay is done when start returns
    assert sorted(await _request_ids(database)) == sorted(f"crashed-{n}" for n in range(250))
    assert recorder.replayed == 250
    assert list(directory.glob("*.jsonl")) == []  # replayed segments are deleted
    await recorder.aclose()

    # The same segment again (a crash in the middle of a replay): nothing twice.
    shutil.copy(saved, directory / saved.name)
    again = UsageRecorder(database, flush_interval=60, journal=UsageJournal(directory))
    await again.start()
    await again.aclose()
    ids = await _request_ids(database)
    assert len(ids) == 250 and len(set(ids)) == 250
    assert list(directory.iterdir()) == []


async def test_a_torn_last_line_is_ignored(database: Database, tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    _crashed_writer(directory, 3)
    segment = next(directory.glob("*.jsonl"))
    whole = encode(usage_event(request_id="torn"))
    with segment.open("ab") as file:
        file.write(whole[: len(whole) // 2])  # the write a crash cut short
    orphans = list(claim_orphans(directory))
    assert [len(o.events) for o in orphans] == [3] and orphans[0].skipped == 1
    for orphan in orphans:
        orphan.release(delete=False)

    recorder = UsageRecorder(database, flush_interval=60, journal=UsageJournal(directory))
    await recorder.start()
    await recorder.aclose()
    assert sorted(await _request_ids(database)) == ["crashed-0", "crashed-1", "crashed-2"]


async def test_a_live_process_s_segment_is_left_alone(database: Database, tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    _crashed_writer(directory, 2, "dead-")
    alive = _writer(directory, 4, "alive-", "wait")
    try:
        recorder = UsageRecorder(database, flush_interval=60, journal=UsageJournal(directory))
        await recorder.start()
        assert sorted(await _request_ids(database)) == ["dead-0", "dead-1"]
        assert len(list(directory.glob("*.jsonl"))) == 1  # the live one's
        # This process's own segment is no orphan either, while it lives.
        recorder.record(usage_event(request_id="mine"))
        assert [len(o.events) for o in claim_orphans(directory)] == []
        alive.kill()
        alive.wait(30)
        await recorder.replay_journal()  # as the writer does every ORPHAN_SCAN_SECONDS
        assert sorted(await _request_ids(database)) == [
            *(f"alive-{n}" for n in range(4)),
            "dead-0",
            "dead-1",
        ]
        await recorder.aclose()
    finally:
        alive.kill()
        alive.wait(30)
    assert sorted(await _request_ids(database))[-1] == "mine"
    assert list(directory.iterdir()) == []  # a clean shutdown leaves no segment


async def test_segments_rotate_and_are_deleted_once_committed(
    database: Database, tmp_path: Path
) -> None:
    directory = tmp_path / "journal"
    journal = UsageJournal(directory, segment_bytes=2_000)
    recorder = UsageRecorder(database, flush_interval=60, batch_size=10, journal=journal)
    for _ in range(40):
        recorder.record(usage_event())
    segments = sorted(directory.glob("*.jsonl"))
    assert len(segments) >= 4 and journal.depth == 40
    lines = [json.loads(line) for path in segments for line in path.read_bytes().splitlines()]
    assert [line["request_id"] for line in lines] == [e.request_id for e, _ in recorder._queue]
    await recorder.flush()
    assert journal.depth == 0
    # Only the current segment is left, if any (it is still appended to).
    assert sorted(directory.glob("*.jsonl")) == journal.segments and len(journal.segments) <= 1
    await recorder.aclose()
    assert list(directory.iterdir()) == []
    assert len(await usage_rows(database)) == 40


async def test_a_full_queue_keeps_records_in_the_journal(
    database: Database, tmp_path: Path
) -> None:
    directory = tmp_path / "journal"
    journal = UsageJournal(directory)
    recorder = UsageRecorder(
        database, flush_interval=0.05, batch_size=5, max_pending=10, journal=journal
    )
    events = [usage_event() for _ in range(35)]
    for event in events:
        recorder.record(event)  # no writer yet: 25 find the queue full
    assert recorder.dropped == 0 and recorder.spilled == 25 and journal.depth == 35
    await recorder.start()

    async def all_written() -> bool:
        return len(await usage_rows(database)) == 35

    await eventually(all_written)
    await recorder.aclose()
    assert sorted(await _request_ids(database)) == sorted(str(e.request_id) for e in events)
    assert list(directory.iterdir()) == []


async def test_without_a_journal_the_full_queue_still_drops(database: Database) -> None:
    recorder = UsageRecorder(database, flush_interval=60, max_pending=2)
    for _ in range(3):
        recorder.record(usage_event())
    assert (recorder.dropped, recorder.spilled) == (1, 0)
    await recorder.aclose()


async def test_the_journal_depth_and_oldest_age_are_on_the_metrics_page(
    app: Any, client: Any, database: Database
) -> None:
    recorder: UsageRecorder = app.state.modelyard.usage
    assert recorder.journal is not None  # on by default
    recorder.record(usage_event())
    recorder.record(usage_event())
    page = (await client.get("/metrics")).text
    assert "modelyard_usage_journal_depth 2.0" in page
    age = next(
        float(line.split()[1])
        for line in page.splitlines()
        if line.startswith("modelyard_usage_oldest_pending_seconds ")
    )
    assert 0 <= age < 60
    await recorder.flush()
    page = (await client.get("/metrics")).text
    assert "modelyard_usage_journal_depth 0.0" in page
    assert "modelyard_usage_oldest_pending_seconds 0.0" in page


def test_a_segment_file_is_private(tmp_path: Path) -> None:
    journal = UsageJournal(tmp_path / "journal")
    journal.append(usage_event())
    (segment,) = journal.segments
    assert segment.stat().st_mode & 0o777 == 0o600
    assert segment.name.startswith(f"{os.getpid()}-")
    journal.close()


async def test_a_replay_the_database_refuses_is_kept_and_tried_again(
    database: Database, tmp_path: Path
) -> None:
    directory = tmp_path / "journal"
    _crashed_writer(directory, 5)
    recorder = UsageRecorder(database, flush_interval=60, journal=UsageJournal(directory))
    await rename_table(database, "usage_records", "usage_records_away")
    try:
        await recorder.start()  # starts all the same: the writer tries again later
        assert recorder.running and recorder.replayed == 0 and recorder.failed_writes == 1
        assert len(list(directory.glob("*.jsonl"))) == 1
    finally:
        await rename_table(database, "usage_records_away", "usage_records")
    await recorder.replay_journal()
    assert recorder.replayed == 5 and len(await usage_rows(database)) == 5
    await recorder.aclose()
    assert list(directory.iterdir()) == []


async def test_records_a_shutdown_cannot_write_wait_in_the_journal(
    database: Database, tmp_path: Path
) -> None:
    directory = tmp_path / "journal"
    recorder = UsageRecorder(database, flush_interval=0.01, journal=UsageJournal(directory))
    sent = [usage_event() for _ in range(3)]
    for event in sent:
        recorder.record(event)
    await rename_table(database, "usage_records", "usage_records_away")
    try:
        await recorder.aclose()  # gives up after CLOSE_ATTEMPTS
    finally:
        await rename_table(database, "usage_records_away", "usage_records")
    assert len(list(directory.glob("*.jsonl"))) == 1
    restarted = UsageRecorder(database, flush_interval=60, journal=UsageJournal(directory))
    await restarted.start()
    await restarted.aclose()
    assert sorted(await _request_ids(database)) == sorted(str(e.request_id) for e in sent)


async def test_a_backlog_is_written_in_bigger_batches(database: Database) -> None:
    recorder = UsageRecorder(database, flush_interval=60, batch_size=10, max_batch_size=100)
    for _ in range(800):
        recorder.record(usage_event())
    with counting_commits(database) as commits:
        await recorder.flush()
    # 800 → 100, 100, … while the backlog is big; never more than max_batch_size.
    assert len(commits) < 800 // 10 and recorder.pending == 0
    assert len(await usage_rows(database)) == 800


def test_the_settings_choose_the_journal(settings: Settings) -> None:
    journal = usage_journal(settings)
    assert journal is not None and journal.fsync == "batch"
    assert journal.directory == settings.data_dir / "usage-journal"
    fsynced = usage_journal(settings.model_copy(update={"usage_journal_fsync": "always"}))
    assert fsynced is not None and fsynced.fsync == "always"
    assert usage_journal(settings.model_copy(update={"usage_journal": False})) is None


def test_every_event_fsynced_with_always(tmp_path: Path) -> None:
    journal = UsageJournal(tmp_path / "journal", fsync="always", segment_bytes=1)
    journal.append(usage_event())  # fills the segment at once: closed and a new one next
    journal.append(usage_event())
    assert len(journal.segments) == 2 and journal.depth == 2
    journal.committed(2)
    assert journal.depth == 0 and journal.segments == []
    journal.close()


async def test_batch_fsync_runs_once_a_flush_interval(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy interval writes many batches but syncs the journal once (each sync still
    precedes the write that follows it)."""
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    journal = UsageJournal(tmp_path / "journal", fsync="batch")
    recorder = UsageRecorder(database, flush_interval=2.0, batch_size=5, journal=journal)
    for _ in range(4):
        for _ in range(20):
            recorder.record(usage_event())
        await recorder.flush()
    assert len(synced) == 1
    await asyncio.sleep(2.1)
    recorder.record(usage_event())
    await recorder.flush()
    assert len(synced) == 2
    assert len(await usage_rows(database)) == 81 and journal.depth == 0
    journal.close()
