"""Registration accepts the special-use e-mail domains the settings list (``.local``,
``.test``, ``localhost``… by default: the default admin is ``admin@modelyard.local``) and
refuses the others with a message naming the setting, on the API and the web form."""

from __future__ import annotations

import httpx
import pytest

from modelyard.config import Settings
from tests.helpers import PASSWORD
from tests.openai_spec import assert_valid


async def register(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post("/v2/auth/register", json={"email": email, "password": PASSWORD})


@pytest.mark.parametrize(
    "email",
    ["admin@modelyard.local", "dev@ci.test", "me@localhost", "a@b.example", "x@nowhere.invalid"],
)
async def test_special_use_domains_accepted_by_default(
    client: httpx.AsyncClient, email: str
) -> None:
    response = await register(client, email)
    assert response.status_code == 201, response.text
    assert response.json()["email"] == email


async def test_other_special_use_domains_are_a_clear_400(client: httpx.AsyncClient) -> None:
    response = await register(client, "someone@hidden.onion")
    assert response.status_code == 400
    body = response.json()
    assert_valid("ErrorResponse", body)
    error = body["error"]
    assert (error["param"], error["code"]) == ("email", "invalid_email")
    assert "special-use" in error["message"] and "local, localhost" in error["message"]


async def test_the_setting_decides(client: httpx.AsyncClient, settings: Settings) -> None:
    settings.registration_special_use_domains = ["onion"]
    assert (await register(client, "someone@hidden.onion")).status_code == 201
    refused = await register(client, "admin@modelyard.local")
    assert refused.status_code == 400
    assert "accepts these special-use domains: onion" in refused.json()["error"]["message"]
    # The web form applies the same rule, shown next to the field.
    form = await client.post(
        "/register",
        data={"email": "admin@modelyard.local", "password": PASSWORD, "confirm": PASSWORD},
    )
    assert form.status_code == 400
    assert "special-use domains: onion" in form.text
    assert "modelyard_session" not in client.cookies


async def test_syntax_errors_stay_a_422_naming_the_field(client: httpx.AsyncClient) -> None:
    response = await register(client, "two@@example.com")
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "email"


def test_comma_separated_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_REGISTRATION_SPECIAL_USE_DOMAINS", "local, test")
    assert Settings().registration_special_use_domains == ["local", "test"]
