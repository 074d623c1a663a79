"""Hugging Face direct inference: the gateway fails over from the router to it."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from fastapi import FastAPI

from modelyard.db.engine import Database
from modelyard.gateway.adapters.hf_inference import StopFilter
from tests.fakes.fixtures import HUGGINGFACE_KEY
from tests.fakes.hf_inference import FakeHfInference
from tests.fakes.openai_chat import ChatHuggingFace
from tests.fakes.server import closed_port
from tests.gateway.conftest import add_provider

MODEL = "huggingface/HuggingFaceH4/zephyr-7b-beta"
UPSTREAM_MODEL = "HuggingFaceH4/zephyr-7b-beta"


@pytest.fixture
def hf_fake() -> Iterator[FakeHfInference]:
    with FakeHfInference(keys={HUGGINGFACE_KEY}) as fake:
        yield fake


@pytest.fixture
def router_down() -> Iterator[ChatHuggingFace]:
    with ChatHuggingFace(keys={HUGGINGFACE_KEY}, status=503) as fake:
        yield fake


@pytest.fixture
async def hf_provider(
    app: FastAPI, database: Database, hf_fake: FakeHfInference, router_down: ChatHuggingFace
) -> int:
    app.state.modelyard.settings.hf_inference_url = f"{hf_fake.url}/models"
    return await add_provider(
        database, "hf", router_down.base_url, HUGGINGFACE_KEY, kind="huggingface"
    )


pytestmark = pytest.mark.usefixtures("hf_provider")


async def test_fails_over_from_the_router_to_direct_inference(
    sdk: openai.AsyncOpenAI, hf_fake: FakeHfInference, router_down: ChatHuggingFace
) -> None:
    raw = await sdk.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Be kind."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "How are you?"},
        ],
        max_tokens=20,
        temperature=0.7,
        top_p=0.9,
        stop=["###"],
        seed=3,
    )
    completion = raw.parse()
    assert raw.headers["x-modelyard-attempts"] == "2"
    assert raw.headers["x-modelyard-model"] == UPSTREAM_MODEL
    assert len(router_down.requests) == 1
    assert completion.choices[0].message.content == "Echo: How are you?"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 4  # estimated: whitespace-separated words
    assert completion.usage.prompt_tokens == 12
    request = hf_fake.last_request
    assert request.path == f"/models/{UPSTREAM_MODEL}"
    assert request.header("authorization") == f"Bearer {HUGGINGFACE_KEY}"
    assert request.json() == {
        "inputs": "System: Be kind.\nUser: Hi\nAssistant: Hello.\nUser: How are you?\nAssistant:",
        "parameters": {
            "return_full_text": False,
            "stop": ["###", "\nUser:"],
            "max_new_tokens": 20,
            "temperature": 0.7,
            "top_p": 0.9,
            "seed": 3,
        },
        "options": {"wait_for_model": True},
    }


async def test_a_closed_router_port_fails_over_too(
    sdk: openai.AsyncOpenAI, database: Database, hf_fake: FakeHfInference
) -> None:
    await add_provider(
        database,
        "hf closed",
        f"http://127.0.0.1:{closed_port()}/v1",
        HUGGINGFACE_KEY,
        kind="huggingface",
        default=True,
    )
    raw = await sdk.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "ping"}]
    )
    # router: closed port, then the 503 fake; direct inference answers with the first key
    assert raw.headers["x-modelyard-attempts"] == "3"
    assert raw.parse().choices[0].message.content == "Echo: ping"
    assert len(hf_fake.requests) == 1


async def test_greedy_decoding_for_temperature_zero(
    sdk: openai.AsyncOpenAI, hf_fake: FakeHfInference
) -> None:
    completion = await sdk.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "x"}], temperature=0, top_p=1
    )
    assert completion.choices[0].message.content == "Echo: x"
    parameters = hf_fake.last_request.json()["parameters"]
    assert parameters["do_sample"] is False
    assert "temperature" not in parameters and "top_p" not in parameters


async def test_streaming(sdk: openai.AsyncOpenAI, hf_fake: FakeHfInference) -> None:
    stream = await sdk.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    with_choices = [chunk for chunk in chunks if chunk.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content or "" for c in with_choices]
    assert "".join(pieces) == "Echo: one two three"
    assert len([piece for piece in pieces if piece]) >= 3
    assert with_choices[-1].choices[0].finish_reason == "stop"
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None
    assert usage.completion_tokens == 5  # the server's generated_tokens: 4 words + "\nUser:"
    assert hf_fake.last_request.json()["stream"] is True


async def test_streaming_length_finish(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "a b c d"}], max_tokens=2, stream=True
    )
    chunks = [chunk async for chunk in stream if chunk.choices]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Echo: a"
    assert chunks[-1].choices[0].finish_reason == "length"


async def test_a_loading_model_is_a_server_error(
    staff_sdk: openai.AsyncOpenAI, hf_fake: FakeHfInference
) -> None:
    """(Staff see each target's outcome; users a short message.)"""
    hf_fake.loading = True
    with pytest.raises(openai.InternalServerError) as failed:
        await staff_sdk.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}]
        )
    assert failed.value.status_code == 502
    assert "Every target failed (" in failed.value.message
    assert f"Model {UPSTREAM_MODEL} is currently loading" in failed.value.message


async def test_tools_are_refused(sdk: openai.AsyncOpenAI, hf_fake: FakeHfInference) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "x"}],
            tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
        )
    assert refused.value.body["param"] == "tools"  # type: ignore[index]
    assert hf_fake.requests == []


async def test_image_content_is_refused(sdk: openai.AsyncOpenAI, hf_fake: FakeHfInference) -> None:
    with pytest.raises(openai.BadRequestError):
        await sdk.chat.completions.create(
            model=MODEL,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}
                    ],
                }
            ],
        )
    assert hf_fake.requests == []


def test_stop_filter_holds_back_a_possible_stop_sequence() -> None:
    cut = StopFilter(["\nUser:"])
    assert cut.push(" Hello") == "Hello"
    assert cut.push(" there\nUs") == " there"
    assert cut.push("er: more") == ""
    assert cut.flush() == ""
    partial = StopFilter(["###"])
    assert partial.push("a #") == "a "
    assert partial.push("b") == "#b"
    assert partial.flush() == ""
    tail = StopFilter(["END"])
    assert tail.push("x EN") == "x "
    assert tail.flush() == "EN"
