"""Reading uploaded files within bounds, before anything in them becomes Python objects.

The one home of the limits every reader of an upload keeps (training datasets and
provider fine-tuning files):

* lines are read as a stream, each at most :data:`MAX_LINE_BYTES`, and counted against
  :attr:`UploadLimits.max_rows` as they come;
* JSON is at most :data:`MAX_JSON_DEPTH` levels deep (checked on the text, before it is
  parsed) and holds no unpaired UTF-16 surrogate (``"\\ud800"`` can be neither stored
  nor sent);
* Parquet is checked from its footer alone first (rows, columns, row groups, bytes
  once decompressed, values), then read a batch at a time with its text kept as
  dictionaries, so that the decoded size of every batch is known (and checked against
  :attr:`UploadLimits.max_bytes`) before it is decoded. A small file whose dictionary
  repeats one long value many times is refused before any of it is expanded.

A file over a limit raises :class:`LimitExceeded`, which names the limit and what to do.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, AnyStr

from modelyard.config import Settings

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_COLUMNS",
    "MAX_JSON_DEPTH",
    "MAX_LINE_BYTES",
    "UNLIMITED",
    "LimitExceeded",
    "ParquetReader",
    "UnusableJson",
    "UploadLimits",
    "parse_json",
    "read_lines",
]

#: The longest line (CSV, JSONL) and the largest decoded Parquet row.
MAX_LINE_BYTES = 16 * 1024 * 1024
#: The deepest nesting of lists and objects in one JSON value.
MAX_JSON_DEPTH = 64
#: The most columns (CSV header, distinct JSONL keys, Parquet fields) a file may have.
MAX_COLUMNS = 1000
#: The most column chunks (row groups times columns) a Parquet footer may describe.
MAX_PARQUET_CHUNKS = 100_000
#: Parquet rows decoded together (fewer when their decoded size passes MAX_LINE_BYTES).
BATCH_ROWS = 1024
_MIB = 1024 * 1024
_DO = "upload a sample of it or split it into smaller files"


class LimitExceeded(Exception):
    """The file passes a limit: ``message`` says which and what to do; ``where`` is the
    line or row (``None``: the whole file)."""

    def __init__(self, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where


def _size(count: int) -> str:
    return f"{count / _MIB:.0f} MiB" if count >= _MIB else f"{count} bytes"


@dataclass(frozen=True)
class UploadLimits:
    """The limits set for this server (``MODELYARD_DATASET_MAX_ROWS`` and ``…_MAX_BYTES``)."""

    #: Rows (lines of a JSONL file, records of a CSV file) a file may have.
    max_rows: int
    #: Bytes a file may decode to (its text, or a Parquet file decompressed and decoded).
    max_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> UploadLimits:
        return cls(settings.dataset_max_rows, settings.dataset_max_bytes)

    def check_rows(self, rows: int) -> None:
        if rows > self.max_rows:
            raise LimitExceeded(
                f"the file has more than {self.max_rows} rows; this server accepts at most "
                f"{self.max_rows}: {_DO}"
            )

    def check_bytes(self, count: int, how: str) -> None:
        """``count`` bytes, the file's size ``how`` (once decompressed, …), within limits."""
        if count > self.max_bytes:
            raise LimitExceeded(
                f"the file takes more than {_size(self.max_bytes)} {how}; this server "
                f"accepts at most {self.max_bytes} bytes: {_DO}"
            )


DEFAULT_LIMITS = UploadLimits(
    Settings.model_fields["dataset_max_rows"].default,
    Settings.model_fields["dataset_max_bytes"].default,
)
#: For files checked when they were uploaded (no row or size limit; the rest stays).
UNLIMITED = UploadLimits(sys.maxsize, sys.maxsize)


def check_columns(count: int) -> None:
    if count > MAX_COLUMNS:
        raise LimitExceeded(
            f"the file has {count} columns (distinct keys); at most {MAX_COLUMNS} are "
            "accepted: keep only the columns training uses"
        )


# Lines --------------------------------------------------------------------------------


def read_lines(handle: IO[AnyStr], limits: UploadLimits | None = None) -> Iterator[AnyStr]:
    """The lines of ``handle`` (ends kept), each at most :data:`MAX_LINE_BYTES` (characters
    for a text stream); with ``limits``, more than ``max_rows`` lines is refused."""
    number = 0
    while line := handle.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(line) > MAX_LINE_BYTES:
            where = f"line {number}"
            raise LimitExceeded(
                f"the line is longer than {_size(MAX_LINE_BYTES)}; split the example or "
                "check the line endings",
                where,
            )
        if limits is not None:
            limits.check_rows(number)
        yield line


# JSON ---------------------------------------------------------------------------------


class UnusableJson(ValueError):
    """Well-formed JSON that cannot be used (too deep, unpaired surrogates)."""


_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]++")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _too_deep(text: str) -> bool:
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return False
    depth = 0
    for char in _NOT_BRACKET.sub("", _STRING.sub("", text)):
        if char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        else:
            depth -= 1
    return False


