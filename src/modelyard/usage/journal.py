"""The usage journal: every usage event on local disk before the batch writer commits it.

Each process appends to its own segment file, ``<directory>/<pid>-<start ns>.jsonl``: one
JSON line per event, written with a single ``os.write`` on an ``O_APPEND`` descriptor (no
Python buffering), so the line is in the operating system's hands the moment
:meth:`UsageJournal.append` returns — a process killed with ``kill -9`` loses nothing.
What a machine crash (power, kernel) can lose depends on ``fsync``:

* ``never``: whatever the kernel had not yet written back (typically up to ~30 s);
* ``batch``: the batch writer syncs the current segment before it writes, at most once a
  flush interval however many batches a busy interval writes, so at most about two flush
  intervals;
* ``always``: nothing (one ``fsync`` per event, on the request path).

The writer reports each commit with :meth:`UsageJournal.committed`; a segment is deleted
once every event in it is committed and it is no longer written to (segments rotate at
``segment_bytes``; the last one is deleted at a clean shutdown).

A process holds an exclusive ``flock`` on its segments for as long as it lives (the kernel
drops it when the process dies, however it dies). :func:`claim_orphans` therefore finds
exactly the segments of dead processes — every segment at the start of a single server;
with several workers, those of a worker that died — and locks each for the one process
that replays it. A replay inserts by the events' unique ``event_id`` and skips ids already
there, so a segment replayed twice (a crash during a replay) still counts each event once.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal

import orjson

from modelyard.config import Settings
from modelyard.usage.events import UsageEvent

__all__ = [
    "DEFAULT_SEGMENT_BYTES",
    "FsyncMode",
    "Orphan",
    "UsageJournal",
    "claim_orphans",
    "decode",
    "encode",
    "usage_journal",
]

logger = logging.getLogger("modelyard.usage")

FsyncMode = Literal["never", "batch", "always"]

#: A segment is closed (and a new one begun) once it holds this many bytes.
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
SUFFIX = ".jsonl"
#: A segment being created (locked, then renamed to its ``.jsonl`` name).
PARTIAL_SUFFIX = ".partial"


def _decimal_as_text(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode(event: UsageEvent) -> bytes:
    """The event as one JSON line (orjson: about 1 µs, an eighth of the standard
    library's; the cost is a decimal string, the time ISO 8601)."""
    return orjson.dumps(event, default=_decimal_as_text, option=orjson.OPT_APPEND_NEWLINE)


def decode(line: bytes) -> UsageEvent:
    """The event of one journal line; raises ``ValueError`` for a line that is none."""
    values = orjson.loads(line)
    if not isinstance(values, dict):
        raise ValueError("not a JSON object")
    values["cost_usd"] = Decimal(values["cost_usd"])
    values["created_at"] = datetime.fromisoformat(values["created_at"])
    try:
        return UsageEvent(**values)
    except TypeError as error:
        raise ValueError(str(error)) from None


def _lock(fd: int) -> bool:
    """Take the exclusive lock on ``fd`` without waiting; whether it was free."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@dataclass
class _Segment:
    path: Path
    fd: int
    size: int = 0
    #: Events appended and not yet committed.
    uncommitted: int = 0
    #: Whether it is still appended to.
    active: bool = True
    #: Events the writer does not have in memory (its queue was full): the segment is
    #: replayed from disk once closed instead of deleted.
    spilled: int = 0


@dataclass
class Orphan:
    """A segment left by a dead process, locked by this one until :meth:`release`."""

    path: Path
    fd: int
    events: list[UsageEvent] = field(default_factory=list)
    #: Lines that were no event: the torn last line of a crash, or damage.
    skipped: int = 0

    def release(self, *, delete: bool) -> None:
        """Delete the segment (its events are committed) or leave it; then unlock it."""
        if delete:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        os.close(self.fd)


def _read_events(path: Path, data: bytes) -> tuple[list[UsageEvent], int]:
    lines = data.split(b"\n")
    torn = lines.pop()  # what follows the last newline: b"" unless a write was cut short
    events, skipped = [], 1 if torn else 0
    for number, line in enumerate(lines, 1):
        if not line:
            continue
        try:
            events.append(decode(line))
        except (ValueError, KeyError, TypeError) as error:
            skipped += 1
            logger.warning("Usage journal %s line %d is no event (%s)", path.name, number, error)
    return events, skipped


def _claim(path: Path) -> Orphan | None:
    """``path`` locked for this process when no live process holds it, else ``None``."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None  # replayed and deleted by another process meanwhile
    try:
        if not _lock(fd) or os.fstat(fd).st_ino != os.stat(path).st_ino:
            os.close(fd)
            return None
    except FileNotFoundError:
        os.close(fd)
        return None
    with os.fdopen(os.dup(fd), "rb") as file:
        data = file.read()
    orphan = Orphan(path, fd)
    orphan.events, orphan.skipped = _read_events(path, data)
    return orphan


def _started(path: Path) -> int:
    """When the segment was begun (its name's second part), for the oldest-first order."""
    _pid, _, started = path.stem.partition("-")
    return int(started) if started.isdigit() else 0


def claim_orphans(directory: Path) -> Iterator[Orphan]:
    """The segments in ``directory`` that no live process holds, oldest first, each read
    and locked; release each (deleting it once its events are committed)."""
    if not directory.is_dir():
        return
    for partial in directory.glob(f"*{PARTIAL_SUFFIX}"):
        orphan = _claim(partial)  # a process died while creating it: it holds nothing
        if orphan is not None:
            orphan.release(delete=True)
    for path in sorted(directory.glob(f"*{SUFFIX}"), key=_started):
        orphan = _claim(path)
        if orphan is not None:
            yield orphan


class UsageJournal:
    """This process's segments in ``directory``; see the module's docstring."""

    def __init__(
        self,
        directory: Path,
        *,
        fsync: FsyncMode = "batch",
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    ) -> None:
        if segment_bytes < 1:
            raise ValueError("segment_bytes must be positive")
        self.directory = directory
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self._segments: deque[_Segment] = deque()
        self._current: _Segment | None = None

    @property
    def depth(self) -> int:
        """Events appended and not yet committed."""
        return sum(segment.uncommitted + segment.spilled for segment in self._segments)

    @property
    def segments(self) -> list[Path]:
        """The files of this process's segments (oldest first)."""
        return [segment.path for segment in self._segments]

    def _open_segment(self) -> _Segment:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{os.getpid()}-{time.time_ns()}"
        partial = self.directory / f"{name}{PARTIAL_SUFFIX}"
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        fd = os.open(partial, flags, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # a new file: nobody else holds it
        path = partial.with_suffix(SUFFIX)
        os.rename(partial, path)  # only now may others see it (and find it locked)
        segment = _Segment(path, fd)
        self._segments.append(segment)
        return segment

    def append(self, event: UsageEvent) -> None:
        """Write ``event`` to the current segment (one ``write``); raises ``OSError``."""
        line = encode(event)
        segment = self._current or self._open_segment()
        self._current = segment
        written = os.write(segment.fd, line)
        if written != len(line):  # a full disk: no torn line is left for what follows
            os.write(segment.fd, b"\n")
            raise OSError(f"the usage journal is full ({written} of {len(line)} bytes)")
        segment.size += written
        segment.uncommitted += 1
        if self.fsync == "always":
            os.fsync(segment.fd)
        if segment.size >= self.segment_bytes:
            self._close_current()

    def spill(self) -> None:
        """Mark the last appended event as one the writer holds no copy of: its segment
        is replayed from disk once the writer has room (see :meth:`closed_spills`)."""
        segment = self._current
        if segment is None:
            return
        segment.uncommitted -= 1
        segment.spilled += 1

    @property
    def has_spills(self) -> bool:
        """Whether a segment holds events the writer has no copy of."""
        return any(segment.spilled for segment in self._segments)

    def _close_current(self) -> None:
        segment, self._current = self._current, None
        if segment is None:
            return
        segment.active = False
        if self.fsync != "never":
            os.fsync(segment.fd)
        self._forget_done()

    def committed(self, count: int) -> None:
        """``count`` more events (the oldest uncommitted, in order) are in the database."""
        for segment in self._segments:
            if count <= 0:
                break
            taken = min(count, segment.uncommitted)
            segment.uncommitted -= taken
            count -= taken
        self._forget_done()

    def _forget_done(self) -> None:
        """Delete the closed segments all of whose events are committed."""
        while self._segments:
            segment = self._segments[0]
            if segment.active or segment.uncommitted or segment.spilled:
                return
            self._segments.popleft()
            with contextlib.suppress(FileNotFoundError):
                segment.path.unlink()
            os.close(segment.fd)

    def closed_spills(self) -> list[Orphan]:
        """The closed segments holding spilled events whose other events are committed,
        read for a replay (and no longer this journal's); the current segment is closed
        first when it holds spilled events."""
        if self._current is not None and self._current.spilled:
            self._close_current()
        found = []
        while self._segments:
            segment = self._segments[0]
            if segment.active or segment.uncommitted or not segment.spilled:
                break
            self._segments.popleft()
            with open(segment.path, "rb") as file:
                events, skipped = _read_events(segment.path, file.read())
            found.append(Orphan(segment.path, segment.fd, events, skipped))
        return found

    def fileno(self) -> int | None:
        """A duplicate of the current segment's descriptor (for an fsync off the event
        loop; the caller closes it), or ``None``."""
        return None if self._current is None else os.dup(self._current.fd)

    def close(self) -> None:
        """Close the segments; those all of whose events are committed are deleted."""
        self._close_current()
        while self._segments:
            segment = self._segments.popleft()
            if not segment.uncommitted and not segment.spilled:
                with contextlib.suppress(FileNotFoundError):
                    segment.path.unlink()
            os.close(segment.fd)


def usage_journal(settings: Settings) -> UsageJournal | None:
    """The journal ``settings`` ask for (``<data_dir>/usage-journal``), or ``None``."""
    if not settings.usage_journal:
        return None
    return UsageJournal(settings.data_dir / "usage-journal", fsync=settings.usage_journal_fsync)
