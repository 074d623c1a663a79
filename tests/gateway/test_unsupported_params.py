"""A route's policy for parameters a target cannot honour: ``error`` (a 400) or ``drop``
(left out, named in ``x-modelyard-dropped-params``); set through the admin API and the
``MODELYARD_CONFIG`` file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard.db.engine import Database
from modelyard.providers.file_config import ConfigFileError, apply_config_file, load_config_file
from tests.fakes.anthropic_chat import ChatAnthropic
from tests.fakes.fixtures import ANTHROPIC_KEY, OPENAI_KEY
from tests.fakes.openai_chat import ChatOpenAI
from tests.gateway.chat_stream import answer, choices_by_index, stream_chunks
from tests.gateway.conftest import add_provider
from tests.helpers import bearer, make_token, make_user

HELLO = [{"role": "user", "content": "hello there"}]
#: Parameters the Anthropic adapter cannot honour (an OpenAI target takes them).
UNSUPPORTED = {"logit_bias": {"50256": -100}, "presence_penalty": 0.5}
ROUTE = {"name": "lenient", "targets": [{"provider": "anthropic", "model": "claude-x"}]}


@pytest.fixture
def anthropic() -> Iterator[ChatAnthropic]:
    with ChatAnthropic(keys={ANTHROPIC_KEY}) as fake:
        yield fake


@pytest.fixture(autouse=True)
async def anthropic_provider(database: Database, anthropic: ChatAnthropic) -> int:
    return await add_provider(database, "claude", anthropic.url, ANTHROPIC_KEY, kind="anthropic")


@pytest.fixture
async def staff(database: Database) -> dict[str, str]:
    return bearer(
        await make_token(database, await make_user(database, "policy@example.com", staff=True))
    )


async def _route(client: httpx.AsyncClient, staff: dict[str, str], **fields: Any) -> int:
    created = await client.post("/v2/admin/routes", json={**ROUTE, **fields}, headers=staff)
    assert created.status_code == 201, created.text
    route_id: int = created.json()["id"]
    return route_id


async def test_drop_leaves_out_what_the_target_cannot_honour_and_says_so(
    client: httpx.AsyncClient,
    staff: dict[str, str],
    user_token: str,
    anthropic: ChatAnthropic,
) -> None:
    route_id = await _route(client, staff, unsupported_params="drop")
    body = {"model": "lenient", "messages": HELLO, "temperature": 0.5, **UNSUPPORTED}
    response = await answer(client, user_token, body)
    assert response.status_code == 200, response.text
    assert response.headers["x-modelyard-dropped-params"] == "logit_bias,presence_penalty"
    sent = anthropic.last_request.json()
    assert sent["temperature"] == 0.5
    assert not {"logit_bias", "presence_penalty"} & set(sent)
    # Nothing to drop: no header.
    plain = await answer(client, user_token, {"model": "lenient", "messages": HELLO})
    assert "x-modelyard-dropped-params" not in plain.headers

    switched = await client.patch(
        f"/v2/admin/routes/{route_id}", json={"unsupported_params": "error"}, headers=staff
    )
    assert switched.status_code == 200 and switched.json()["unsupported_params"] == "error"
    anthropic.requests.clear()
    refused = await answer(client, user_token, body)
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "logit_bias"
    assert refused.json()["error"]["code"] == "unsupported_parameter"
    assert anthropic.requests == []


async def test_error_is_the_default(
    client: httpx.AsyncClient, staff: dict[str, str], user_token: str
) -> None:
    await _route(client, staff)
    listed = (await client.get("/v2/admin/routes", headers=staff)).json()
    assert [route["unsupported_params"] for route in listed] == ["error"]
    response = await answer(
        client, user_token, {"model": "lenient", "messages": HELLO, **UNSUPPORTED}
    )
    assert response.status_code == 400 and "x-modelyard-dropped-params" not in response.headers


async def test_drop_on_a_stream_drops_n_it_cannot_stream(
    client: httpx.AsyncClient, staff: dict[str, str], user_token: str
) -> None:
    await _route(client, staff, unsupported_params="drop")
    response, chunks = await stream_chunks(
        client, user_token, {"model": "lenient", "messages": HELLO, "n": 2, "seed": 3}
    )
    assert response.status_code == 200
    assert response.headers["x-modelyard-dropped-params"] == "n,seed"
    assert list(choices_by_index(chunks)) == [0]


async def test_only_targets_that_cannot_honour_a_parameter_lose_it(
    client: httpx.AsyncClient, database: Database, staff: dict[str, str], user_token: str
) -> None:
    with ChatOpenAI(keys={OPENAI_KEY}) as openai_up:
        await add_provider(database, "oa", openai_up.base_url, OPENAI_KEY)
        await _route(
            client,
            staff,
            name="to-openai",
            targets=[{"provider": "openai", "model": "gpt-4o"}],
            unsupported_params="drop",
        )
        body = {"model": "to-openai", "messages": HELLO, "presence_penalty": 0.5}
        # Passed through from the upstream as it answered (the spec checks are for
        # the answers the gateway builds).
        response = await client.post("/v1/chat/completions", json=body, headers=bearer(user_token))
        assert response.status_code == 200
        assert "x-modelyard-dropped-params" not in response.headers
        assert openai_up.last_request.json()["presence_penalty"] == 0.5


async def test_the_admin_api_refuses_unknown_policies(
    client: httpx.AsyncClient, staff: dict[str, str]
) -> None:
    bad = await client.post(
        "/v2/admin/routes", json={**ROUTE, "unsupported_params": "ignore"}, headers=staff
    )
    assert bad.status_code == 422
    assert "unsupported_params" in bad.text and "'error' or 'drop'" in bad.text
    route_id = await _route(client, staff)
    patched = await client.patch(
        f"/v2/admin/routes/{route_id}", json={"unsupported_params": "DROP"}, headers=staff
    )
    assert patched.status_code == 422
    route = (await client.get(f"/v2/admin/routes/{route_id}", headers=staff)).json()
    assert route["unsupported_params"] == "error"


async def test_the_policy_in_the_config_file(
    tmp_path: Path,
    database: Database,
    client: httpx.AsyncClient,
    staff: dict[str, str],
    user_token: str,
) -> None:
    path = tmp_path / "modelyard.yaml"
    path.write_text(
        "routes:\n  lenient:\n    unsupported_params: drop\n    targets:\n"
        "      - {provider: anthropic, model: claude-x}\n"
    )
    await apply_config_file(path, database)
    [route] = (await client.get("/v2/admin/routes", headers=staff)).json()
    assert route["unsupported_params"] == "drop" and route["managed_by_file"]
    response = await answer(
        client, user_token, {"model": "lenient", "messages": HELLO, **UNSUPPORTED}
    )
    assert response.status_code == 200
    assert response.headers["x-modelyard-dropped-params"] == "logit_bias,presence_penalty"

    path.write_text(path.read_text().replace("drop", "sometimes"))
    with pytest.raises(ConfigFileError, match=r"routes\.lenient\.unsupported_params"):
        load_config_file(path)