def _has_lone_surrogate(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_json(text: str) -> Any:
    """``json.loads`` for untrusted text: bad JSON raises :class:`json.JSONDecodeError` as
    usual; JSON nested deeper than :data:`MAX_JSON_DEPTH` (checked before parsing) or
    holding an unpaired surrogate raises :class:`UnusableJson`."""
    if _too_deep(text):
        raise UnusableJson(f"nested more than {MAX_JSON_DEPTH} levels deep; flatten the data")
    try:
        value = json.loads(text)
    except RecursionError:  # not reached after the depth check; kept as a guard
        raise UnusableJson(
            f"nested more than {MAX_JSON_DEPTH} levels deep; flatten the data"
        ) from None
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise UnusableJson(
            "a string holds an unpaired surrogate escape (\\ud800-\\udfff), which is not "
            "text; remove it or escape the whole character (a surrogate pair)"
        )
    return value


# Parquet ------------------------------------------------------------------------------

#: Bytes per value once read, by Parquet physical type (byte arrays: their offset).
_VALUE_BYTES = {"BOOLEAN": 1, "INT32": 4, "INT64": 8, "INT96": 12, "FLOAT": 4, "DOUBLE": 8}


def _is_text(kind: Any) -> bool:
    import pyarrow as pa  # type: ignore[import-untyped]

    return any(
        check(kind)
        for check in (
            pa.types.is_binary,
            pa.types.is_string,
            pa.types.is_large_binary,
            pa.types.is_large_string,
        )
    )


def _decoded_bytes(array: Any) -> int:
    """What ``array`` (a batch's column) takes once decoded, computed without decoding it."""
    import pyarrow as pa
    import pyarrow.compute as pc  # type: ignore[import-untyped]

    kind = array.type
    if pa.types.is_dictionary(kind):
        values = array.dictionary
        if _is_text(values.type):
            lengths = pc.take(pc.binary_length(values), array.indices)
            return int(pc.sum(lengths).as_py() or 0) + 4 * len(array)
        return _decoded_bytes(values.take(array.indices))
    if pa.types.is_struct(kind):
        return sum(_decoded_bytes(field) for field in array.flatten())
    if any(
        check(kind)
        for check in (
            pa.types.is_list,
            pa.types.is_large_list,
            pa.types.is_fixed_size_list,
        )
    ):
        return 4 * len(array) + _decoded_bytes(array.flatten())
    if pa.types.is_map(kind):  # keys and items ignore a slice: the offsets say which
        start, stop = (
            (array.offsets[0].as_py(), array.offsets[-1].as_py()) if len(array) else (0, 0)
        )
        entries = (array.keys.slice(start, stop - start), array.items.slice(start, stop - start))
        return 4 * len(array) + sum(_decoded_bytes(part) for part in entries)
    if _is_text(kind):
        return int(pc.sum(pc.binary_length(array)).as_py() or 0) + 4 * len(array)
    try:
        return len(array) * max(1, int(kind.bit_width) // 8)
    except ValueError:  # no fixed width (unions, views): what its buffers hold
        return int(array.nbytes)


def _batch_bytes(batch: Any) -> int:
    return sum(_decoded_bytes(column) for column in batch.columns)


class ParquetReader:
    """A Parquet file checked from its footer (opening it reads nothing else)."""

    def __init__(self, path: Path, limits: UploadLimits) -> None:
        """Open ``path`` (pyarrow's errors for an unreadable file pass through) and check
        rows, columns, row groups, the decompressed size and the values it holds."""
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        footer = pq.ParquetFile(path)
        meta = footer.metadata
        limits.check_rows(meta.num_rows)
        self.columns: list[str] = list(footer.schema_arrow.names)
        check_columns(len(self.columns))
        if meta.num_row_groups * meta.num_columns > MAX_PARQUET_CHUNKS:
            raise LimitExceeded(
                f"the file has {meta.num_row_groups} row groups of {meta.num_columns} columns; "
                f"at most {MAX_PARQUET_CHUNKS} column chunks are accepted: write it with "
                "larger row groups"
            )
        schema = footer.schema
        widths = [
            schema.column(c).length
            if schema.column(c).physical_type == "FIXED_LEN_BYTE_ARRAY"
            # byte arrays: their offset (the text itself is counted batch by batch)
            else _VALUE_BYTES.get(schema.column(c).physical_type, 4)
            for c in range(meta.num_columns)
        ]
        packed = values = 0
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            for c in range(group.num_columns):
                chunk = group.column(c)
                packed += chunk.total_uncompressed_size
                values += chunk.num_values * widths[c]
        limits.check_bytes(packed, "once decompressed")
        limits.check_bytes(values, "once its values are read")
        text = [
            schema.column(c).path
            for c in range(meta.num_columns)
            if schema.column(c).physical_type == "BYTE_ARRAY"
        ]
        self._file = pq.ParquetFile(path, read_dictionary=text) if text else footer
        self._limits = limits

    def _batches(self, columns: list[str]) -> Iterator[Any]:
        return iter(
            self._file.iter_batches(batch_size=BATCH_ROWS, columns=columns, use_threads=False)
        )

    def rows(self, columns: list[str]) -> Iterator[dict[str, Any]]:
        """The rows of ``columns``: first the decoded size of the whole is checked, batch by
        batch; then each batch is decoded, in slices of at most :data:`MAX_LINE_BYTES`."""
        total = 0
        for batch in self._batches(columns):
            total += _batch_bytes(batch)
            self._limits.check_bytes(total, "once decoded")
        first = 1
        for batch in self._batches(columns):
            yield from _decoded_rows(batch, first)
            first += batch.num_rows


def _decoded_rows(batch: Any, first: int) -> Iterator[dict[str, Any]]:
    """``batch`` (rows ``first``…) as dicts, halved until each part is small enough."""
    size = _batch_bytes(batch)
    if size <= MAX_LINE_BYTES:
        yield from batch.to_pylist()
    elif batch.num_rows == 1:
        raise LimitExceeded(
            f"the row takes {size} bytes once read; rows are at most {_size(MAX_LINE_BYTES)}: "
            "split the example",
            f"row {first}",
        )
    else:
        half = batch.num_rows // 2
        yield from _decoded_rows(batch.slice(0, half), first)
        yield from _decoded_rows(batch.slice(half), first + half)
