"""Property-based fuzzing of the whole API from its own OpenAPI document (schemathesis on
Hypothesis), against the app served by uvicorn on 127.0.0.1: no request may get a 5xx,
and every error must have the standard JSON shape."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from modelyard.api.app import create_app
from modelyard.config import Settings
from modelyard.db.engine import create_database
from modelyard.db.migrate import upgrade
from tests.helpers import bearer, make_token, make_user

#: Examples per API operation (each operation also gets its explicit examples).
EXAMPLES = 12
#: Operations left out: they end the fuzzer's own session or token.
EXCLUDED = {("DELETE", "/v2/tokens/{token_id}"), ("POST", "/v2/auth/logout")}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """The app (SQLite, no providers, no background tasks) on a real socket, and a staff
    user's API token: the fuzzer reaches every route, the admin ones included."""
    data_dir = tmp_path_factory.mktemp("fuzz")
    settings = Settings(
        env="test",
        data_dir=data_dir,
        encryption_keys=Fernet.generate_key().decode(),
        _env_file=None,  # type: ignore[call-arg]
    )
    upgrade(settings)

    async def token() -> str:
        database = create_database(settings)
        try:
            staff = await make_user(database, "fuzz@example.com", staff=True)
            return await make_token(database, staff)
        finally:
            await database.dispose()

    headers = bearer(asyncio.run(token()))
    port = _free_port()
    app = create_app(settings, system_keys={})
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield base, headers
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def api_schema(fuzz_server: tuple[str, dict[str, str]]) -> Any:
    base, _headers = fuzz_server
    return schemathesis.openapi.from_url(f"{base}/openapi.json")


def assert_error_shape(response: Any) -> None:
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["message"], str) and error["message"], body
    assert isinstance(error["type"], str) and error["type"], body
    assert {"param", "code"} <= set(error), body


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_gets_a_server_error(
    api_schema: Any, fuzz_server: tuple[str, dict[str, str]], mode: GenerationMode
) -> None:
    """Every operation, with valid (positive) and invalid (negative) generated input."""
    base, headers = fuzz_server
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
                assert_error_shape(response)

        try:
            check()
        except Unsatisfiable:
            continue  # no input of this mode exists for the operation (all enums, say)
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0])
    assert not failures, "\n".join(failures)


# Targeted bad input, beside the generated cases ---------------------------------------


@pytest.fixture(scope="module")
def api(fuzz_server: tuple[str, dict[str, str]]) -> Iterator[httpx.Client]:
    base, headers = fuzz_server
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
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
    api: httpx.Client, fuzz_server: tuple[str, dict[str, str]], filename: str, content: bytes
) -> None:
    before = api.get("/v2/datasets").json()["data"]
    response = api.post(
        "/v2/datasets", files={"file": (filename, content)}, data={"task": "classification"}
    )
    assert 400 <= response.status_code < 500, response.text
    assert_error_shape(response)
    assert api.get("/v2/datasets").json()["data"] == before


def test_nothing_escapes_the_data_directory(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = Path(str(tmp_path_factory.getbasetemp()))
    assert not list(root.rglob("escape.csv"))
