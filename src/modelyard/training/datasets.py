"""Training files: read CSV, JSONL and Parquet, check them, and turn them into examples.

Three shapes are recognised from the columns:

* ``classification``: ``text`` and ``label``;
* ``chat``: ``messages``, a list of ``{"role", "content"}`` (system, user, assistant) with
  at least one assistant message (in CSV, the list as a JSON string);
* ``instruction``: ``prompt`` and ``completion`` (or Alpaca's ``instruction``, optional
  ``input``, and ``output``);
* ``preference``: ``prompt``, ``chosen`` and ``rejected`` (the answer to prefer and the one
  to avoid; DPO and ORPO).

Every problem is reported with its line (CSV, JSONL) or row (Parquet) number and what to
do about it; :class:`DatasetValidationError` carries them all (the first 20). Files are
streamed within the limits of :mod:`modelyard.training.bounds` (rows, decoded bytes, line
length, JSON depth); a file over one is refused as a whole, before it is read into memory.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from modelyard.errors import BadRequestError
from modelyard.training.bounds import (
    DEFAULT_LIMITS,
    UNLIMITED,
    LimitExceeded,
    ParquetReader,
    UnusableJson,
    UploadLimits,
    check_columns,
    parse_json,
    read_lines,
)
from modelyard.training.tasks import TASKS, get_task

if TYPE_CHECKING:
    from _csv import Reader as CsvReader

__all__ = [
    "FORMATS",
    "MAX_ISSUES",
    "MIN_EXAMPLES",
    "DatasetSummary",
    "DatasetValidationError",
    "Issue",
    "Kind",
    "detect_format",
    "file_sha256",
    "load_examples",
    "read_jsonl",
    "validate_file",
]

Kind = Literal["classification", "chat", "instruction", "preference"]
Format = Literal["csv", "jsonl", "parquet"]

#: File suffix → format.
FORMATS: dict[str, Format] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
#: The fewest usable examples a dataset may have.
MIN_EXAMPLES = 10
#: Problems reported at most (the count of the rest is given).
MAX_ISSUES = 20
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Issue:
    """One problem: where (``line``/``row`` number, ``None`` for the whole file) and what."""

    where: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class DatasetValidationError(BadRequestError):
    """The file cannot be used; ``issues`` lists why (400, code ``invalid_dataset``)."""

    def __init__(self, issues: list[Issue], *, total: int | None = None) -> None:
        total = total if total is not None else len(issues)
        shown = "; ".join(str(i) for i in issues[:5])
        more = f" (and {total - 5} more)" if total > 5 else ""
        noun = "problem" if total == 1 else "problems"
        super().__init__(
            f"Invalid dataset, {total} {noun}: {shown}{more}.", param="file", code="invalid_dataset"
        )
        self.issues = issues[:MAX_ISSUES]
        self.total = total

    def body(self) -> dict[str, Any]:
        body = super().body()
        body["error"]["issues"] = [{"where": i.where, "message": i.message} for i in self.issues]
        body["error"]["total_issues"] = self.total
        return body


@dataclass
class DatasetSummary:
    """What validation found: the shape, the size and (classification) the labels."""

    format: Format
    kind: Kind
    num_examples: int
    columns: list[str]
    labels: list[str] | None = None
    issues: list[Issue] = field(default_factory=list)


def detect_format(filename: str) -> Format:
    """The format from the file name, or a 400 naming the accepted suffixes."""
    suffix = Path(filename).suffix.lower()
    if suffix not in FORMATS:
        raise DatasetValidationError(
            [
                Issue(
                    None,
                    f"unsupported file type {suffix or '(none)'!r} ({filename}); upload a .csv, "
                    ".jsonl (one JSON object per line) or .parquet file",
                )
            ]
        )
    return FORMATS[suffix]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Reading ------------------------------------------------------------------------------
# Every reader streams the file within the limits of :mod:`modelyard.training.bounds`;
# a file over one is refused as a whole (one issue naming the limit).


Record = tuple[str, dict[str, Any] | Issue]
#: The columns of a file, and its records for the columns one kind of dataset reads.
Reader = tuple[list[str], Callable[[Kind], Iterator[Record]]]
#: The columns each kind reads (Parquet reads no others).
KIND_COLUMNS: dict[Kind, tuple[str, ...]] = {
    "classification": ("text", "label"),
    "chat": ("messages",),
    "instruction": ("prompt", "completion", "instruction", "input", "output"),
    "preference": ("prompt", "chosen", "rejected"),
}


@contextmanager
def _limits_as_issues() -> Iterator[None]:
    try:
        yield
    except LimitExceeded as exc:
        raise DatasetValidationError([Issue(exc.where, exc.message)]) from None


def _csv_reader(path: Path) -> tuple[IO[str], CsvReader]:
    handle = io.TextIOWrapper(path.open("rb"), encoding="utf-8-sig", newline="")
    return handle, csv.reader(read_lines(handle))


def _read_csv(path: Path, limits: UploadLimits) -> Reader:
    handle, reader = _csv_reader(path)
    with handle:
        try:
            header = next(reader, None)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise DatasetValidationError(
                [Issue("line 1", f"unreadable CSV header ({exc})")]
            ) from None
    if not header:
        raise DatasetValidationError(
            [Issue(None, "the file is empty; the first line must name the columns")]
        )
    check_columns(len(header))
    columns = [c.strip() for c in header]

    def rows(_kind: Kind) -> Iterator[Record]:
        handle, reader = _csv_reader(path)
        with handle:
            next(reader)
            line = reader.line_num
            count = 0
            while True:
                start = line + 1
                try:
                    values = next(reader)
                except StopIteration:
                    return
                except UnicodeDecodeError:
                    yield (
                        f"line {start}",
                        Issue(f"line {start}", "not UTF-8 text; save the file as UTF-8"),
                    )
                    return
                except csv.Error as exc:
                    yield f"line {start}", Issue(f"line {start}", f"malformed CSV ({exc})")
                    return
                line = reader.line_num
                count += 1
                limits.check_rows(count)
                where = f"line {start}"
                if not values or all(not v.strip() for v in values):
                    continue
                if len(values) != len(columns):
                    yield (
                        where,
                        Issue(
                            where,
                            f"{len(values)} fields but the header has {len(columns)} "
                            "(quote fields that contain commas)",
                        ),
                    )
                    continue
                yield where, dict(zip(columns, values, strict=True))

    return columns, rows


def _jsonl_line(number: int, raw: bytes) -> Record | None:
    """Line ``number`` of a JSONL file: its object or an :class:`Issue`; ``None`` if blank."""
    where = f"line {number}"
    try:
        text = raw.decode("utf-8-sig" if number == 1 else "utf-8").strip()
    except UnicodeDecodeError:
        return where, Issue(where, "not UTF-8 text; save the file as UTF-8")
    if not text:
        return None
    try:
        value = parse_json(text)
    except json.JSONDecodeError as exc:
        return where, Issue(where, f"bad JSON ({exc.msg} at column {exc.colno})")
    except UnusableJson as exc:
        return where, Issue(where, str(exc))
    if not isinstance(value, dict):
        return where, Issue(where, f"expected a JSON object, got {type(value).__name__}")
    return where, value


def _read_jsonl(path: Path, limits: UploadLimits) -> Reader:
    columns: dict[str, None] = {}
    for _where, record in read_jsonl(path, limits):
        if not isinstance(record, Issue):
            columns.update(dict.fromkeys(record))
            check_columns(len(columns))
    return list(columns), lambda _kind: read_jsonl(path, limits)


def read_jsonl(
    path: Path, limits: UploadLimits | None = None
) -> Iterator[tuple[str, dict[str, Any] | Issue]]:
    """The objects of a JSONL file, streamed line by line within ``limits`` (lines at
    most :data:`~modelyard.training.bounds.MAX_LINE_BYTES` in any case), each with its
    ``line N``; a bad line is an :class:`Issue` instead, a file over a limit a
    :class:`DatasetValidationError` (shared with provider fine-tuning's file checks)."""
    with _limits_as_issues(), path.open("rb") as handle:
        for number, raw in enumerate(read_lines(handle, limits), start=1):
            record = _jsonl_line(number, raw)
            if record is not None:
                yield record


def _read_parquet(path: Path, limits: UploadLimits) -> Reader:
    try:
        reader = ParquetReader(path, limits)
    except LimitExceeded:
        raise
    except Exception as exc:  # pyarrow raises several unrelated types
        raise _unreadable_parquet(exc) from None

    def rows(kind: Kind) -> Iterator[Record]:
        wanted = [c for c in KIND_COLUMNS[kind] if c in reader.columns]
        number = 0
        try:
            for row in reader.rows(wanted):
                number += 1
                yield f"row {number}", row
        except LimitExceeded:
            raise
        except Exception as exc:  # a damaged page, text that is not UTF-8, ...
            where = f"row {number + 1}"
            yield where, Issue(where, f"not a readable Parquet file ({exc})")

    return reader.columns, rows


def _unreadable_parquet(exc: Exception) -> DatasetValidationError:
    return DatasetValidationError([Issue(None, f"not a readable Parquet file ({exc})")])


def _read(path: Path, fmt: Format, limits: UploadLimits) -> Reader:
    if fmt == "csv":
        return _read_csv(path, limits)
    if fmt == "jsonl":
        return _read_jsonl(path, limits)
    return _read_parquet(path, limits)


# Shapes -------------------------------------------------------------------------------


def _hint(wanted: str, columns: list[str]) -> str:
    close = [c for c in columns if c.strip().lower() == wanted] or difflib.get_close_matches(
        wanted, columns, n=1, cutoff=0.6
    )
    return f" (did you mean {close[0]!r}? rename it to {wanted!r})" if close else ""


def _kind_of(columns: list[str], task: str | None) -> Kind:
    names = set(columns)
    found: Kind | None = None
    if {"text", "label"} <= names:
        found = "classification"
    elif "messages" in names:
        found = "chat"
    elif {"prompt", "chosen", "rejected"} <= names:
        found = "preference"
    elif {"prompt", "completion"} <= names or {"instruction", "output"} <= names:
        found = "instruction"
    if found is not None and (task is None or found in get_task(task).kinds):
        return found
    tasks = [get_task(task)] if task else list(TASKS.values())
    wanted = dict.fromkeys(name for t in tasks for name in t.required_columns)
    hints = "".join(_hint(name, columns) for name in wanted if name not in names)
    # Tasks reading the same columns (dpo, orpo) are named together.
    by_columns: dict[str, list[str]] = {}
    for t in tasks:
        by_columns.setdefault(t.columns_help, []).append(t.name)
    expected = " or ".join(f"{'/'.join(ts)}: {help}" for help, ts in by_columns.items())
    raise DatasetValidationError(
        [
            Issue(
                None,
                f"missing columns — expected {expected}; the file has "
                f"{', '.join(repr(c) for c in columns) or 'no columns'}{hints}",
            )
        ]
    )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) else None


