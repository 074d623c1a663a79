"""Checking a training file with the provider's rules before anything is sent.

Provider fine-tuning takes JSONL in the chat format, one example per line::

    {"messages": [{"role": "system", "content": "…"}, {"role": "user", "content": "…"},
                  {"role": "assistant", "content": "…"}]}

OpenAI's rules (the custom REST contract takes the same format, without the token
limit): a ``messages`` list on every line; roles ``system``, ``user``, ``assistant`` and
``tool`` only; only the keys OpenAI knows, on the example and on each message; content
present (an assistant message may carry ``tool_calls`` instead); ``weight`` 0 or 1 on
assistant messages only; an assistant message in every example; at least
:data:`MIN_EXAMPLES` examples; the file and each example within their size limits.
Every problem is reported with its line number (the first 20, and how many there are),
reusing the dataset checks' :class:`~modelyard.training.datasets.Issue` and error. The
file is streamed by the datasets' own JSONL reader, so the bounds of
:mod:`modelyard.training.bounds` hold here too: lines of at most 16 MiB, JSON at most 64
levels deep, no unpaired surrogates (the file's size is checked before it is read).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from modelyard.providers.kinds import ProviderKind
from modelyard.training.datasets import (
    MAX_ISSUES,
    MIN_EXAMPLES,
    DatasetValidationError,
    Issue,
    file_sha256,
    read_jsonl,
)
from modelyard.usage.tokens import count_message_tokens

__all__ = [
    "CUSTOM_RULES",
    "OPENAI_RULES",
    "FileRules",
    "FileSummary",
    "check_filename",
    "rules_for",
    "validate_training_file",
]

#: OpenAI's own limit on one uploaded file.
OPENAI_MAX_FILE_BYTES = 512 * 1024 * 1024
#: The longest example (tokens) OpenAI trains on (the largest fine-tuning context).
OPENAI_MAX_EXAMPLE_TOKENS = 65_536
_PART_TYPES = ("text", "image_url")


@dataclass(frozen=True)
class FileRules:
    """What one provider accepts in a chat fine-tuning file."""

    label: str
    roles: tuple[str, ...] = ("system", "user", "assistant", "tool")
    example_keys: frozenset[str] = frozenset(
        {"messages", "tools", "parallel_tool_calls", "functions"}
    )
    message_keys: frozenset[str] = frozenset(
        {"role", "content", "name", "weight", "tool_calls", "tool_call_id", "function_call"}
    )
    min_examples: int = MIN_EXAMPLES
    max_file_bytes: int = OPENAI_MAX_FILE_BYTES
    #: ``None``: no per-example limit.
    max_example_tokens: int | None = OPENAI_MAX_EXAMPLE_TOKENS


OPENAI_RULES = FileRules("OpenAI")
CUSTOM_RULES = replace(OPENAI_RULES, label="the custom provider", max_example_tokens=None)


def rules_for(kind: ProviderKind | str, *, max_file_bytes: int | None = None) -> FileRules:
    """The rules of ``kind`` (OpenAI's for OpenAI-compatible services), with the file
    size capped at ``max_file_bytes`` (``MODELYARD_FINETUNE_MAX_FILE_BYTES``)."""
    rules = CUSTOM_RULES if ProviderKind(kind) is ProviderKind.CUSTOM else OPENAI_RULES
    if max_file_bytes is not None and max_file_bytes < rules.max_file_bytes:
        rules = replace(rules, max_file_bytes=max_file_bytes)
    return rules


@dataclass(frozen=True)
class FileSummary:
    num_examples: int
    size_bytes: int
    sha256: str
    #: Tokens of the whole file (OpenAI's tokenizer; an estimate for other models).
    total_tokens: int


def check_filename(filename: str) -> None:
    """Fine-tuning files are JSONL: anything else is a 400 saying so."""
    if not filename.lower().endswith(".jsonl"):
        raise DatasetValidationError(
            [
                Issue(
                    None,
                    f"{filename or 'the upload'} is not a .jsonl file; fine-tuning takes JSONL "
                    'in the chat format, one {"messages": [...]} object per line',
                )
            ]
        )


def _unknown(keys: Any, allowed: frozenset[str]) -> list[str]:
    return sorted(str(key) for key in keys if key not in allowed)


def _content_problem(role: str, message: dict[str, Any]) -> str | None:
    if "content" not in message or message["content"] is None:
        if role == "assistant" and (message.get("tool_calls") or message.get("function_call")):
            return None
        return "has no content"
    content = message["content"]
    if isinstance(content, str):
        return None if content.strip() else "has empty content"
    if isinstance(content, list) and content:
        for part in content:
            if not isinstance(part, dict) or part.get("type") not in _PART_TYPES:
                return "content parts must be {'type': 'text' or 'image_url', ...} objects"
            if part["type"] == "text" and not str(part.get("text") or "").strip():
                return "has an empty text part"
        return None
    return f"content must be a non-empty string or list of parts, got {type(content).__name__}"


def _message_problem(rules: FileRules, index: int, message: Any) -> str | None:
    if not isinstance(message, dict):
        return f"message {index} is not an object with 'role' and 'content'"
    unknown = _unknown(message, rules.message_keys)
    if unknown:
        return (
            f"message {index} has unknown key(s) {', '.join(repr(k) for k in unknown)}; "
            f"{rules.label} accepts {', '.join(sorted(rules.message_keys))}"
        )
    role = message.get("role")
    if role not in rules.roles:
        return f"message {index} has role {role!r}; roles are {', '.join(rules.roles)}"
    problem = _content_problem(str(role), message)
    if problem is not None:
        return f"message {index} ({role}) {problem}"
    if "weight" in message and (role != "assistant" or message["weight"] not in (0, 1)):
        return f"message {index}: 'weight' must be 0 or 1, and only on assistant messages"
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        return f"message {index} (tool) needs the 'tool_call_id' it answers"
    return None


def _example_problem(rules: FileRules, example: dict[str, Any]) -> str | None:
    unknown = _unknown(example, rules.example_keys)
    if unknown:
        return (
            f"unknown key(s) {', '.join(repr(k) for k in unknown)}; each line holds "
            f"{', '.join(sorted(rules.example_keys))} only"
        )
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty list of {role, content} objects"
    for index, message in enumerate(messages, start=1):
        problem = _message_problem(rules, index, message)
        if problem is not None:
            return problem
    if not any(m.get("role") == "assistant" for m in messages):
        return "no assistant message; every example needs the answer to learn"
    return None


def validate_training_file(path: Path, rules: FileRules) -> FileSummary:
    """Check the whole file (blocking: run it in a thread); raises
    :class:`~modelyard.training.datasets.DatasetValidationError` listing every problem."""
    size = path.stat().st_size
    if size > rules.max_file_bytes:
        raise DatasetValidationError(
            [
                Issue(
                    None,
                    f"the file is {size} bytes; {rules.label} takes at most "
                    f"{rules.max_file_bytes} bytes per file: split it or sample it",
                )
            ]
        )
    issues: list[Issue] = []
    examples = total_tokens = 0
    for where, record in read_jsonl(path):
        if isinstance(record, Issue):
            issues.append(record)
            continue
        problem = _example_problem(rules, record)
        if problem is None:
            tokens = count_message_tokens("gpt-4o-mini", record["messages"])
            limit = rules.max_example_tokens
            if limit is not None and tokens > limit:
                problem = f"the example has about {tokens} tokens; the limit is {limit}"
            total_tokens += tokens
        if problem is not None:
            issues.append(Issue(where, problem))
        else:
            examples += 1
    if not issues and examples < rules.min_examples:
        issues.append(
            Issue(
                None,
                f"too few examples: {examples}; {rules.label} needs at least {rules.min_examples}",
            )
        )
    if issues:
        raise DatasetValidationError(issues[:MAX_ISSUES], total=len(issues))
    return FileSummary(examples, size, file_sha256(path), total_tokens)
