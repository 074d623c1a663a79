"""A failed upstream is one short, friendly error with the request id for users, and the
per-target detail (providers, hosts, exceptions) for staff; same OpenAI shape, status and
code for both, and the detail is logged under the request id."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import httpx
import openai
import pytest
from fastapi import FastAPI

from modelyard.db.engine import Database
from tests.fakes.fixtures import OPENAI_KEY
from tests.fakes.openai_chat import ChatOpenAI
from tests.gateway.conftest import add_provider
from tests.helpers import make_token, make_user
from tests.openai_spec import assert_valid

FRIENDLY = "The model could not answer right now"


@pytest.fixture
def upstream() -> Iterator[ChatOpenAI]:
    with ChatOpenAI(keys={OPENAI_KEY}) as fake:
        yield fake


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def sdk_for(
    app: FastAPI, database: Database, email: str, *, staff: bool
) -> openai.AsyncOpenAI:
    token = await make_token(database, await make_user(database, email, staff=staff))
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://testserver",
    )
    return openai.AsyncOpenAI(
        base_url="http://testserver/v1", api_key=token, http_client=http, max_retries=0
    )


async def failure(sdk: openai.AsyncOpenAI) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as failed:
        await sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    return failed.value


async def failing_targets(database: Database, upstream: ChatOpenAI) -> None:
    """Two targets: one answering 500, one whose host refuses connections."""
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    await add_provider(database, "team openai", upstream.base_url, OPENAI_KEY, default=True)
    await add_provider(database, "backup openai", dead, OPENAI_KEY)
    upstream.fail_with(500)


async def test_users_get_a_short_error_with_the_request_id(
    app: FastAPI, database: Database, upstream: ChatOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    await failing_targets(database, upstream)
    user = await sdk_for(app, database, "user@example.com", staff=False)
    with caplog.at_level(logging.WARNING, logger="modelyard.upstream"):
        seen = await failure(user)
    request_id = seen.response.headers["x-request-id"]
    body = seen.response.json()
    assert_valid("ErrorResponse", body)
    assert seen.status_code == 502 and body["error"]["code"] == "all_targets_failed"
    message = body["error"]["message"]
    assert message.startswith(FRIENDLY) and f"request id {request_id}" in message
    assert len(message) < 250
    for internal in ("team openai", "backup openai", "127.0.0.1", "Client", "HTTP 500"):
        assert internal not in message
    # The detail is in the log, under the same request id.
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert request_id in logged and "backup openai" in logged


async def test_staff_get_the_detail_of_every_target(
    app: FastAPI, database: Database, upstream: ChatOpenAI
) -> None:
    await failing_targets(database, upstream)
    detailed = await failure(await sdk_for(app, database, "staff@example.com", staff=True))
    body = detailed.response.json()
    assert_valid("ErrorResponse", body)
    assert detailed.status_code == 502 and body["error"]["code"] == "all_targets_failed"
    detail = body["error"]["message"]
    assert "Every target failed (6 tried)" in detail and "backup openai" in detail
    assert "Cannot connect to host 127.0.0.1" in detail
    assert f"request id {detailed.response.headers['x-request-id']}" in detail
    assert OPENAI_KEY not in detail


async def test_a_request_error_keeps_its_own_message_for_users(
    app: FastAPI, database: Database, upstream: ChatOpenAI
) -> None:
    """What the user can fix (a 400 from the provider) is not hidden."""
    await add_provider(database, "team openai", upstream.base_url, OPENAI_KEY, default=True)
    upstream.fail_with(400)
    seen = await failure(await sdk_for(app, database, "u2@example.com", staff=False))
    assert seen.status_code == 400 and "Bad request" in seen.message
    assert FRIENDLY not in seen.message


async def test_a_stream_failing_midway_is_short_for_users(
    app: FastAPI, database: Database, upstream: ChatOpenAI
) -> None:
    await add_provider(database, "team openai", upstream.base_url, OPENAI_KEY, default=True)
    upstream.drop_after = 2
    for staff, expected in (
        (False, "the provider could not be reached"),
        (True, "(request id"),
    ):
        sdk = await sdk_for(app, database, f"s{int(staff)}@example.com", staff=staff)
        stream = await sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "a b c d e f"}], stream=True
        )
        with pytest.raises(openai.APIError) as failed:
            async for _chunk in stream:
                pass
        assert "upstream stream failed" in str(failed.value)
        assert expected in str(failed.value)
        assert "127.0.0.1" not in str(failed.value) or staff