def _classification(where: str, row: dict[str, Any]) -> dict[str, Any] | Issue:
    text, label = row.get("text"), _text(row.get("label"))
    if not isinstance(text, str) or not text.strip():
        return Issue(where, "empty or non-text 'text'; every example needs some text")
    if label is None or not label.strip():
        return Issue(where, "empty label; every example needs a 'label' (e.g. positive)")
    return {"text": text, "label": label.strip()}


def _content(where: str, index: int, content: Any) -> str | Issue:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        for p in content
    ):
        return "".join(p["text"] for p in content)
    return Issue(
        where,
        f"message {index}: content must be a string (or a list of {{'type': 'text', "
        f"'text': ...}} parts), got {type(content).__name__}",
    )


def _chat(where: str, row: dict[str, Any]) -> dict[str, Any] | Issue:
    messages = row.get("messages")
    if isinstance(messages, str):
        try:
            messages = parse_json(messages)
        except json.JSONDecodeError as exc:
            return Issue(where, f"'messages' is not valid JSON ({exc.msg} at column {exc.colno})")
        except UnusableJson as exc:
            return Issue(where, f"'messages' is {exc}")
    if not isinstance(messages, list) or not messages:
        return Issue(where, "'messages' must be a non-empty list of {role, content} objects")
    cleaned: list[dict[str, str]] = []
    for index, message in enumerate(messages, start=1):
        if not isinstance(message, dict):
            return Issue(where, f"message {index} is not an object with 'role' and 'content'")
        role = message.get("role")
        if role not in ROLES:
            return Issue(where, f"message {index} has role {role!r}; roles are {', '.join(ROLES)}")
        if role == "system" and index != 1:
            return Issue(where, f"message {index}: a system message may only come first")
        content = _content(where, index, message.get("content"))
        if isinstance(content, Issue):
            return content
        if role == "assistant" and not content.strip():
            return Issue(where, f"message {index}: empty assistant message")
        cleaned.append({"role": str(role), "content": content})
    if not any(m["role"] == "assistant" for m in cleaned):
        return Issue(where, "no assistant message; each conversation needs an answer to learn")
    first = next(m["role"] for m in cleaned if m["role"] != "system")
    if first != "user":
        return Issue(where, "the conversation must start with a user message (after any system)")
    return {"messages": cleaned}


