"""Dataset upload: the three formats, and line-numbered refusals that leave nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from sqlalchemy import func, select

from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.db.models import TrainingDataset
from tests.training.conftest import UploadFn, chat_rows, classification_rows, write_csv, write_jsonl


async def _nothing_kept(database: Database, settings: Settings) -> None:
    async with database.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(TrainingDataset)) == 0
    directory = settings.data_dir.resolve() / "datasets"
    assert not directory.exists() or list(directory.iterdir()) == []


def _issues(response: httpx.Response) -> list[str]:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_dataset" and error["param"] == "file"
    return [
        f"{i['where']}: {i['message']}" if i["where"] else i["message"] for i in error["issues"]
    ]


async def test_csv_jsonl_and_parquet_are_accepted_and_listed(
    upload: UploadFn, http: httpx.AsyncClient, auth: dict[str, str], tmp_path: Path
) -> None:
    rows = classification_rows(12)
    csv_file = write_csv(tmp_path / "a.csv", rows)
    jsonl_file = write_jsonl(tmp_path / "chat.jsonl", chat_rows(10))
    parquet_file = tmp_path / "b.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet_file)
    instruction = write_jsonl(
        tmp_path / "inst.jsonl",
        [{"instruction": f"add {i} and 1", "input": "", "output": str(i + 1)} for i in range(10)],
    )
    kinds = []
    for path in (csv_file, jsonl_file, parquet_file, instruction):
        response = await upload(path, name=path.stem)
        assert response.status_code == 201, response.text
        kinds.append((response.json()["format"], response.json()["kind"]))
    assert kinds == [
        ("csv", "classification"),
        ("jsonl", "chat"),
        ("parquet", "classification"),
        ("jsonl", "instruction"),
    ]
    listed = (await http.get("/v2/datasets", headers=auth)).json()["data"]
    assert [d["name"] for d in listed] == ["inst", "b", "chat", "a"]
    other = await http.get("/v2/datasets", headers={"authorization": "Bearer nope"})
    assert other.status_code == 401


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (
            [{"Text": "good", "lable": "pos"}] * 12,
            "missing columns — expected classification: 'text' and 'label' or sft: "
            "'messages' (chat), or 'prompt' and 'completion', or 'instruction' and 'output' "
            "or dpo/orpo: 'prompt', 'chosen' (the answer to prefer) and 'rejected' (the one "
            "to avoid); the file has 'Text', 'lable' (did you mean 'Text'? rename it to 'text') "
            "(did you mean 'lable'? rename it to 'label')",
        ),
        (
            [
                *classification_rows(12)[:5],
                {"text": "fine", "label": ""},
                *classification_rows(12)[5:],
            ],
            "line 7: empty label; every example needs a 'label' (e.g. positive)",
        ),
        (classification_rows(4), "too few examples: 4; at least 10 are needed"),
        (
            [{"text": f"t{i}", "label": "same"} for i in range(12)],
            "only one label ('same'); classification needs at least two",
        ),
    ],
)
async def test_csv_problems_are_named_with_their_line(
    rows: list[dict[str, str]],
    expected: str,
    upload: UploadFn,
    tmp_path: Path,
    database: Database,
    settings: Settings,
) -> None:
    issues = _issues(await upload(write_csv(tmp_path / "bad.csv", rows)))
    assert issues[0].startswith(expected), issues
    await _nothing_kept(database, settings)


async def test_jsonl_chat_rules(
    upload: UploadFn, tmp_path: Path, database: Database, settings: Settings
) -> None:
    good = chat_rows(12)
    lines = [json.dumps(row) for row in good]
    lines[1] = '{"messages": [{"role": "user", "content": "hi"}'  # line 2: bad JSON
    lines[2] = json.dumps({"messages": [{"role": "bot", "content": "hi"}]})
    lines[3] = json.dumps({"messages": [{"role": "user", "content": "hi"}]})
    lines[4] = json.dumps(
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": 3}]}
    )
    lines[5] = json.dumps(["not", "an", "object"])
    lines[6] = json.dumps(
        {"messages": [{"role": "assistant", "content": "hi"}, {"role": "user", "content": "x"}]}
    )
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(lines) + "\n")
    response = await upload(path, task="sft")
    issues = _issues(response)
    assert issues == [
        "line 2: bad JSON (Expecting ',' delimiter at column 48)",
        "line 3: message 1 has role 'bot'; roles are system, user, assistant",
        "line 4: no assistant message; each conversation needs an answer to learn",
        "line 5: message 2: content must be a string (or a list of {'type': 'text', "
        "'text': ...} parts), got int",
        "line 6: expected a JSON object, got list",
        "line 7: the conversation must start with a user message (after any system)",
    ]
    assert response.json()["error"]["message"].startswith("Invalid dataset, 6 problems: line 2")
    await _nothing_kept(database, settings)


async def test_task_mismatch_unknown_type_and_unreadable_files(
    upload: UploadFn, tmp_path: Path, database: Database, settings: Settings
) -> None:
    classification = write_csv(tmp_path / "c.csv", classification_rows(12))
    issues = _issues(await upload(classification, task="sft"))
    assert issues[0].startswith("missing columns — expected sft: 'messages' (chat)")
    assert "the file has 'text', 'label'" in issues[0]

    text = tmp_path / "notes.txt"
    text.write_text("hello")
    issues = _issues(await upload(text))
    assert issues == [
        "unsupported file type '.txt' (notes.txt); upload a .csv, .jsonl (one JSON object "
        "per line) or .parquet file"
    ]
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    assert _issues(await upload(broken))[0].startswith("not a readable Parquet file")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("text,label\n" + "a,b\n" * 10 + "x,y,z\n")
    assert _issues(await upload(ragged)) == [
        "line 12: 3 fields but the header has 2 (quote fields that contain commas)"
    ]
    await _nothing_kept(database, settings)
