"""The list speaks the gateway's language: every listed name (and every alias) means, for
:class:`~modelyard.gateway.targets.ModelIndex`, the model the entry describes; and the list
is read with one query per table, however long it is."""

from __future__ import annotations

import re
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import event

from modelyard.db.engine import Database
from modelyard.db.models import GatewayRoute, LlmModel, Provider, TrainedModel
from modelyard.gateway.targets import ModelIndex, Step
from modelyard.local.sources import BUILT_IN_MODELS
from modelyard.model_list import ListedModel, load_model_list
from modelyard.providers.kinds import ProviderKind
from tests.model_list.conftest import Caller

#: A key for every kind: everything in the catalog is usable.
EVERY_KEY = {kind: ["a-system-key"] for kind in ProviderKind}


async def _add(database: Database, *rows: object) -> None:
    async with database.sessions() as session:
        session.add_all(rows)
        await session.commit()


def _local_files(kind: str, model: str) -> tuple[object, ...]:
    """Two names of one built-in model mean the same files."""
    if kind == "local" and model in BUILT_IN_MODELS:
        return (kind, BUILT_IN_MODELS[model])
    return (kind, model)


async def _meaning(index: ModelIndex, database: Database, name: str) -> tuple[object, ...]:
    resolution = await index.resolve(database, name)
    if resolution.route is not None:
        return ("route", resolution.route)
    (step,) = resolution.steps
    return _local_files(step.kind.value, step.upstream_model)


def _described(model: ListedModel) -> tuple[object, ...]:
    if model.source == "route":
        return ("route", model.model_id)
    assert model.kind is not None
    return _local_files(model.kind.value, model.model_id)


async def test_every_listed_name_means_its_entry_to_the_gateway(
    database: Database, alice: Caller
) -> None:
    await _add(
        database,
        # The same model id under a second kind, after the seeded Groq row.
        LlmModel(
            provider_kind="huggingface",
            model_id="llama-3.3-70b-versatile",
            display_name="Llama on HF",
        ),
        # An admin provider offering a catalog model's id under another kind.
        Provider(
            name="compatible",
            kind="openai_compatible",
            api_key="compatible-key-0123",
            base_url="http://127.0.0.1:9/v1",
            base_model="gpt-4o",
            fine_tuned_model_id="house-model",
        ),
        # A route shadowing a catalog model's bare name.
        GatewayRoute(name="gpt-4.1", targets=[{"provider": "anthropic", "model": "claude-x"}]),
        TrainedModel(
            owner_id=alice.user.id,
            name="mine",
            visibility="private",
            task="chat",
            base_model="tiny",
            path="models/mine",
        ),
    )
    async with database.sessions() as session:
        listed = await load_model_list(session, user=alice.user, system_keys=EVERY_KEY)
    names = {model.name: model for model in listed.usable}
    assert names["groq/openai/gpt-oss-120b"].model_id == "openai/gpt-oss-120b"
    assert names["llama-3.3-70b-versatile"].kind == ProviderKind.GROQ
    assert names["huggingface/llama-3.3-70b-versatile"].kind == ProviderKind.HUGGINGFACE
    assert names["openai_compatible/gpt-4o"].source == "provider"
    assert names["gpt-4.1"].source == "route" and names["openai/gpt-4.1"].source == "catalog"
    assert {"local/mine", "local/all-MiniLM-L6-v2", "house-model"} <= names.keys()
    assert listed.locked == []

    index = ModelIndex()
    for model in listed.usable:
        for name in (model.name, *model.aliases):
            assert await _meaning(index, database, name) == _described(model), name


async def test_no_step_is_lost_between_the_list_and_a_route(database: Database) -> None:
    route = GatewayRoute(
        name="mixed",
        targets=[
            {"provider": "openai", "model": "gpt-4o"},
            {"provider": "local", "model": "all-MiniLM-L6-v2"},
        ],
    )
    await _add(database, route)
    async with database.sessions() as session:
        listed = await load_model_list(session, user=None, system_keys={})
    # No OpenAI key: the route is reachable through its local target, and says what that is.
    mixed = listed.find("mixed")
    assert mixed is not None
    assert (mixed.task, mixed.context_length, mixed.input_price_per_million) == (
        "embedding",
        256,
        Decimal(0),
    )
    resolution = await ModelIndex().resolve(database, "mixed")
    assert resolution.steps[1] == Step(ProviderKind.LOCAL, "all-MiniLM-L6-v2")


@contextmanager
def _statements(database: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(database.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", record)


@pytest.mark.usefixtures("openai_provider")
async def test_a_long_list_is_read_with_one_query_per_table(
    database: Database, http: httpx.AsyncClient, alice: Caller
) -> None:
    await _add(
        database,
        *(
            LlmModel(provider_kind="openai", model_id=f"bulk-{n}", display_name=f"Bulk {n}")
            for n in range(400)
        ),
        *(
            GatewayRoute(name=f"route-{n}", targets=[{"provider": "local", "model": "x"}])
            for n in range(50)
        ),
        *(
            TrainedModel(
                owner_id=alice.user.id,
                name=f"trained-{n}",
                task="chat",
                base_model="tiny",
                path=f"models/t{n}",
            )
            for n in range(50)
        ),
    )
    with _statements(database) as seen:
        response = await http.get("/v1/models", headers=alice.headers)
    assert response.status_code == 200 and len(response.json()["data"]) > 500
    tables = Counter(
        table
        for statement in seen
        for table in re.findall(r"\bFROM (\w+)", statement)
        if table in {"llm_models", "providers", "gateway_routes", "trained_models"}
        or table == "user_provider_keys"
    )
    assert set(tables.values()) == {1}, tables
    assert len(tables) == 5

    timings = []
    for _ in range(10):
        started = time.perf_counter()
        assert (await http.get("/v1/models", headers=alice.headers)).status_code == 200
        timings.append(time.perf_counter() - started)
    # Measured on the 2-core build machine: about 50 ms for 520 entries (SQLite).
    print(f"GET /v1/models: median {statistics.median(timings) * 1000:.1f} ms")
    assert statistics.median(timings) < 0.5, timings
