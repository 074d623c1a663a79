"""Key resolution: the user's own key, then admin providers (default first), then system keys."""

from __future__ import annotations

import itertools

import pytest

from modelyard.db.engine import Database
from modelyard.providers import records
from modelyard.providers.credentials import (
    MissingCredentialsError,
    resolve_credentials,
    usable_kinds,
)
from modelyard.providers.kinds import ProviderKind
from modelyard.providers.user_keys import set_user_key
from tests.helpers import make_user

USER_KEY = "sk-user-000000000000000000"
SYSTEM_KEYS = {ProviderKind.OPENAI: ["sk-system-1-0000000000000", "sk-system-2-0000000000000"]}


async def _admin_providers(database: Database) -> None:
    async with database.sessions() as session:
        for name, key, active, default in (
            ("second active", "sk-admin-other-000000000", True, False),
            ("inactive", "sk-admin-inactive-000000", False, False),
            ("the default", "sk-admin-default-0000000", True, True),
            ("no key", None, True, False),
        ):
            await records.create_provider(
                session,
                actor=None,
                values={
                    "name": name,
                    "kind": "openai",
                    "api_key": key,
                    "is_active": active,
                    "is_default": default,
                },
            )


@pytest.mark.parametrize(
    ("with_user", "with_admin", "with_system"), list(itertools.product([True, False], repeat=3))
)
async def test_priority_in_every_combination(
    database: Database, with_user: bool, with_admin: bool, with_system: bool
) -> None:
    user = await make_user(database, "prio@example.com")
    async with database.sessions() as session:
        if with_user:
            await set_user_key(session, user=user, provider="openai", api_key=USER_KEY)
    if with_admin:
        await _admin_providers(database)
    expected: list[tuple[str, str]] = []
    if with_user:
        expected.append(("user", USER_KEY))
    if with_admin:
        expected += [("admin", "sk-admin-default-0000000"), ("admin", "sk-admin-other-000000000")]
    if with_system:
        expected += [("system", key) for key in SYSTEM_KEYS[ProviderKind.OPENAI]]

    system = SYSTEM_KEYS if with_system else {}
    async with database.sessions() as session:
        if not expected:
            with pytest.raises(MissingCredentialsError) as caught:
                await resolve_credentials(session, user=user, kind="openai", system_keys=system)
            message = caught.value.message
            assert "No API key for OpenAI" in message
            assert "PATCH /v2/users/me/api-key" in message and "OPENAI_API_KEY" in message
            return
        found = await resolve_credentials(session, user=user, kind="openai", system_keys=system)
    assert [(c.source, c.api_key) for c in found] == expected
    assert all(c.base_url == "https://api.openai.com/v1" for c in found)
    assert all(c.api_key is not None and c.api_key not in c.label for c in found)
    assert all(c.api_key is not None and c.api_key not in repr(c) for c in found)


async def test_other_users_keys_and_other_kinds_are_not_used(database: Database) -> None:
    owner = await make_user(database, "owner@example.com")
    stranger = await make_user(database, "stranger@example.com")
    async with database.sessions() as session:
        await set_user_key(session, user=owner, provider="openai", api_key=USER_KEY)
        await records.create_provider(
            session,
            actor=None,
            values={"name": "groq", "kind": "groq", "api_key": "gsk_0123456789ab"},
        )
        with pytest.raises(MissingCredentialsError):
            await resolve_credentials(session, user=stranger, kind="openai", system_keys={})
        kinds = await usable_kinds(session, user=stranger, system_keys={})
        assert kinds == {ProviderKind.LOCAL, ProviderKind.GROQ}
        assert ProviderKind.OPENAI in await usable_kinds(session, user=owner, system_keys={})


async def test_admin_provider_base_url_and_organization_are_used(database: Database) -> None:
    async with database.sessions() as session:
        await records.create_provider(
            session,
            actor=None,
            values={
                "name": "vllm",
                "kind": "openai_compatible",
                "base_url": "http://127.0.0.1:9/v1",
                "organization_id": "org-123",
            },
        )
        [credential] = await resolve_credentials(
            session, user=None, kind="openai_compatible", system_keys={}
        )
    assert credential.base_url == "http://127.0.0.1:9/v1"
    assert credential.api_key is None and credential.organization == "org-123"


async def test_local_models_need_no_key(database: Database) -> None:
    async with database.sessions() as session:
        [credential] = await resolve_credentials(session, user=None, kind="local", system_keys={})
    assert credential.source == "keyless"


async def test_missing_key_for_a_kind_without_user_keys(database: Database) -> None:
    async with database.sessions() as session:
        with pytest.raises(MissingCredentialsError) as caught:
            await resolve_credentials(session, user=None, kind="custom", system_keys={})
    assert "Custom REST provider" in caught.value.message
    assert "PATCH" not in caught.value.message
