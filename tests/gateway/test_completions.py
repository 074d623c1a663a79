"""OpenAI's legacy ``POST /v1/completions`` with the official `openai` SDK as the client:
passed through to an OpenAI-compatible upstream, translated for Anthropic's Messages API.

Every answer and stream event is checked against OpenAI's published spec.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI

from modelyard.db.engine import Database
from modelyard.usage.recorder import UsageRecorder
from modelyard.usage.tokens import count_tokens
from tests.fakes.anthropic_chat import ChatAnthropic, message_text
from tests.fakes.fixtures import ANTHROPIC_KEY, GEMINI_KEY, GROQ_KEY, OPENAI_KEY
from tests.fakes.gemini_chat import ChatGemini
from tests.fakes.openai_chat import ChatGroq, ChatOpenAI
from tests.gateway.conftest import add_provider
from tests.helpers import bearer, make_token, make_user
from tests.limits.helpers import set_limits, token_record
from tests.openai_spec import assert_valid, assert_valid_completion_event
from tests.usage.conftest import usage_rows

pytestmark = pytest.mark.usefixtures("openai_provider", "anthropic_provider")

INSTRUCT = "openai/gpt-3.5-turbo-instruct"


@pytest.fixture(autouse=True)
def instruct_model(upstream: ChatOpenAI) -> None:
    upstream.models.append("gpt-3.5-turbo-instruct")


@pytest.fixture
def anthropic() -> Iterator[ChatAnthropic]:
    with ChatAnthropic(keys={ANTHROPIC_KEY}) as fake:
        yield fake


@pytest.fixture
async def anthropic_provider(database: Database, anthropic: ChatAnthropic) -> int:
    return await add_provider(database, "claude", anthropic.url, ANTHROPIC_KEY, kind="anthropic")


@pytest.fixture
def recorder(app: FastAPI) -> UsageRecorder:
    usage: UsageRecorder = app.state.modelyard.usage
    return usage


async def streamed(stream: Any) -> list[Any]:
    """Every event of an SDK stream, each checked against the spec."""
    events = []
    async for event in stream:
        assert_valid_completion_event(event.model_dump(exclude_unset=True))
        events.append(event)
    return events


def texts_by_index(events: list[Any]) -> dict[int, str]:
    texts: dict[int, str] = {}
    for event in events:
        for choice in event.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
    return texts


# -- passed through to an OpenAI-compatible upstream ---------------------------------------


async def test_passed_through_with_every_parameter(
    sdk: openai.AsyncOpenAI, upstream: ChatOpenAI
) -> None:
    raw = await sdk.completions.with_raw_response.create(
        model=INSTRUCT,
        prompt="def add(a, b):",
        suffix="    return total",
        max_tokens=3,
        temperature=0,
        top_p=0.5,
        stop=["\n\n"],
        echo=True,
        logprobs=2,
        seed=7,
        user="user-42",
        presence_penalty=0.5,
    )
    assert_valid("CreateCompletionResponse", raw.http_response.json())
    completion = raw.parse()
    assert completion.object == "text_completion"
    assert completion.choices[0].text == "def add(a, b):Echo: def add(a,"
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].logprobs is not None
    assert completion.choices[0].logprobs.tokens == ["def", "add(a,", "b):Echo:", "def", "add(a,"]
    assert raw.headers["x-modelyard-provider"] == "openai"
    sent = upstream.last_request
    assert sent.path == "/v1/completions"
    assert sent.header("authorization") == f"Bearer {OPENAI_KEY}"
    assert sent.json() == {
        "model": "gpt-3.5-turbo-instruct",
        "prompt": "def add(a, b):",
        "suffix": "    return total",
        "max_tokens": 3,
        "temperature": 0,
        "top_p": 0.5,
        "stop": ["\n\n"],
        "echo": True,
        "logprobs": 2,
        "seed": 7,
        "user": "user-42",
        "presence_penalty": 0.5,
        "stream": False,
    }


async def test_a_prompt_list_gets_n_choices_per_prompt_in_order(
    sdk: openai.AsyncOpenAI, upstream: ChatOpenAI
) -> None:
    raw = await sdk.completions.with_raw_response.create(
        model=INSTRUCT, prompt=["first prompt", "second prompt"], n=2
    )
    assert_valid("CreateCompletionResponse", raw.http_response.json())
    completion = raw.parse()
    assert [(c.index, c.text) for c in completion.choices] == [
        (0, "Echo: first prompt"),
        (1, "Echo: first prompt"),
        (2, "Echo: second prompt"),
        (3, "Echo: second prompt"),
    ]
    assert upstream.last_request.json()["prompt"] == ["first prompt", "second prompt"]


@pytest.mark.parametrize("include_usage", [True, False])
async def test_streamed_through(
    sdk: openai.AsyncOpenAI, upstream: ChatOpenAI, include_usage: bool
) -> None:
    stream = await sdk.completions.create(
        model=INSTRUCT,
        prompt=["one two three", "four"],
        stream=True,
        stream_options={"include_usage": include_usage},
    )
    events = await streamed(stream)
    assert texts_by_index(events) == {0: "Echo: one two three", 1: "Echo: four"}
    assert len([e for e in events if e.choices]) >= 4
    reasons = [c.finish_reason for e in events for c in e.choices]
    assert reasons.count("stop") == 2 and set(reasons) == {None, "stop"}
    usages = [e.usage for e in events if e.usage is not None]
    assert len(usages) == (1 if include_usage else 0)
    if include_usage:
        assert (usages[0].prompt_tokens, usages[0].completion_tokens) == (4, 6)
    sent = upstream.last_request.json()
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("stream", [False, True])
async def test_fails_over_to_the_next_key_on_a_rate_limit(
    sdk: openai.AsyncOpenAI, database: Database, upstream: ChatOpenAI, stream: bool
) -> None:
    with ChatOpenAI(keys={OPENAI_KEY}, status=429) as limited:
        limited.models.append("gpt-3.5-turbo-instruct")
        await add_provider(database, "limited", limited.base_url, OPENAI_KEY, default=True)
        raw = await sdk.completions.with_raw_response.create(
            model=INSTRUCT, prompt="rotate", stream=stream
        )
        assert raw.headers["x-modelyard-attempts"] == "2"
        if stream:
            assert texts_by_index(await streamed(raw.parse())) == {0: "Echo: rotate"}
        else:
            assert raw.parse().choices[0].text == "Echo: rotate"
        assert [r.path for r in limited.requests] == ["/v1/completions"]
        assert upstream.last_request.path == "/v1/completions"


# -- translated for a chat-only provider ---------------------------------------------------


async def test_translated_to_anthropic_messages(
    sdk: openai.AsyncOpenAI, anthropic: ChatAnthropic
) -> None:
    raw = await sdk.completions.with_raw_response.create(
        model="claude-sonnet-4-5",
        prompt=["hello there", "one two three four five six"],
        max_tokens=4,
        temperature=0.5,
        stop=["never"],
    )
    assert_valid("CreateCompletionResponse", raw.http_response.json())
    completion = raw.parse()
    assert completion.id.startswith("cmpl-") and completion.object == "text_completion"
    assert [(c.index, c.text, c.finish_reason) for c in completion.choices] == [
        (0, "Echo: hello there", "stop"),
        (1, "Echo: one two three", "length"),
    ]
    assert all(c.logprobs is None for c in completion.choices)
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (8, 7)
    assert raw.headers["x-modelyard-provider"] == "anthropic"
    sent = [r.json() for r in anthropic.requests if r.path == "/v1/messages"]
    assert [[(m["role"], message_text(m["content"])) for m in b["messages"]] for b in sent] == [
        [("user", "hello there")],
        [("user", "one two three four five six")],
    ]
    assert {(b["max_tokens"], b["temperature"], tuple(b["stop_sequences"])) for b in sent} == {
        (4, 0.5, ("never",))
    }


async def test_n_choices_through_an_api_that_answers_one_per_call(
    sdk: openai.AsyncOpenAI, anthropic: ChatAnthropic
) -> None:
    raw = await sdk.completions.with_raw_response.create(
        model="claude-sonnet-4-5", prompt=["first", "second"], n=2
    )
    assert_valid("CreateCompletionResponse", raw.http_response.json())
    assert [(c.index, c.text) for c in raw.parse().choices] == [
        (0, "Echo: first"),
        (1, "Echo: first"),
        (2, "Echo: second"),
        (3, "Echo: second"),
    ]
    sent = [r.json() for r in anthropic.requests if r.path == "/v1/messages"]
    assert sorted(message_text(b["messages"][0]["content"]) for b in sent) == [
        "first",
        "first",
        "second",
        "second",
    ]
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.completions.create(model="claude-sonnet-4-5", prompt="x", n=2, stream=True)
    assert refused.value.body["param"] == "n"  # type: ignore[index]


async def test_the_legacy_default_of_16_tokens(
    sdk: openai.AsyncOpenAI, anthropic: ChatAnthropic
) -> None:
    await sdk.completions.create(model="claude-sonnet-4-5", prompt="hi")
    assert anthropic.last_request.json()["max_tokens"] == 16


async def test_streamed_translation(sdk: openai.AsyncOpenAI, anthropic: ChatAnthropic) -> None:
    stream = await sdk.completions.create(
        model="claude-sonnet-4-5",
        prompt=["alpha beta gamma", "delta"],
        stream=True,
        stream_options={"include_usage": True},
    )
    events = await streamed(stream)
    assert texts_by_index(events) == {0: "Echo: alpha beta gamma", 1: "Echo: delta"}
    assert len({e.id for e in events}) == 1 and events[0].id.startswith("cmpl-")
    assert [c.finish_reason for e in events for c in e.choices if c.finish_reason] == [
        "stop",
        "stop",
    ]
    usage = events[-1].usage
    assert usage is not None and not events[-1].choices
    assert (usage.prompt_tokens, usage.completion_tokens) == (4, 6)
    assert [message_text(r.json()["messages"][0]["content"]) for r in anthropic.requests[-2:]] == [
        "alpha beta gamma",
        "delta",
    ]


@pytest.mark.parametrize("stream", [False, True])
async def test_translated_to_gemini(
    sdk: openai.AsyncOpenAI, database: Database, stream: bool
) -> None:
    with ChatGemini(keys={GEMINI_KEY}) as gemini:
        await add_provider(database, "gemini", gemini.url, GEMINI_KEY, kind="google")
        raw = await sdk.completions.with_raw_response.create(
            model="gemini-2.5-flash", prompt="hello there", max_tokens=5, stream=stream
        )
        assert raw.headers["x-modelyard-provider"] == "google"
        if stream:
            assert texts_by_index(await streamed(raw.parse())) == {0: "Echo: hello there"}
        else:
            assert_valid("CreateCompletionResponse", raw.http_response.json())
            assert raw.parse().choices[0].text == "Echo: hello there"
        sent = gemini.last_request.json()
        assert sent["contents"] == [{"role": "user", "parts": [{"text": "hello there"}]}]
        assert sent["generationConfig"]["maxOutputTokens"] == 5


@pytest.mark.parametrize("stream", [False, True])
async def test_an_openai_format_api_without_completions_answers_through_chat(
    sdk: openai.AsyncOpenAI, database: Database, stream: bool
) -> None:
    with ChatGroq(keys={GROQ_KEY}) as groq:
        await add_provider(database, "groq", groq.base_url, GROQ_KEY, kind="groq")
        raw = await sdk.completions.with_raw_response.create(
            model="groq/llama-3.1-8b-instant", prompt="hello there", stream=stream
        )
        assert raw.headers["x-modelyard-provider"] == "groq"
        if stream:
            assert texts_by_index(await streamed(raw.parse())) == {0: "Echo: hello there"}
        else:
            assert_valid("CreateCompletionResponse", raw.http_response.json())
            assert raw.parse().choices[0].text == "Echo: hello there"
        assert [r.path for r in groq.requests] == ["/openai/v1/chat/completions"]
        sent = groq.last_request.json()
        assert sent["messages"] == [{"role": "user", "content": "hello there"}]
        assert (sent["model"], sent["max_tokens"]) == ("llama-3.1-8b-instant", 16)


@pytest.mark.parametrize(
    ("parameter", "value"),
    [("suffix", "tail"), ("echo", True), ("logprobs", 1), ("best_of", 3), ("max_tokens", 0)],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_what_needs_a_completions_endpoint_is_refused_by_name(
    asgi_http: httpx.AsyncClient,
    user_token: str,
    anthropic: ChatAnthropic,
    parameter: str,
    value: Any,
    stream: bool,
) -> None:
    response = await asgi_http.post(
        "/v1/completions",
        json={"model": "claude-sonnet-4-5", "prompt": "x", parameter: value, "stream": stream},
        headers=bearer(user_token),
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert_valid("ErrorResponse", body)
    assert body["error"]["param"] == parameter
    assert parameter in body["error"]["message"]
    assert not [r for r in anthropic.requests if r.path == "/v1/messages"]


async def test_a_parameter_the_chat_api_lacks_is_refused_by_name(
    sdk: openai.AsyncOpenAI, anthropic: ChatAnthropic
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.completions.create(model="claude-sonnet-4-5", prompt="x", presence_penalty=1)
    assert refused.value.body["param"] == "presence_penalty"  # type: ignore[index]
    assert not [r for r in anthropic.requests if r.path == "/v1/messages"]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_route_that_drops_what_its_target_cannot_honour(
    asgi_http: httpx.AsyncClient,
    database: Database,
    user_token: str,
    anthropic: ChatAnthropic,
    stream: bool,
) -> None:
    staff = bearer(await make_token(database, await make_user(database, "s@x.io", staff=True)))
    route = {
        "name": "lenient",
        "targets": [{"provider": "anthropic", "model": "claude-x"}],
        "unsupported_params": "drop",
    }
    created = await asgi_http.post("/v2/admin/routes", json=route, headers=staff)
    assert created.status_code == 201, created.text
    body = {
        "model": "lenient",
        "prompt": "hello there",
        "suffix": "tail",
        "presence_penalty": 0.5,
        "temperature": 0.5,
        "stream": stream,
    }
    response = await asgi_http.post("/v1/completions", json=body, headers=bearer(user_token))
    assert response.status_code == 200, response.text
    assert response.headers["x-modelyard-dropped-params"] == "suffix,presence_penalty"
    if not stream:
        assert_valid("CreateCompletionResponse", response.json())
        assert response.json()["choices"][0]["text"] == "Echo: hello there"
    sent = anthropic.last_request.json()
    assert sent["temperature"] == 0.5 and "presence_penalty" not in sent


async def test_cached_when_asked_apart_from_chat(
    sdk: openai.AsyncOpenAI, upstream: ChatOpenAI, recorder: UsageRecorder, database: Database
) -> None:
    cached = sdk.with_options(default_headers={"x-modelyard-cache": "true"})
    first = await cached.completions.with_raw_response.create(model=INSTRUCT, prompt="same")
    again = await cached.completions.with_raw_response.create(model=INSTRUCT, prompt="same")
    assert (first.headers["x-modelyard-cache"], again.headers["x-modelyard-cache"]) == (
        "miss",
        "hit",
    )
    assert again.http_response.json() == first.http_response.json()
    assert [r.path for r in upstream.requests] == ["/v1/completions"]
    chat = await cached.chat.completions.with_raw_response.create(
        model=INSTRUCT, messages=[{"role": "user", "content": "same"}]
    )
    assert chat.headers["x-modelyard-cache"] == "miss"  # another API's answers stay apart
    await recorder.flush()
    rows = await usage_rows(database)
    assert [(r.endpoint, r.cache_hit) for r in rows] == [
        ("completions", False),
        ("completions", True),
        ("chat", False),
    ]


# -- limits ---------------------------------------------------------------------------------


async def test_limits_admit_and_settle_completions(
    app: FastAPI,
    sdk: openai.AsyncOpenAI,
    asgi_http: httpx.AsyncClient,
    database: Database,
    user_token: str,
    upstream: ChatOpenAI,
    recorder: UsageRecorder,
) -> None:
    user_id = (await token_record(database, user_token)).user_id
    await set_limits([app], "user", user_id, budget_usd=Decimal("5"), requests_per_minute=1)
    # An unpriced model cannot be paid from a budget: refused before any upstream call.
    with pytest.raises(openai.APIStatusError) as unpriced:
        await sdk.completions.create(model=INSTRUCT, prompt="x")
    assert (unpriced.value.status_code, unpriced.value.code) == (402, "model_not_priced")
    assert upstream.requests == []
    upstream.models.append("gpt-4o-mini")
    await sdk.completions.create(model="gpt-4o-mini", prompt="one two three")
    limits = await asgi_http.get("/v2/users/me/limits", headers=bearer(user_token))
    assert Decimal(limits.json()["user"]["usage"]["spent_usd"]) > 0  # settled at its cost
    with pytest.raises(openai.RateLimitError):
        await sdk.completions.create(model="gpt-4o-mini", prompt="again")
    await recorder.flush()
    statuses = [(r.endpoint, r.status) for r in await usage_rows(database)]
    assert statuses == [("completions", 402), ("completions", 200), ("completions", 429)]


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "words"),
    [([1212, 318, 257], "token ids"), ([[1212, 318]], "token ids"), ([], "empty")],
)
async def test_prompts_must_be_text(
    asgi_http: httpx.AsyncClient, user_token: str, upstream: ChatOpenAI, prompt: Any, words: str
) -> None:
    before = len(upstream.requests)
    response = await asgi_http.post(
        "/v1/completions",
        json={"model": INSTRUCT, "prompt": prompt},
        headers=bearer(user_token),
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert_valid("ErrorResponse", body)
    assert body["error"]["param"] == "prompt" and words in body["error"]["message"]
    assert len(upstream.requests) == before


async def test_an_unknown_model_is_a_404(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        await sdk.completions.create(model="no-such-model", prompt="x")
    assert_valid("ErrorResponse", missing.value.response.json())


# -- usage ----------------------------------------------------------------------------------


async def test_usage_is_recorded_under_completions(
    sdk: openai.AsyncOpenAI, recorder: UsageRecorder, database: Database
) -> None:
    raw = await sdk.completions.with_raw_response.create(
        model=INSTRUCT, prompt=["count these four words", "and two"]
    )
    stream = await sdk.completions.create(model="claude-sonnet-4-5", prompt="a b c", stream=True)
    await streamed(stream)
    await recorder.flush()
    rows = await usage_rows(database)
    assert [(r.endpoint, r.status, r.provider) for r in rows] == [
        ("completions", 200, "openai"),
        ("completions", 200, "anthropic"),
    ]
    passed, translated = rows
    # The upstreams' own counts (words): 4 + 2 prompt words; "Echo: …" replies.
    assert (passed.input_tokens, passed.output_tokens, passed.estimated) == (6, 8, False)
    assert passed.request_id == raw.headers["x-request-id"]
    assert passed.model == INSTRUCT and passed.upstream_model == "gpt-3.5-turbo-instruct"
    assert (translated.input_tokens, translated.output_tokens) == (3, 4)
    assert not translated.estimated


@pytest.mark.parametrize("stream", [False, True])
async def test_tokens_an_upstream_does_not_report_are_counted(
    sdk: openai.AsyncOpenAI,
    upstream: ChatOpenAI,
    recorder: UsageRecorder,
    database: Database,
    stream: bool,
) -> None:
    upstream.reports_usage = False
    prompts = ["count these four words", "and two"]
    if stream:
        events = await streamed(
            await sdk.completions.create(model=INSTRUCT, prompt=prompts, stream=True)
        )
        assert not [e for e in events if e.usage is not None]
    else:
        assert (await sdk.completions.create(model=INSTRUCT, prompt=prompts)).usage is None
    await recorder.flush()
    (record,) = await usage_rows(database)
    assert record.estimated and record.endpoint == "completions"
    assert record.input_tokens == sum(count_tokens(INSTRUCT, p) for p in prompts)
    relayed = "Echo: count these four wordsEcho: and two"
    assert record.output_tokens == count_tokens(INSTRUCT, relayed)


@pytest.mark.parametrize("model", [INSTRUCT, "claude-sonnet-4-5"])
async def test_a_stream_failing_midway_ends_with_an_error_and_is_recorded(
    sdk: openai.AsyncOpenAI,
    upstream: ChatOpenAI,
    anthropic: ChatAnthropic,
    recorder: UsageRecorder,
    database: Database,
    model: str,
) -> None:
    upstream.error_after = anthropic.error_after = 1
    stream = await sdk.completions.create(model=model, prompt="a b c d e f", stream=True)
    received = []
    with pytest.raises(openai.APIError):
        async for event in stream:
            assert_valid_completion_event(event.model_dump(exclude_unset=True))
            received += [choice.text for choice in event.choices]
    assert received and "".join(received).startswith("Echo")
    await recorder.flush()
    (record,) = await usage_rows(database)
    assert (record.endpoint, record.status, record.error_code) == (
        "completions",
        502,
        "stream_interrupted",
    )
    assert record.output_tokens >= count_tokens(model, "".join(received)) > 0
    assert record.attempts == 1  # no failover once the stream has started


async def test_a_refused_request_is_recorded_as_such(
    asgi_http: httpx.AsyncClient, user_token: str, recorder: UsageRecorder, database: Database
) -> None:
    response = await asgi_http.post(
        "/v1/completions",
        json={"model": "claude-sonnet-4-5", "prompt": "x", "suffix": "y"},
        headers=bearer(user_token),
    )
    assert response.status_code == 400
    await recorder.flush()
    rows = await usage_rows(database)
    assert [(r.endpoint, r.status, r.input_tokens, r.output_tokens) for r in rows] == [
        ("completions", 400, 0, 0)
    ]
