"""Property-based fuzzing of the whole API from its own OpenAPI document (schemathesis on
Hypothesis), against the app served by uvicorn on 127.0.0.1 (on SQLite and PostgreSQL,
see ``conftest.py``): no request may get a 5xx, every error must have the standard JSON
shape and reveal nothing of the server (paths, tracebacks, SQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.fakes.fixtures import OPENAI_KEY
from tests.security.conftest import FuzzServer, assert_reveals_nothing

#: Examples per API operation and generation mode (each operation also gets its explicit
#: examples), on each database.
EXAMPLES = 12
#: Operations left out: they end the fuzzer's own session or token.
EXCLUDED = {
    ("DELETE", "/v2/tokens/{token_id}"),
    ("POST", "/v2/auth/logout"),
    ("POST", "/v2/me/sessions/revoke"),
}


@pytest.fixture(scope="module")
def api_schema(fuzz_server: FuzzServer) -> Any:
    return schemathesis.openapi.from_url(f"{fuzz_server.base}/openapi.json")


def assert_error_shape(response: Any, *, anthropic: bool = False) -> None:
    """OpenAI's error shape, or Anthropic's for the Messages API (``anthropic``)."""
    body = response.json()
    if anthropic:
        assert set(body) == {"type", "error"} and body["type"] == "error", body
        assert set(body["error"]) == {"type", "message"} and body["error"]["message"], body
        return
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["message"], str) and error["message"], body
    assert isinstance(error["type"], str) and error["type"], body
    assert {"param", "code"} <= set(error), body


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_gets_a_server_error(
    api_schema: Any, fuzz_server: FuzzServer, mode: GenerationMode
) -> None:
    """Every operation, with valid (positive) and invalid (negative) generated input."""
    base, headers = fuzz_server.base, fuzz_server.headers
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 40
    failures: list[str] = []
    for operation in operations:
        if (operation.method.upper(), operation.path) in EXCLUDED:
            continue

        @given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis_settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: Any) -> None:
            response = case.call(base_url=base, headers=headers, timeout=30)
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} → {response.status_code}: "
                f"{response.text[:500]}"
            )
            content_type = (response.headers.get("content-type") or [""])[0]
            if response.status_code >= 400 and content_type.startswith("application/json"):
                assert_error_shape(response, anthropic=case.path.startswith("/v1/messages"))
            if response.status_code >= 400:
                assert_reveals_nothing(response.text, fuzz_server.data_dir)

        try:
            check()
        except Unsatisfiable:
            continue  # no input of this mode exists for the operation (all enums, say)
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0])
    assert not failures, "\n".join(failures)
    # The fuzz input reached the handlers: the fuzzer was signed in all along.
    assert httpx.get(f"{base}/v2/auth/me", headers=headers).status_code == 200


# Targeted bad input, beside the generated cases ---------------------------------------


@pytest.fixture(scope="module")
def api(fuzz_server: FuzzServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fuzz_server.base, headers=fuzz_server.headers, timeout=30) as client:
        yield client


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b"{not json", 400),
        (b'{"model": 5, "messages": "hi"}', 400),
        (b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], '
         b'"max_tokens": 100000000000000000000}', 400),
        (b"[" * 5000 + b"]" * 5000, 400),
        ('{"model": "\u202egpt\ud7ff\u0000", "messages": []}'.encode(), 400),
    ],
)  # fmt: skip
def test_bad_bodies_are_clear_4xx(api: httpx.Client, content: bytes, status: int) -> None:
    response = api.post(
        "/v1/chat/completions", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == status, response.text
    assert_error_shape(response)


def test_oversized_body_is_413(api: httpx.Client) -> None:
    response = api.post(
        "/v1/chat/completions",
        content=b"x" * (11 * 1024 * 1024),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert_error_shape(response)


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "local/../../secret", "/etc/passwd"]
)
def test_path_traversal_in_model_names_is_refused(api: httpx.Client, name: str) -> None:
    response = api.post(
        "/v1/chat/completions",
        json={"model": name, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert 400 <= response.status_code < 500, response.text
    assert_error_shape(response)
    assert "root:" not in response.text
    response = api.post(f"/v2/models/{name}/classify", json={"input": "hi"})
    assert 400 <= response.status_code < 500, response.text


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("../../escape.csv", b"text,label\nhello,a\n"),
        ("data.csv", b'text,label\n"unterminated,a\n'),
        ("data.jsonl", b'{"messages": [}\n'),
        ("data.exe", b"MZ\x90\x00"),
        ("data.csv", b"\xff\xfe\x00bad"),
    ],
)
def test_malformed_uploads_are_4xx_and_leave_nothing(
    api: httpx.Client, fuzz_server: FuzzServer, filename: str, content: bytes
) -> None:
    before = api.get("/v2/datasets").json()["data"]
    response = api.post(
        "/v2/datasets", files={"file": (filename, content)}, data={"task": "classification"}
    )
    assert 400 <= response.status_code < 500, response.text
    assert_error_shape(response)
    assert api.get("/v2/datasets").json()["data"] == before


# Text that is not text: unpaired surrogates, NUL characters ---------------------------

CHAT = (
    b'{"model": "openai/gpt-4o-mini", "max_tokens": 5, '
    b'"messages": [{"role": "user", "content": %s}]}'
)
#: Every route that takes a chat, in the body each expects.
CHAT_ROUTES = ["/v1/chat/completions", "/v1/messages", "/v2/llm/chat/completions"]


@pytest.fixture(scope="module")
def chat_provider(api: httpx.Client, fuzz_server: FuzzServer) -> None:
    """A default provider answering from the fake OpenAI (the fuzzer may have changed or
    removed the first one)."""
    response = api.post(
        "/v2/admin/providers",
        json={
            "name": "fake openai again",
            "kind": "openai",
            "api_key": OPENAI_KEY,
            "base_url": fuzz_server.upstream.base_url,
            "is_default": True,
            "is_active": True,
        },
    )
    assert response.status_code == 201, response.text


def conversations(api: httpx.Client) -> list[Any]:
    response = api.get("/v2/conversations/")
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


@pytest.mark.parametrize("path", CHAT_ROUTES)
@pytest.mark.parametrize(
    "body",
    [
        CHAT % rb'"\ud800"',
        CHAT % rb'"tail \udfff"',
        CHAT % rb'"\ude00\ud83d"',  # a pair in the wrong order
        CHAT % rb'[{"type": "text", "text": "a\uDBFF"}]',
        CHAT.replace(b'"max_tokens"', rb'"\ud800": 1, "max_tokens"') % b'"hi"',
        CHAT.replace(b"}]}", b'}], "stream": true}') % rb'"\ud800"',
    ],
)
@pytest.mark.usefixtures("chat_provider")
def test_unpaired_surrogates_are_a_400_before_anything_happens(
    api: httpx.Client, fuzz_server: FuzzServer, path: str, body: bytes
) -> None:
    """A lone surrogate can be neither stored, nor sent upstream, nor echoed: refused first."""
    sent_before = len(fuzz_server.upstream.requests)
    stored_before = conversations(api)
    response = api.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    anthropic = path.startswith("/v1/messages")
    assert_error_shape(response, anthropic=anthropic)
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert anthropic or error["code"] == "invalid_text"
    assert "unpaired surrogate" in error["message"]
    assert_reveals_nothing(response.text, fuzz_server.data_dir)
    assert len(fuzz_server.upstream.requests) == sent_before
    assert conversations(api) == stored_before


@pytest.mark.parametrize("path", ["/v1/embeddings", "/web/api/markdown"])
def test_unpaired_surrogates_are_refused_on_other_json_routes(api: httpx.Client, path: str) -> None:
    body = rb'{"model": "text-embedding-3-small", "input": "\ud800"}'
    if path == "/web/api/markdown":
        body = rb'{"text": "\udbff"}'
    response = api.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_text"


@pytest.mark.usefixtures("chat_provider")
def test_a_surrogate_pair_is_a_character_and_passes(
    api: httpx.Client, fuzz_server: FuzzServer
) -> None:
    response = api.post(
        "/v1/chat/completions",
        content=CHAT % rb'"smile \ud83d\ude00"',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Echo: smile \U0001f600"
    assert fuzz_server.upstream.last_request.json()["messages"][0]["content"] == "smile \U0001f600"


@pytest.mark.usefixtures("chat_provider")
def test_nul_in_a_stored_chat_is_stored_or_a_clear_400(
    api: httpx.Client, fuzz_server: FuzzServer
) -> None:
    """SQLite stores a NUL character; PostgreSQL cannot: a 400 and nothing half-written."""
    before = conversations(api)
    response = api.post(
        "/v2/llm/chat/completions",
        content=CHAT % rb'"nul \u0000 inside"',
        headers={"content-type": "application/json"},
    )
    if fuzz_server.backend == "sqlite":
        assert response.status_code == 200, response.text
        assert len(conversations(api)) == len(before) + 1
        return
    assert response.status_code == 400, response.text
    assert_error_shape(response)
    assert response.json()["error"]["code"] == "invalid_text"
    assert conversations(api) == before


@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/a%00b/classify",
        "/v2/conversations/?q=%00",
        "/v2/usage?start=2024-01-01%00",
        "/v1/models?x=a%00",
    ],
)
def test_nul_in_a_path_or_query_is_a_400(
    api: httpx.Client, fuzz_server: FuzzServer, path: str
) -> None:
    response = api.request("POST" if path.endswith("classify") else "GET", path, json={})
    assert response.status_code == 400, response.text
    assert_error_shape(response)
    assert response.json()["error"]["code"] == "invalid_text"
    assert_reveals_nothing(response.text, fuzz_server.data_dir)


@pytest.mark.parametrize(
    "key", ["hf_ÿÿcanarycanary0123", "hf_canary\x7fcanary0123", "hf_\u00e9" * 8]
)
def test_a_provider_key_that_cannot_be_sent_is_refused_when_stored(
    api: httpx.Client, fuzz_server: FuzzServer, key: str
) -> None:
    """A key goes out in an HTTP header: one that is not printable ASCII would break every
    later request made with it (found by the fuzzer: a 500 from the Hub client)."""
    response = api.patch("/v2/users/me/api-key", json={"provider": "huggingface", "api_key": key})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_key_format"
    assert key not in response.text
    classify = api.post("/v2/models/someone/some-model/classify", json={"input": "hi"})
    assert 400 <= classify.status_code < 500, classify.text


@pytest.mark.parametrize("kind", ["local", "openai_compatible", "custom", "openai"])
@pytest.mark.parametrize("field", ["api_key", "organization_id"])
def test_a_provider_secret_that_cannot_be_sent_is_refused_when_stored(
    api: httpx.Client, fuzz_server: FuzzServer, kind: str, field: str
) -> None:
    body = {
        "name": f"unsendable {kind} {field}",
        "kind": kind,
        "base_url": fuzz_server.upstream.base_url,
        "api_key": OPENAI_KEY,
        field: "sk-canary-\u00e9\u00e9\u00e9-0123456789abcdef",
    }
    response = api.post("/v2/admin/providers", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == field and error["code"] == "invalid_key_format"
    assert body[field] not in response.text


# Usage reports and exports: extreme dates are refused before the CSV starts -----------


@pytest.mark.parametrize("path", ["/v2/usage", "/v2/usage/export.csv"])
@pytest.mark.parametrize(
    ("params", "status", "param"),
    [
        ({"end": "9999-12-31"}, 400, "end"),
        ({"start": "9999-12-30", "end": "9999-12-31"}, 400, "end"),
        ({"end": "253402214400000"}, 400, "end"),  # 9999-12-31 as a timestamp in ms
        ({"start": "0001-01-01"}, 400, "start"),  # longer than the longest period
        ({"start": "0001-01-02", "end": "0001-01-01"}, 400, "start"),
        ({"start": "1000000000000"}, 422, "start"),  # a timestamp that is not a day
        ({"end": "10000-01-01"}, 422, "end"),
        ({"start": "2024-02-30"}, 422, "start"),
        ({"start": "-1"}, 422, "start"),
        ({"user_id": str(2**40)}, 422, "user_id"),
        ({"user_id": "0"}, 422, "user_id"),
    ],
)
def test_usage_with_extreme_dates_is_a_4xx_before_streaming(
    api: httpx.Client,
    fuzz_server: FuzzServer,
    path: str,
    params: dict[str, str],
    status: int,
    param: str,
) -> None:
    with api.stream("GET", path, params=params) as response:
        response.read()
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert_error_shape(response)
    assert response.json()["error"]["param"] == param
    assert_reveals_nothing(response.text, fuzz_server.data_dir)


@pytest.mark.parametrize(
    "params",
    [
        {"start": "0001-01-01", "end": "0001-01-31"},
        {"start": "9999-12-01", "end": "9999-12-30"},
        {"start": "62135596800000", "end": "62135596800000"},  # 3939-12-04 in ms
    ],
)
def test_usage_at_the_ends_of_the_calendar_is_an_empty_report(
    api: httpx.Client, params: dict[str, str]
) -> None:
    report = api.get("/v2/usage", params=params)
    assert report.status_code == 200, report.text
    assert report.json()["totals"]["requests"] == 0
    export = api.get("/v2/usage/export.csv", params=params)
    assert export.status_code == 200, export.text
    assert export.text.startswith("id,created_at,") and export.text.count("\r\n") == 1


def test_nothing_escapes_the_data_directory(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = Path(str(tmp_path_factory.getbasetemp()))
    assert not list(root.rglob("escape.csv"))
