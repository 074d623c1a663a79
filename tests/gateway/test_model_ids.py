"""A model id can never change an upstream URL (issue 17, class 5).

Each adapter that puts the model into a URL is run against its fake upstream, which
records the raw request path (as sent on the request line: escapes kept, dot segments not
removed). A normal id arrives at the exact expected path; a hostile id is a 400
``invalid_model`` that reaches no upstream at all, through the adapter itself and through
the public API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from modelyard.db.engine import Database
from modelyard.errors import BadRequestError
from modelyard.gateway.adapters.base import Target
from modelyard.gateway.adapters.gemini import GeminiAdapter
from modelyard.gateway.adapters.hf_inference import HfInferenceAdapter
from modelyard.gateway.adapters.model_ids import check_model_id, model_path
from modelyard.gateway.http import UpstreamHttp
from modelyard.gateway.schemas import ChatCompletionRequest, EmbeddingRequest
from modelyard.gateway.upstream_errors import UpstreamError
from modelyard.providers.credentials import Credential
from modelyard.providers.kinds import ProviderKind
from tests.fakes.anthropic_chat import ChatAnthropic
from tests.fakes.fixtures import ANTHROPIC_KEY, GEMINI_KEY, HUGGINGFACE_KEY, OPENAI_KEY
from tests.fakes.gemini_chat import EMBEDDING_MODEL, ChatGemini
from tests.fakes.hf_inference import FakeHfInference
from tests.fakes.openai_chat import ChatHuggingFace, ChatOpenAI
from tests.gateway.conftest import add_provider
from tests.helpers import bearer

ASK = [{"role": "user", "content": "hello"}]

#: Ids no adapter may send anywhere (they could change the path, query, fragment or host).
HOSTILE = [
    "../../admin",
    "x?key=1",
    "x#frag",
    "a%2Fb",
    "a b",
    "a\nb",
    "a\x00b",
    "a\\b",
    "a\tb",
    "./x",
    "x/..",
    "a\x7fb",
]
#: Ids harmless in a JSON body but that no URL-building adapter may send.
URL_HOSTILE = [
    *HOSTILE,
    "@evil.com",
    "//evil.com/x",
    "/x",
    "x/",
    "a:b",
    "a/b/c",
    "-x",
    "é",
]


def chat_request(model: str, **extra: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": model, "messages": ASK, **extra})


def _target(api: str, base_url: str, model: str, kind: ProviderKind, key: str) -> Target:
    return Target(api, base_url, model, Credential(kind, "admin", key, base_url))


def assert_invalid_model(error: BadRequestError) -> None:
    assert error.status_code == 400
    assert error.param == "model" and error.code == "invalid_model"


@pytest.fixture
async def http() -> AsyncIterator[UpstreamHttp]:
    client = UpstreamHttp()
    yield client
    await client.aclose()


@pytest.fixture
def gemini() -> Iterator[ChatGemini]:
    with ChatGemini(keys={GEMINI_KEY}) as fake:
        yield fake


@pytest.fixture
def hf_direct() -> Iterator[FakeHfInference]:
    models = ("HuggingFaceH4/zephyr-7b-beta", "gpt2")
    with FakeHfInference(keys={HUGGINGFACE_KEY}, models=models) as fake:
        yield fake


# -- the helper --------------------------------------------------------------------------


@pytest.mark.parametrize("model", HOSTILE)
def test_check_model_id_refuses_what_could_steer_a_request(model: str) -> None:
    with pytest.raises(BadRequestError) as refused:
        check_model_id(model)
    assert_invalid_model(refused.value)
    assert "\n" not in refused.value.message and "\x00" not in refused.value.message


@pytest.mark.parametrize("model", ["gpt-4o", "@evil.com", "/models/llama-3", "org/name:fast"])
def test_check_model_id_lets_body_only_ids_through(model: str) -> None:
    check_model_id(model)  # vLLM serves paths as names; the HF router takes org/name:provider


def test_model_path_keeps_owner_and_name_and_refuses_more() -> None:
    assert model_path("Qwen/Qwen2.5-7B_v1.0", segments=2, api="x") == "Qwen/Qwen2.5-7B_v1.0"
    assert model_path("gpt2", segments=2, api="x") == "gpt2"
    for model in URL_HOSTILE:
        with pytest.raises(BadRequestError) as refused:
            model_path(model, segments=2, api="x")
        assert_invalid_model(refused.value)
    with pytest.raises(BadRequestError):
        model_path("org/name", api="x")  # one segment only
    with pytest.raises(BadRequestError):
        model_path("x" * 257, api="x")


# -- Gemini against its fake ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("gemini-2.5-flash", "/v1beta/models/gemini-2.5-flash:generateContent"),
        ("models/gemini-2.5-flash", "/v1beta/models/gemini-2.5-flash:generateContent"),
        ("tunedModels/my-tuned-1", "/v1beta/tunedModels/my-tuned-1:generateContent"),
    ],
)
async def test_gemini_sends_the_exact_path(
    http: UpstreamHttp, gemini: ChatGemini, model: str, path: str
) -> None:
    adapter = GeminiAdapter(http)
    target = _target("gemini", gemini.url, model, ProviderKind.GOOGLE, GEMINI_KEY)
    try:
        answer = await adapter.chat(chat_request(model), target)
    except UpstreamError as error:  # the fake serves no tuned models: a 404, path recorded
        assert model.startswith("tunedModels/") and error.status == 404
    else:
        assert answer["choices"][0]["message"]["content"] == "Echo: hello"
    assert [request.raw_path for request in gemini.requests] == [path]
    assert gemini.last_request.query == ""


async def test_gemini_stream_and_embeddings_paths(http: UpstreamHttp, gemini: ChatGemini) -> None:
    adapter = GeminiAdapter(http)
    chat = _target("gemini", gemini.url, "gemini-2.5-flash", ProviderKind.GOOGLE, GEMINI_KEY)
    chunks = [c async for c in adapter.stream_chat(chat_request("gemini-2.5-flash"), chat)]
    assert chunks
    stream = gemini.last_request
    assert stream.raw_path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert stream.query == "alt=sse"
    embed = _target("gemini", gemini.url, EMBEDDING_MODEL, ProviderKind.GOOGLE, GEMINI_KEY)
    answer = await adapter.embed(EmbeddingRequest(model=EMBEDDING_MODEL, input="hi"), embed)
    assert len(answer["data"]) == 1
    request = gemini.last_request
    assert request.raw_path == f"/v1beta/models/{EMBEDDING_MODEL}:batchEmbedContents"
    assert request.json()["requests"][0]["model"] == f"models/{EMBEDDING_MODEL}"


@pytest.mark.parametrize(
    "model",
    [
        *URL_HOSTILE,
        "gemini-2.5-flash:streamGenerateContent",
        "models/../x",
        "tunedModels/../../x",
        "models/a/b",
        "models/",
        "other/gemini-2.5-flash",
    ],
)
async def test_gemini_refuses_a_hostile_id_before_any_request(
    http: UpstreamHttp, gemini: ChatGemini, model: str
) -> None:
    adapter = GeminiAdapter(http)
    target = _target("gemini", gemini.url, model, ProviderKind.GOOGLE, GEMINI_KEY)
    with pytest.raises(BadRequestError) as refused:
        adapter.check_model(model)
    assert_invalid_model(refused.value)
    for call in (
        adapter.chat(chat_request(model), target),
        adapter.embed(EmbeddingRequest(model=model, input="hi"), target),
    ):
        with pytest.raises(BadRequestError) as direct:
            await call
        assert_invalid_model(direct.value)
    with pytest.raises(BadRequestError):
        await anext(aiter(adapter.stream_chat(chat_request(model), target)))
    assert gemini.requests == []


# -- Hugging Face direct inference against its fake ----------------------------------------


@pytest.mark.parametrize("model", ["HuggingFaceH4/zephyr-7b-beta", "gpt2"])
async def test_hf_inference_sends_the_exact_path(
    http: UpstreamHttp, hf_direct: FakeHfInference, model: str
) -> None:
    adapter = HfInferenceAdapter(http)
    base = f"{hf_direct.url}/models"
    target = _target("hf_inference", base, model, ProviderKind.HUGGINGFACE, HUGGINGFACE_KEY)
    answer = await adapter.chat(chat_request(model), target)
    assert answer["choices"][0]["message"]["content"] == "Echo: hello"
    chunks = [c async for c in adapter.stream_chat(chat_request(model), target)]
    assert chunks
    assert [request.raw_path for request in hf_direct.requests] == [f"/models/{model}"] * 2
    assert all(request.query == "" for request in hf_direct.requests)


@pytest.mark.parametrize("model", URL_HOSTILE)
async def test_hf_inference_refuses_a_hostile_id_before_any_request(
    http: UpstreamHttp, hf_direct: FakeHfInference, model: str
) -> None:
    adapter = HfInferenceAdapter(http)
    base = f"{hf_direct.url}/models"
    target = _target("hf_inference", base, model, ProviderKind.HUGGINGFACE, HUGGINGFACE_KEY)
    with pytest.raises(BadRequestError) as refused:
        await adapter.chat(chat_request(model), target)
    assert_invalid_model(refused.value)
    with pytest.raises(BadRequestError):
        await anext(aiter(adapter.stream_chat(chat_request(model), target)))
    assert hf_direct.requests == []


# -- through the public API ----------------------------------------------------------------


@pytest.fixture
async def user_headers(user_token: str) -> dict[str, str]:
    return bearer(user_token)


async def _post(
    http: httpx.AsyncClient, headers: dict[str, str], path: str, body: dict[str, Any]
) -> httpx.Response:
    return await http.post(path, json=body, headers=headers)


def assert_openai_400(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "model" and error["code"] == "invalid_model"
    assert error["message"].startswith("Invalid model id ")
    assert set(response.json()) == {"error"}


@pytest.mark.parametrize("rest", [*URL_HOSTILE, "models/../../x", "x:batchEmbedContents"])
async def test_api_refuses_hostile_gemini_ids_with_no_upstream_call(
    asgi_http: httpx.AsyncClient,
    user_headers: dict[str, str],
    database: Database,
    gemini: ChatGemini,
    rest: str,
) -> None:
    await add_provider(database, "gemini", gemini.url, GEMINI_KEY, kind="google")
    model = f"google/{rest}"
    chat = await _post(
        asgi_http, user_headers, "/v1/chat/completions", {"model": model, "messages": ASK}
    )
    assert_openai_400(chat)
    stream = await _post(
        asgi_http,
        user_headers,
        "/v1/chat/completions",
        {"model": model, "messages": ASK, "stream": True},
    )
    assert_openai_400(stream)
    embed = await _post(asgi_http, user_headers, "/v1/embeddings", {"model": model, "input": "x"})
    assert_openai_400(embed)
    assert gemini.requests == []
    fine = await _post(
        asgi_http,
        user_headers,
        "/v1/chat/completions",
        {"model": "google/gemini-2.5-flash", "messages": ASK},
    )
    assert fine.status_code == 200 and fine.headers["x-modelyard-attempts"] == "1"
    assert [r.raw_path for r in gemini.requests] == [
        "/v1beta/models/gemini-2.5-flash:generateContent"
    ]


async def test_api_refuses_google_dot_dot_on_the_anthropic_route_too(
    asgi_http: httpx.AsyncClient,
    user_headers: dict[str, str],
    database: Database,
    gemini: ChatGemini,
) -> None:
    await add_provider(database, "gemini", gemini.url, GEMINI_KEY, kind="google")
    response = await asgi_http.post(
        "/v1/messages",
        json={"model": "google/../../x", "max_tokens": 10, "messages": ASK},
        headers=user_headers,
    )
    assert response.status_code == 400, response.text
    assert "Invalid model id" in response.text
    assert gemini.requests == []


@pytest.fixture
def hf_router() -> Iterator[ChatHuggingFace]:
    with ChatHuggingFace(keys={HUGGINGFACE_KEY}, status=503) as fake:
        yield fake


@pytest.fixture
async def hf_provider(
    app: FastAPI, database: Database, hf_direct: FakeHfInference, hf_router: ChatHuggingFace
) -> None:
    app.state.modelyard.settings.hf_inference_url = f"{hf_direct.url}/models"
    await add_provider(database, "hf", hf_router.base_url, HUGGINGFACE_KEY, kind="huggingface")


@pytest.mark.parametrize("rest", HOSTILE)
async def test_api_refuses_hostile_hugging_face_ids_on_both_endpoints(
    asgi_http: httpx.AsyncClient,
    user_headers: dict[str, str],
    hf_provider: None,
    hf_direct: FakeHfInference,
    hf_router: ChatHuggingFace,
    rest: str,
) -> None:
    response = await _post(
        asgi_http,
        user_headers,
        "/v1/chat/completions",
        {"model": f"huggingface/{rest}", "messages": ASK},
    )
    assert_openai_400(response)
    assert hf_router.requests == [] and hf_direct.requests == []


@pytest.mark.parametrize("rest", ["@evil.com", "//evil.com/x", "org/name:novita", "a/b/c"])
async def test_api_sends_router_only_ids_in_the_body_and_never_to_direct_inference(
    asgi_http: httpx.AsyncClient,
    user_headers: dict[str, str],
    hf_provider: None,
    hf_direct: FakeHfInference,
    hf_router: ChatHuggingFace,
    rest: str,
) -> None:
    hf_router.fail_with(None)  # up, but without such a model: a 404
    response = await _post(
        asgi_http,
        user_headers,
        "/v1/chat/completions",
        {"model": f"huggingface/{rest}", "messages": ASK},
    )
    assert response.status_code == 404, response.text  # the router was the only target
    assert [r.raw_path for r in hf_router.requests] == ["/v1/chat/completions"]
    assert hf_router.last_request.json()["model"] == rest
    assert hf_direct.requests == []


async def test_api_hugging_face_normal_id_reaches_direct_inference_at_the_exact_path(
    asgi_http: httpx.AsyncClient,
    user_headers: dict[str, str],
    hf_provider: None,
    hf_direct: FakeHfInference,
) -> None:
    response = await _post(
        asgi_http,
        user_headers,
        "/v1/chat/completions",
        {"model": "huggingface/HuggingFaceH4/zephyr-7b-beta", "messages": ASK},
    )
    assert response.status_code == 200, response.text
    assert [r.raw_path for r in hf_direct.requests] == ["/models/HuggingFaceH4/zephyr-7b-beta"]


@pytest.fixture
def openai_fake() -> Iterator[ChatOpenAI]:
    with ChatOpenAI(keys={OPENAI_KEY}) as fake:
        yield fake


@pytest.fixture
def anthropic_fake() -> Iterator[ChatAnthropic]:
    with ChatAnthropic(keys={ANTHROPIC_KEY}) as fake:
        yield fake


@pytest.mark.parametrize("rest", HOSTILE)
async def test_api_refuses_hostile_ids_for_body_adapters_too(
    asgi_http: httpx.AsyncClient,
    user_headers: dict[str, str],
    database: Database,
    openai_fake: ChatOpenAI,
    anthropic_fake: ChatAnthropic,
    rest: str,
) -> None:
    await add_provider(database, "openai", openai_fake.base_url, OPENAI_KEY)
    await add_provider(database, "claude", anthropic_fake.url, ANTHROPIC_KEY, kind="anthropic")
    for kind in ("openai", "anthropic"):
        response = await _post(
            asgi_http,
            user_headers,
            "/v1/chat/completions",
            {"model": f"{kind}/{rest}", "messages": ASK},
        )
        assert_openai_400(response)
    assert openai_fake.requests == [] and anthropic_fake.requests == []


@pytest.mark.parametrize("rest", ["@evil.com", "//evil.com/x"])
async def test_body_adapters_keep_the_path_whatever_the_id(
    asgi_http: httpx.AsyncClient,
    user_headers: dict[str, str],
    database: Database,
    openai_fake: ChatOpenAI,
    anthropic_fake: ChatAnthropic,
    rest: str,
) -> None:
    await add_provider(database, "openai", openai_fake.base_url, OPENAI_KEY)
    await add_provider(database, "claude", anthropic_fake.url, ANTHROPIC_KEY, kind="anthropic")
    for kind in ("openai", "anthropic"):
        response = await _post(
            asgi_http,
            user_headers,
            "/v1/chat/completions",
            {"model": f"{kind}/{rest}", "messages": ASK},
        )
        assert response.status_code == 404, response.text  # the fakes lack such a model
    assert [r.raw_path for r in openai_fake.requests] == ["/v1/chat/completions"]
    assert openai_fake.last_request.json()["model"] == rest
    assert [r.raw_path for r in anthropic_fake.requests] == ["/v1/messages"]
    assert anthropic_fake.last_request.json()["model"] == rest
