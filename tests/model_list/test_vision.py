"""Which models take images: ``vision`` in ``GET /v1/models`` (the rule of
:mod:`modelyard.model_list.vision`: known multimodal families by their model id, a route
by its first target, local models never)."""

from __future__ import annotations

import httpx
import pytest

from modelyard.model_list.vision import name_takes_images, route_takes_images, takes_images
from tests.model_list.conftest import Caller, add_route


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o",
        "gpt-4o-mini",
        "chatgpt-4o-latest",
        "gpt-4.1-nano",
        "gpt-5-mini",
        "o1",
        "o3",
        "o4-mini",
        "ft:gpt-4o-mini-2024-07-18:acme::abc123",
        "claude-3-5-sonnet-latest",
        "claude-haiku-4-5",
        "claude-opus-4-1",
        "gemini-2.5-flash",
        "llama-3.2-11b-vision-preview",
        "Qwen/Qwen2.5-VL-7B-Instruct",
        "pixtral-12b",
    ],
)
def test_multimodal_families_take_images(model: str) -> None:
    assert takes_images(model)


@pytest.mark.parametrize(
    "model",
    [
        "gpt-3.5-turbo",
        "gpt-4o-audio-preview",
        "gpt-4o-mini-tts",
        "gpt-4o-transcribe",
        "o1-mini",
        "o3-mini",
        "claude-2.1",
        "gemini-embedding-001",
        "text-embedding-3-small",
        "llama-3.1-8b-instant",
        "acme-house-1",
        "",
    ],
)
def test_other_models_take_none(model: str) -> None:
    assert not takes_images(model)


def test_names_kinds_and_routes() -> None:
    assert name_takes_images("openai/gpt-4o") and name_takes_images("gpt-4o")
    assert not name_takes_images("local/gpt-4o")  # local models never
    assert not takes_images("gpt-4o", kind="local")
    first_vision = [{"provider": "openai", "model": "gpt-4o"}, {"provider": "groq", "model": "x"}]
    assert route_takes_images(first_vision)
    assert not route_takes_images(list(reversed(first_vision)))
    assert not route_takes_images([])


@pytest.mark.usefixtures("openai_provider")
async def test_the_list_says_which_models_take_images(
    http: httpx.AsyncClient, staff: dict[str, str], alice: Caller
) -> None:
    await add_route(http, staff, "seeing", [{"provider": "openai", "model": "gpt-4o"}])
    await add_route(
        http,
        staff,
        "reading",
        [
            {"provider": "openai", "model": "gpt-3.5-turbo"},
            {"provider": "openai", "model": "gpt-4o"},
        ],
    )
    body = (await http.get("/v1/models", headers=alice.headers)).json()
    vision = {entry["id"]: entry["vision"] for entry in body["data"]}
    assert vision["gpt-4o-mini"] is True  # a catalog model of a multimodal family
    assert vision["gpt-3.5-turbo"] is False
    assert vision["seeing"] is True and vision["reading"] is False  # the first target's
    assert vision["local/all-MiniLM-L6-v2"] is False
    embeddings = [entry for entry in body["data"] if entry["kind"] != "chat"]
    assert embeddings and not any(entry["vision"] for entry in embeddings)
    one = await http.get("/v1/models/gpt-4o-mini", headers=alice.headers)
    assert one.json()["vision"] is True