def _instruction(where: str, row: dict[str, Any]) -> dict[str, Any] | Issue:
    if "prompt" in row:
        prompt, completion = row.get("prompt"), row.get("completion")
        names = ("prompt", "completion")
    else:
        instruction, extra = row.get("instruction"), row.get("input")
        prompt = (
            f"{instruction}\n\n{extra}"
            if isinstance(instruction, str) and isinstance(extra, str) and extra.strip()
            else instruction
        )
        completion, names = row.get("output"), ("instruction", "output")
    if not isinstance(prompt, str) or not prompt.strip():
        return Issue(where, f"empty '{names[0]}'")
    if not isinstance(completion, str) or not completion.strip():
        return Issue(where, f"empty '{names[1]}'; each example needs the answer to learn")
    return {
        "messages": [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": completion},
        ]
    }


def _preference(where: str, row: dict[str, Any]) -> dict[str, Any] | Issue:
    values = {name: row.get(name) for name in ("prompt", "chosen", "rejected")}
    for name, value in values.items():
        if not isinstance(value, str) or not value.strip():
            return Issue(
                where,
                f"empty or non-text {name!r}; each example needs a prompt, the "
                "answer to prefer ('chosen') and the one to avoid ('rejected')",
            )
    if values["chosen"] == values["rejected"]:
        return Issue(where, "'chosen' and 'rejected' are the same answer; nothing to learn")
    return values


