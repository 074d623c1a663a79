"""Legacy ``POST /v1/completions`` with a local causal model: the prompt continued as raw
text (no chat template), compared with transformers run directly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import torch

from tests.helpers import bearer
from tests.openai_spec import assert_valid, assert_valid_completion_event

PROMPTS = ["The quick brown fox", "def add(a, b):"]


def continued(reference: tuple[Any, Any], prompt: str, max_tokens: int) -> tuple[str, int]:
    """Greedy continuation of ``prompt`` as raw text, and the prompt's length in tokens."""
    model, tokenizer = reference
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=max_tokens, do_sample=False, pad_token_id=0)
    text = tokenizer.decode(
        out[0, ids.shape[1] :], skip_special_tokens=True, clean_up_tokenization_spaces=False
    )
    return text, int(ids.shape[1])


async def test_prompts_are_continued_as_raw_text(
    sdk: openai.AsyncOpenAI, causal_dir: Path, reference: tuple[Any, Any]
) -> None:
    raw = await sdk.completions.with_raw_response.create(
        model=f"local/{causal_dir}", prompt=PROMPTS, max_tokens=6, temperature=0
    )
    assert_valid("CreateCompletionResponse", raw.http_response.json())
    completion = raw.parse()
    expected = [continued(reference, prompt, 6) for prompt in PROMPTS]
    assert [(c.index, c.text) for c in completion.choices] == [
        (0, expected[0][0]),
        (1, expected[1][0]),
    ]
    assert all(c.finish_reason == "length" for c in completion.choices)  # it never emits EOS
    assert completion.usage is not None
    # The prompts' own tokens: no chat template around them.
    assert completion.usage.prompt_tokens == expected[0][1] + expected[1][1]
    assert completion.usage.completion_tokens == 12
    assert raw.headers["x-modelyard-provider"] == "local"


async def test_n_choices_per_prompt(
    sdk: openai.AsyncOpenAI, causal_dir: Path, reference: tuple[Any, Any]
) -> None:
    completion = await sdk.completions.create(
        model=f"local/{causal_dir}", prompt=PROMPTS, max_tokens=4, temperature=0, n=2
    )
    first, second = (continued(reference, prompt, 4)[0] for prompt in PROMPTS)
    assert [(c.index, c.text) for c in completion.choices] == [
        (0, first),
        (1, first),
        (2, second),
        (3, second),
    ]
    assert completion.usage is not None and completion.usage.completion_tokens == 16


async def test_the_legacy_default_of_16_tokens(sdk: openai.AsyncOpenAI, causal_dir: Path) -> None:
    completion = await sdk.completions.create(model=f"local/{causal_dir}", prompt="Once")
    assert completion.usage is not None and completion.usage.completion_tokens == 16


async def test_streamed_with_echo(
    sdk: openai.AsyncOpenAI, causal_dir: Path, reference: tuple[Any, Any]
) -> None:
    stream = await sdk.completions.create(
        model=f"local/{causal_dir}",
        prompt=PROMPTS[0],
        max_tokens=8,
        temperature=0,
        echo=True,
        stream=True,
        stream_options={"include_usage": True},
    )
    events = []
    async for event in stream:
        assert_valid_completion_event(event.model_dump(exclude_unset=True))
        events.append(event)
    text = "".join(c.text for e in events for c in e.choices)
    expected, prompt_tokens = continued(reference, PROMPTS[0], 8)
    assert text == PROMPTS[0] + expected
    assert len([e for e in events if e.choices and e.choices[0].text]) >= 3
    assert [c.finish_reason for e in events for c in e.choices][-1] == "length"
    usage = events[-1].usage
    assert usage is not None and not events[-1].choices
    assert (usage.prompt_tokens, usage.completion_tokens) == (prompt_tokens, 8)


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("suffix", "x"),
        ("logprobs", 1),
        ("max_tokens", 0),
        ("presence_penalty", 1),
        ("n", 2),  # streamed
    ],
)
async def test_what_a_local_model_cannot_do_is_refused_by_name(
    asgi_http: httpx.AsyncClient, user_token: str, causal_dir: Path, parameter: str, value: Any
) -> None:
    body = {"model": f"local/{causal_dir}", "prompt": "x", parameter: value}
    if parameter == "n":
        body["stream"] = True
    response = await asgi_http.post("/v1/completions", json=body, headers=bearer(user_token))
    assert response.status_code == 400, response.text
    body = response.json()
    assert_valid("ErrorResponse", body)
    assert body["error"]["param"] == parameter and parameter in body["error"]["message"]
