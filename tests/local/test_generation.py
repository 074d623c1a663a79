"""Text generation details: prompts without a chat template, end-of-sequence counting,
streams closed early, prompts longer than the context."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from modelyard.errors import BadRequestError
from modelyard.local.generation import _Job
from modelyard.local.manager import ModelManager
from modelyard.local.types import Completion, GenerationParams
from tests.local.builders import build_causal


async def test_without_a_chat_template_the_prompt_is_a_transcript(tmp_path: Path) -> None:
    directory = build_causal(tmp_path / "plain", chat_template=False)
    manager = ModelManager()
    try:
        generator = (await manager.get(str(directory))).generator()
        messages = [("system", "Be brief."), ("user", "hi")]
        expected = generator.tokenizer("System: Be brief.\nUser: hi\nAssistant:")["input_ids"]
        assert generator.prompt_ids(messages) == list(expected)
        completion = await (await manager.get(str(directory))).complete(
            messages, GenerationParams(max_tokens=4, temperature=0)
        )
        assert completion.prompt_tokens == len(expected)
    finally:
        await manager.aclose()


async def test_end_of_sequence_ends_the_answer_and_counts(causal_dir: Path) -> None:
    manager = ModelManager()
    try:
        generator = (await manager.get(str(causal_dir))).generator()
        generator.eos_ids = frozenset({1})
        text_ids = generator.tokenizer("hello world", add_special_tokens=False)["input_ids"]
        row = [*text_ids, 1, 0, 0, 0]
        text, count, reason = generator._finish(row, _Job([5], limit=50, stops=()))
        assert (text, count, reason) == ("hello world", len(text_ids) + 1, "stop")
        text, count, reason = generator._finish(row, _Job([5], limit=2, stops=()))
        assert (count, reason) == (2, "length")
        text, count, reason = generator._finish(row, _Job([5], limit=50, stops=("wor",)))
        assert text == "hello " and reason == "stop"
        assert (
            generator.decode(row[: count - 1]).find("wor")
            < 0
            <= generator.decode(row[:count]).find("wor")
        )
    finally:
        await manager.aclose()


async def test_closing_a_stream_stops_the_generation(causal_dir: Path) -> None:
    manager = ModelManager()
    try:
        model = await manager.get(str(causal_dir))
        params = GenerationParams(max_tokens=300, temperature=0)
        started = time.perf_counter()
        full = await model.complete([("user", "hi")], params)
        whole_run = time.perf_counter() - started
        pieces = model.stream([("user", "hi")], params)
        received = [await anext(pieces) for _ in range(3)]
        started = time.perf_counter()
        await pieces.aclose()
        assert time.perf_counter() - started < whole_run / 2
        assert full.text.startswith("".join(str(p) for p in received))
        # The model is free again: the next request runs at once.
        quick = await asyncio.wait_for(
            model.complete([("user", "hi")], GenerationParams(max_tokens=3)), timeout=5
        )
        assert isinstance(quick, Completion) and quick.completion_tokens == 3
    finally:
        await manager.aclose()


async def test_a_prompt_longer_than_the_context_is_a_400(causal_dir: Path) -> None:
    manager = ModelManager()
    try:
        model = await manager.get(str(causal_dir))
        long = " ".join(["fox"] * 1500)
        with pytest.raises(BadRequestError, match="context window"):
            await model.complete([("user", long)], GenerationParams(max_tokens=3))
        ok = await model.complete([("user", "fox")], GenerationParams(max_tokens=3))
        assert ok.completion_tokens == 3
    finally:
        await manager.aclose()


async def test_streams_end_with_the_same_text_as_whole_answers(causal_dir: Path) -> None:
    manager = ModelManager()
    try:
        model = await manager.get(str(causal_dir))
        whole = await model.complete([("user", "hi")], GenerationParams(max_tokens=30))
        stops = (whole.text[-1] + "\x00never",)  # its prefix is held back, never matched
        for limit in range(1, 31):
            params = GenerationParams(max_tokens=limit, stop=stops)
            expected = await model.complete([("user", "hi")], params)
            pieces = [piece async for piece in model.stream([("user", "hi")], params)]
            final = pieces[-1]
            assert isinstance(final, Completion)
            assert "".join(str(p) for p in pieces[:-1]) == final.text == expected.text
            assert final.completion_tokens == expected.completion_tokens == limit
    finally:
        await manager.aclose()