CHECKS = {
    "classification": _classification,
    "chat": _chat,
    "instruction": _instruction,
    "preference": _preference,
}


def _scan(
    path: Path, fmt: Format, task: str | None, limits: UploadLimits, *, keep: bool
) -> tuple[DatasetSummary, list[dict[str, Any]]]:
    """Read and check every record; the examples are kept only when ``keep``."""
    with _limits_as_issues():
        columns, records = _read(path, fmt, limits)
        kind = _kind_of(columns, task)
        check = CHECKS[kind]
        issues: list[Issue] = []
        examples: list[dict[str, Any]] = []
        count = 0
        labels: set[str] = set()
        for where, record in records(kind):
            result = record if isinstance(record, Issue) else check(where, record)
            if isinstance(result, Issue):
                issues.append(result)
                continue
            count += 1
            if kind == "classification":
                labels.add(result["label"])
            if keep:
                examples.append(result)
    summary = DatasetSummary(
        fmt, kind, count, columns, sorted(labels) if kind == "classification" else None, issues
    )
    return summary, examples


def validate_file(
    path: Path, fmt: Format, task: str | None = None, limits: UploadLimits = DEFAULT_LIMITS
) -> DatasetSummary:
    """Check the whole file, streamed within ``limits`` (nothing of it is kept);
    :class:`DatasetValidationError` lists every problem found."""
    summary, _examples = _scan(path, fmt, task, limits, keep=False)
    issues = list(summary.issues)
    if not issues and summary.num_examples < MIN_EXAMPLES:
        issues.append(
            Issue(
                None,
                f"too few examples: {summary.num_examples}; at least {MIN_EXAMPLES} are needed "
                "(some are held out for evaluation)",
            )
        )
    if not issues and summary.labels is not None and len(summary.labels) < 2:
        issues.append(
            Issue(
                None,
                f"only one label ({summary.labels[0]!r}); classification needs at least two",
            )
        )
    if issues:
        raise DatasetValidationError(issues[:MAX_ISSUES], total=len(issues))
    return summary


def load_examples(path: Path, fmt: Format) -> tuple[Kind, list[dict[str, Any]]]:
    """The examples of a validated file: ``{"text", "label"}`` or ``{"messages"}`` (the
    file was checked against the limits when it was uploaded)."""
    summary, examples = _scan(path, fmt, None, UNLIMITED, keep=True)
    if summary.issues:
        raise DatasetValidationError(summary.issues[:MAX_ISSUES], total=len(summary.issues))
    return summary.kind, examples
