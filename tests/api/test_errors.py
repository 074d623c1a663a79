"""Every error response has the OpenAI shape, the right status, and an x-request-id."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from modelyard.errors import (
    BadGatewayError,
    ConflictError,
    RateLimitError,
    ServiceUnavailableError,
    error_for_status,
)
from tests.helpers import bearer, make_token, make_user

CANARY = "sk-canary-in-an-exception-0123456789"


def assert_openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers.get("x-request-id")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


@pytest.fixture
def app_with_faults(app: FastAPI) -> FastAPI:
    @app.get("/test/boom")
    async def boom() -> None:
        raise RuntimeError(f"database said no to {CANARY}")

    @app.get("/test/limited")
    async def limited() -> None:
        raise RateLimitError("Too many requests; slow down.", retry_after=7.2)

    @app.get("/test/{status}")
    async def fail(status: int) -> None:
        raise error_for_status(status)(f"failure {status}")

    return app


async def test_unknown_route(client: httpx.AsyncClient) -> None:
    error = assert_openai_error(await client.get("/v1/nothing-here"), 404)
    assert "Unknown route: GET /v1/nothing-here" in error["message"]


async def test_wrong_method(client: httpx.AsyncClient) -> None:
    error = assert_openai_error(await client.delete("/healthz"), 405)
    assert "DELETE" in error["message"]


async def test_validation_error_names_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/v2/auth/register", json={"email": "not-an-email", "password": 1})
    error = assert_openai_error(response, 422)
    assert error["param"] == "email"
    assert "password" in error["message"]


async def test_invalid_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v2/auth/login", content=b'{"email": ', headers={"content-type": "application/json"}
    )
    error = assert_openai_error(response, 400)
    assert error["code"] == "invalid_json"


async def test_unknown_fields_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v2/auth/register",
        json={"email": "a@example.com", "password": "long enough", "is_staff": True},
    )
    assert assert_openai_error(response, 422)["param"] == "is_staff"


async def test_missing_and_malformed_credentials_are_401(client: httpx.AsyncClient) -> None:
    assert assert_openai_error(await client.get("/v2/auth/me"), 401)["code"] == "missing_api_key"
    malformed = await client.get("/v2/auth/me", headers={"Authorization": "Token abc"})
    assert assert_openai_error(malformed, 401)["code"] == "invalid_api_key"
    unknown = await client.get("/v2/auth/me", headers=bearer("myd_unknown"))
    assert assert_openai_error(unknown, 401)["type"] == "authentication_error"


async def test_staff_only_is_403(client: httpx.AsyncClient, database: Any) -> None:
    token = await make_token(database, await make_user(database, "m@example.com"))
    assert assert_openai_error(await client.get("/v2/users", headers=bearer(token)), 403)


async def test_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    big = b"x" * (10 * 1024 * 1024 + 1)
    response = await client.post(
        "/v2/auth/login", content=big, headers={"content-type": "application/json"}
    )
    assert assert_openai_error(response, 413)["code"] == "request_too_large"

    async def chunked() -> Any:
        for _ in range(11):
            yield b"x" * (1024 * 1024)

    streamed = await client.post(
        "/v2/auth/login", content=chunked(), headers={"content-type": "application/json"}
    )
    assert_openai_error(streamed, 413)


async def test_unhandled_exception_is_500_without_secrets(app_with_faults: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app_with_faults, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/test/boom")
    error = assert_openai_error(response, 500)
    assert CANARY not in response.text
    assert response.headers["x-request-id"] in error["message"]


async def test_rate_limit_has_retry_after(app_with_faults: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app_with_faults)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/test/limited")
    assert assert_openai_error(response, 429)["type"] == "rate_limit_error"
    assert response.headers["retry-after"] == "7"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422, 500, 502, 503])
async def test_each_status_class_renders(app_with_faults: FastAPI, status: int) -> None:
    transport = httpx.ASGITransport(app=app_with_faults)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get(f"/test/{status}")
    assert assert_openai_error(response, status)["message"] == f"failure {status}"


def test_error_for_status_maps_the_tree() -> None:
    assert error_for_status(409) is ConflictError
    assert error_for_status(429) is RateLimitError
    assert error_for_status(502) is BadGatewayError
    assert error_for_status(503) is ServiceUnavailableError
    assert error_for_status(418).status_code == 400
    assert error_for_status(599).status_code == 500


async def test_client_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"x-request-id": "client-id-12345"})
    assert response.headers["x-request-id"] == "client-id-12345"
    odd = await client.get("/healthz", headers={"x-request-id": "bad id\twith tab"})
    assert odd.headers["x-request-id"].startswith("req_")


async def test_dataset_uploads_have_their_own_larger_limit(client: httpx.AsyncClient) -> None:
    body = b"x" * (10 * 1024 * 1024 + 1)  # over the API limit, under the upload limit
    response = await client.post("/v2/datasets", content=body, headers={"content-type": "text/csv"})
    assert response.status_code == 401  # it reached the route (which wants a caller)


async def test_ids_too_large_for_the_database_are_400(
    client: httpx.AsyncClient, database: Any, settings: Any
) -> None:
    """Found by the fuzzer: an id past the database's integer range was a 500."""
    headers = bearer(await make_token(database, await make_user(database, "big@example.com")))
    response = await client.get("/v2/conversations/9223372036854775808", headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "number_out_of_range"
    # Past a PostgreSQL integer but within SQLite's: 400 there, simply not found here.
    response = await client.get("/v2/conversations/3000000000", headers=headers)
    assert response.status_code == (404 if settings.is_sqlite else 400), response.text
