"""Local models through the gateway, with the official `openai` SDK as the client."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
import torch
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam

from modelyard.db.engine import Database
from modelyard.local.manager import ModelManager
from tests.helpers import bearer

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello world, how are you?"}]
HELLO_TEXT = "hello world, how are you?"


def expected_answer(reference: tuple[Any, Any], content: str, max_tokens: int) -> tuple[str, int]:
    """Greedy text and prompt length from transformers directly, for ``content``."""
    model, tokenizer = reference
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
    )
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=max_tokens, do_sample=False, pad_token_id=0)
    answer = tokenizer.decode(
        out[0, ids.shape[1] :], skip_special_tokens=True, clean_up_tokenization_spaces=False
    )
    return answer, int(ids.shape[1])


def cosine(a: list[float], b: list[float]) -> float:
    x, y = np.asarray(a), np.asarray(b)
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


async def test_embeddings_with_minilm_and_no_key(
    sdk: openai.AsyncOpenAI, asgi_http: httpx.AsyncClient, user_token: str
) -> None:
    raw = await sdk.embeddings.with_raw_response.create(
        model="all-MiniLM-L6-v2",
        input=[
            "A man is playing a guitar.",
            "Someone plays the guitar.",
            "The stock market fell sharply today.",
        ],
    )
    result = raw.parse()
    assert raw.headers["x-modelyard-provider"] == "local"
    vectors = [item.embedding for item in result.data]
    assert [len(v) for v in vectors] == [384, 384, 384]
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.3
    from transformers import AutoTokenizer

    from modelyard.local.sources import BUILT_IN_MODELS

    tokenizer = AutoTokenizer.from_pretrained(BUILT_IN_MODELS["all-MiniLM-L6-v2"]())
    texts = ["A man is playing a guitar.", "Someone plays the guitar."]
    exact = sum(len(ids) for ids in tokenizer(texts)["input_ids"])
    floats = await asgi_http.post(
        "/v1/embeddings",
        json={"model": "all-MiniLM-L6-v2", "input": texts, "encoding_format": "float"},
        headers=bearer(user_token),
    )
    assert floats.status_code == 200, floats.text
    body = floats.json()
    assert body["usage"] == {"prompt_tokens": exact, "total_tokens": exact}
    assert np.allclose(body["data"][0]["embedding"], vectors[0], atol=1e-6)


async def test_models_list_has_minilm_without_any_key(
    asgi_http: httpx.AsyncClient, user_token: str
) -> None:
    listed = (await asgi_http.get("/v1/models", headers=bearer(user_token))).json()["data"]
    local = {m["id"] for m in listed if m["owned_by"] == "local"}
    assert "local/all-MiniLM-L6-v2" in local
    assert all(m["owned_by"] == "local" for m in listed)  # no provider key: nothing else


async def test_chat_matches_transformers_and_counts_tokens_exactly(
    sdk: openai.AsyncOpenAI, causal_dir: Path, reference: tuple[Any, Any]
) -> None:
    raw = await sdk.chat.completions.with_raw_response.create(
        model=f"local/{causal_dir}",
        messages=HELLO,
        max_tokens=12,
        temperature=0,
    )
    completion = raw.parse()
    answer, prompt_tokens = expected_answer(reference, HELLO_TEXT, 12)
    assert completion.choices[0].message.content == answer
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == prompt_tokens
    assert completion.usage.completion_tokens == 12
    assert raw.headers["x-modelyard-provider"] == "local"
    assert raw.headers["x-modelyard-model"] == str(causal_dir)


async def test_streaming_gives_the_same_text_in_pieces(
    sdk: openai.AsyncOpenAI, causal_dir: Path
) -> None:
    model = f"local/{causal_dir}"
    whole = await sdk.chat.completions.create(
        model=model,
        messages=HELLO,
        max_tokens=16,
        temperature=0,
    )
    stream = await sdk.chat.completions.create(
        model=model,
        messages=HELLO,
        max_tokens=16,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, reasons, usage = [], [], None
    async for chunk in stream:
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
            reasons.append(chunk.choices[0].finish_reason)
        if chunk.usage is not None:
            usage = chunk.usage
    assert "".join(pieces) == whole.choices[0].message.content
    assert len([p for p in pieces if p]) >= 3
    assert reasons[-1] == "length" and set(reasons[:-1]) == {None}
    assert usage is not None and whole.usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (whole.usage.prompt_tokens, 16)


@pytest.mark.parametrize("stream", [False, True])
async def test_stop_sequence_cuts_the_answer(
    sdk: openai.AsyncOpenAI, causal_dir: Path, stream: bool
) -> None:
    model = f"local/{causal_dir}"
    full = await sdk.chat.completions.create(
        model=model,
        messages=HELLO,
        max_tokens=24,
        temperature=0,
    )
    text = full.choices[0].message.content or ""
    clean = [i for i in range(3, len(text) - 3) if "\ufffd" not in text[i : i + 2]]
    start = clean[len(clean) // 2]
    stop = text[start : start + 2]
    kwargs: dict[str, Any] = {"max_tokens": 24, "temperature": 0, "stop": [stop]}
    if not stream:
        cut = await sdk.chat.completions.create(model=model, messages=HELLO, **kwargs)
        content, reason = cut.choices[0].message.content, cut.choices[0].finish_reason
        assert cut.usage is not None and cut.usage.completion_tokens < 24
    else:
        chunks = await sdk.chat.completions.create(
            model=model,
            messages=HELLO,
            stream=True,
            **kwargs,
        )
        parts, reason = [], None
        async for chunk in chunks:
            if chunk.choices:
                parts.append(chunk.choices[0].delta.content or "")
                reason = chunk.choices[0].finish_reason or reason
        content = "".join(parts)
    assert content == text[: text.index(stop)]
    assert reason == "stop"


async def test_seed_makes_sampling_repeatable(sdk: openai.AsyncOpenAI, causal_dir: Path) -> None:
    async def sample(seed: int) -> str:
        completion = await sdk.chat.completions.create(
            model=f"local/{causal_dir}",
            messages=HELLO,
            max_tokens=20,
            temperature=2.0,
            seed=seed,
        )
        return completion.choices[0].message.content or ""

    first = await sample(7)
    assert await sample(7) == first
    assert {await sample(seed) for seed in (8, 9, 10)} != {first}


async def test_seq2seq_t5(sdk: openai.AsyncOpenAI, t5_dir: Path) -> None:
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    prompt = "translate to French: the quick brown fox"
    completion = await sdk.chat.completions.create(
        model=f"local/{t5_dir}",
        messages=[{"role": "user", "content": prompt}],
        max_tokens=10,
        temperature=0,
    )
    tokenizer = AutoTokenizer.from_pretrained(t5_dir)
    model = AutoModelForSeq2SeqLM.from_pretrained(t5_dir)
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    out = model.generate(ids, max_new_tokens=10, do_sample=False)
    expected = tokenizer.decode(out[0, 1:], skip_special_tokens=True)
    assert completion.choices[0].message.content == expected
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == ids.shape[1]


async def test_route_falls_back_to_a_local_model(
    sdk: openai.AsyncOpenAI,
    asgi_http: httpx.AsyncClient,
    database: Database,
    causal_dir: Path,
) -> None:
    from tests.fakes.fixtures import OPENAI_KEY
    from tests.fakes.openai_chat import ChatOpenAI
    from tests.gateway.conftest import add_provider
    from tests.helpers import make_token, make_user

    staff = bearer(await make_token(database, await make_user(database, "r@x.io", staff=True)))
    with ChatOpenAI(keys={OPENAI_KEY}, models=["gpt-4o-mini"]) as upstream:
        upstream.fail_with(503)
        await add_provider(database, "openai", upstream.base_url, OPENAI_KEY)
        route = {
            "name": "with-local-fallback",
            "targets": [
                {"provider": "openai", "model": "gpt-4o-mini"},
                {"provider": "local", "model": str(causal_dir)},
            ],
        }
        created = await asgi_http.post("/v2/admin/routes", json=route, headers=staff)
        assert created.status_code == 201, created.text
        raw = await sdk.chat.completions.with_raw_response.create(
            model="with-local-fallback",
            messages=HELLO,
            max_tokens=5,
            temperature=0,
        )
        assert len(upstream.requests) >= 1
    assert raw.headers["x-modelyard-provider"] == "local"
    assert raw.headers["x-modelyard-route"] == "with-local-fallback"
    assert int(raw.headers["x-modelyard-attempts"]) >= 2
    usage = raw.parse().usage
    assert usage is not None and usage.completion_tokens == 5


async def test_concurrent_requests_match_sequential_ones(
    sdk: openai.AsyncOpenAI, causal_dir: Path, local_models: ModelManager
) -> None:
    model = f"local/{causal_dir}"
    prompts = [f"{'the quick ' * i}brown fox number {i}" for i in range(6)]

    async def ask(prompt: str) -> tuple[str, int]:
        completion = await sdk.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=8 + 3 * (len(prompt) % 4),
            temperature=0,
        )
        assert completion.usage is not None
        return completion.choices[0].message.content or "", completion.usage.completion_tokens

    sequential = [await ask(prompt) for prompt in prompts]
    loaded = await local_models.get(str(causal_dir))
    before = len(loaded.batch_sizes)
    concurrent = await asyncio.gather(*(ask(prompt) for prompt in prompts))
    assert list(concurrent) == sequential
    assert len({text for text, _ in sequential}) == len(prompts)
    assert max(loaded.batch_sizes[before:]) > 1  # they really shared generate calls


async def test_the_loop_answers_while_a_model_generates(
    sdk: openai.AsyncOpenAI, asgi_http: httpx.AsyncClient, causal_dir: Path
) -> None:
    model = f"local/{causal_dir}"
    await sdk.chat.completions.create(model=model, messages=HELLO, max_tokens=1)  # loaded
    started = time.perf_counter()
    long = asyncio.create_task(
        sdk.chat.completions.create(model=model, messages=HELLO, max_tokens=800, temperature=0)
    )
    gaps, answered = [], []
    last = time.perf_counter()
    while not long.done():  # the loop's heartbeat, and /healthz, all along the generation
        await asyncio.sleep(0.01)
        now = time.perf_counter()
        gaps.append(now - last)
        asked = time.perf_counter()
        assert (await asgi_http.get("/healthz")).status_code == 200
        answered.append(time.perf_counter() - asked)
        last = time.perf_counter()
    completion = await long
    took = time.perf_counter() - started
    assert took > 0.5, "too short a generation to prove anything"
    assert completion.usage is not None and completion.usage.completion_tokens == 800
    assert len(answered) >= 10
    # A blocked loop would show one gap as long as the generation; a loaded machine only
    # stretches each beat, so the bound is relative to how long the generation took.
    assert max(gaps) < took / 4 and max(answered) < took / 4, (took, max(gaps), max(answered))


async def test_tools_are_refused(sdk: openai.AsyncOpenAI, causal_dir: Path) -> None:
    tool: ChatCompletionFunctionToolParam = {
        "type": "function",
        "function": {"name": "f", "parameters": {"type": "object"}},
    }
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(
            model=f"local/{causal_dir}",
            messages=HELLO,
            tools=[tool],
        )
    assert isinstance(refused.value.body, dict) and refused.value.body["param"] == "tools"
    assert "tools" in refused.value.message


async def test_directory_errors(sdk: openai.AsyncOpenAI, tmp_path: Path, causal_dir: Path) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        await sdk.chat.completions.create(
            model=f"local/{tmp_path / 'nowhere'}",
            messages=HELLO,
        )
    assert "Model not found" in missing.value.message
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(openai.NotFoundError) as no_config:
        await sdk.chat.completions.create(model=f"local/{empty}", messages=HELLO)
    # One answer for a missing folder and a folder without a model: nothing to probe with.
    nowhere = str(tmp_path / "nowhere")
    assert no_config.value.message.replace(str(empty), "X") == missing.value.message.replace(
        nowhere, "X"
    )
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "config.json").write_text(
        '{"model_type": "qwen9", "architectures": ["Qwen9ForCausalLM"]}'
    )
    with pytest.raises(openai.BadRequestError) as unsupported:
        await sdk.chat.completions.create(model=f"local/{odd}", messages=HELLO)
    assert "qwen9" in unsupported.value.message
    assert "authentication will not fix this" in unsupported.value.message
    with pytest.raises(openai.BadRequestError) as wrong_task:
        await sdk.embeddings.create(model=f"local/{causal_dir}", input="x")
    assert "causal model" in wrong_task.value.message
    with pytest.raises(openai.BadRequestError):
        await sdk.chat.completions.create(model="all-MiniLM-L6-v2", messages=HELLO)
