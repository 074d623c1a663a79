"""``n`` choices from a local model: one generation per choice (batched together), and
answers that follow OpenAI's spec, plain and streamed."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.gateway.chat_stream import answer, choices_by_index, stream_chunks

HELLO = [{"role": "user", "content": "Hello"}]


async def test_n_choices_with_summed_usage(
    asgi_http: httpx.AsyncClient, user_token: str, causal_dir: Path
) -> None:
    model = f"local/{causal_dir}"
    one = await answer(asgi_http, user_token, {"model": model, "messages": HELLO, "max_tokens": 4})
    assert one.status_code == 200, one.text
    single = one.json()["usage"]

    body = {"model": model, "messages": HELLO, "max_tokens": 4, "n": 3, "temperature": 0}
    three = await answer(asgi_http, user_token, body)
    assert three.status_code == 200, three.text
    choices = three.json()["choices"]
    assert [choice["index"] for choice in choices] == [0, 1, 2]
    # Greedy decoding: every choice is the one-choice answer.
    expected = one.json()["choices"][0]["message"]["content"]
    assert {choice["message"]["content"] for choice in choices} == {expected}
    usage = three.json()["usage"]
    assert usage["prompt_tokens"] == 3 * single["prompt_tokens"]
    assert usage["completion_tokens"] == 3 * single["completion_tokens"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_a_stream_follows_the_spec_and_n_is_refused_there(
    asgi_http: httpx.AsyncClient, user_token: str, causal_dir: Path
) -> None:
    body = {"model": f"local/{causal_dir}", "messages": HELLO, "max_tokens": 3}
    response, chunks = await stream_chunks(
        asgi_http, user_token, {**body, "stream_options": {"include_usage": True}}
    )
    assert response.status_code == 200
    assert choices_by_index(chunks)[0]["finish_reason"] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 3
    refused, _ = await stream_chunks(asgi_http, user_token, {**body, "n": 2})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "n"
