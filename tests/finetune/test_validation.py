"""The provider's file rules, line by line (no server needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelyard.finetune.validation import (
    CUSTOM_RULES,
    OPENAI_RULES,
    rules_for,
    validate_training_file,
)
from modelyard.training.bounds import MAX_JSON_DEPTH, MAX_LINE_BYTES
from modelyard.training.datasets import DatasetValidationError
from tests.finetune.conftest import chat_example, write_jsonl

TOOL_EXAMPLE = {
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C"},
        {"role": "assistant", "content": "It is 18 C.", "weight": 1},
    ],
    "tools": [{"type": "function", "function": {"name": "weather", "parameters": {}}}],
}


def _problems(path: Path, rules: Any = OPENAI_RULES) -> list[str]:
    with pytest.raises(DatasetValidationError) as caught:
        validate_training_file(path, rules)
    return [str(issue) for issue in caught.value.issues]


def test_a_good_file_with_tools_parts_and_weights(tmp_path: Path) -> None:
    parts = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "x"}},
                ],
            },
            {"role": "assistant", "content": "A cat.", "weight": 0},
            {"role": "user", "content": "Sure?"},
            {"role": "assistant", "content": "Yes."},
        ]
    }
    rows = [chat_example(i) for i in range(8)] + [TOOL_EXAMPLE, parts]
    summary = validate_training_file(write_jsonl(tmp_path / "ok.jsonl", rows), OPENAI_RULES)
    assert summary.num_examples == 10 and summary.total_tokens > 100
    assert len(summary.sha256) == 64 and summary.size_bytes > 0


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ({"role": "user", "content": "q", "weight": 1}, "'weight' must be 0 or 1"),
        ({"role": "tool", "content": "x"}, "needs the 'tool_call_id'"),
        ({"role": "user", "content": "   "}, "has empty content"),
        ({"role": "user", "content": 5}, "content must be a non-empty string or list"),
        ({"role": "user", "content": [{"type": "audio"}]}, "content parts must be"),
        ("just text", "message 1 is not an object"),
    ],
)
def test_message_rules(tmp_path: Path, message: Any, problem: str) -> None:
    bad = {"messages": [message, {"role": "assistant", "content": "a"}]}
    rows = [chat_example(i) for i in range(10)] + [bad]
    [issue] = _problems(write_jsonl(tmp_path / "bad.jsonl", rows))
    assert issue.startswith("line 11: ") and problem in issue


def test_every_problem_is_counted_and_the_first_twenty_listed(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [{"messages": []}] * 30
    with pytest.raises(DatasetValidationError) as caught:
        validate_training_file(write_jsonl(tmp_path / "bad.jsonl", rows), OPENAI_RULES)
    assert caught.value.total == 30 and len(caught.value.issues) == 20
    assert "30 problems" in caught.value.message and "(and 25 more)" in caught.value.message


def test_token_limit_is_openai_only(tmp_path: Path) -> None:
    long = chat_example(0)
    long["messages"][2]["content"] = "word " * 70_000
    path = write_jsonl(tmp_path / "long.jsonl", [long] + [chat_example(i) for i in range(9)])
    [issue] = _problems(path)
    assert issue.startswith("line 1: the example has about") and "the limit is 65536" in issue
    assert validate_training_file(path, CUSTOM_RULES).num_examples == 10


def test_size_limit_follows_the_setting(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "ok.jsonl", [chat_example(i) for i in range(10)])
    rules = rules_for("openai", max_file_bytes=100)
    assert rules.max_file_bytes == 100 and rules_for("openai").max_file_bytes == 512 * 1024**2
    [issue] = _problems(path, rules)
    assert "takes at most 100 bytes per file" in issue
    assert rules_for("custom") is CUSTOM_RULES


def test_deep_nesting_surrogates_and_long_lines_are_refused_by_line(tmp_path: Path) -> None:
    # The datasets' bounded JSONL reader: a 200k-deep line and an unpaired surrogate are
    # problems of their line (no RecursionError); a line past 16 MiB stops the file.
    depth = 200_000
    lines = [json.dumps(chat_example(i)) for i in range(12)]
    lines[1] = '{"messages": [{"role": "user", "content": ' + "[" * depth + "]" * depth + "}]}"
    lines[4] = '{"messages": [{"role": "user", "content": "\\ud800"}]}'
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert _problems(path) == [
        f"line 2: nested more than {MAX_JSON_DEPTH} levels deep; flatten the data",
        "line 5: a string holds an unpaired surrogate escape (\\ud800-\\udfff), which is not "
        "text; remove it or escape the whole character (a surrogate pair)",
    ]
    long = chat_example(0)
    long["messages"][2]["content"] = "x" * MAX_LINE_BYTES
    path = write_jsonl(tmp_path / "long.jsonl", [chat_example(1), long])
    assert _problems(path, CUSTOM_RULES) == [
        "line 2: the line is longer than 16 MiB; split the example or check the line endings"
    ]
