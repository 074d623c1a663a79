"""Tenant isolation of local models, as an attacker with two accounts would try it.

User A owns trained models (a chat model and a classifier); user B is an ordinary user,
S is staff. Every path that takes a model name answers B for A's private model exactly as
for a model that does not exist, by any spelling; sharing opens it, staff see everything;
filesystem paths are staff-only under configured roots; Hub downloads by users are off
unless enabled and capped; a Hub model loaded with A's token is never served to B.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.db.models import TrainedModel
from modelyard.training.outputs import ModelCard, ModelExistsError, model_folder, save_model
from tests.fakes.hub import FakeHub, HubRepo
from tests.helpers import bearer, make_token, make_user, offer_local_model
from tests.local.builders import build_causal, build_classifier
from tests.training.conftest import classification_rows, write_csv

HELLO = [{"role": "user", "content": "hello"}]
HUB_TOKEN_A = "hf_tenancyAAAAAAAAAAAAAAAAAAAAAAAAA"
HUB_TOKEN_B = "hf_tenancyBBBBBBBBBBBBBBBBBBBBBBBBB"


@pytest.fixture(scope="module")
def tiny_causal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_causal(tmp_path_factory.mktemp("tenancy") / "tiny-chat")


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_classifier(tmp_path_factory.mktemp("tenancy") / "tiny-clf")


@pytest.fixture
def roots(tmp_path: Path) -> Path:
    root = tmp_path / "model-roots"
    root.mkdir()
    return root


@pytest.fixture
def settings(settings: Settings, roots: Path, tmp_path: Path) -> Iterator[Settings]:
    import huggingface_hub.constants

    settings.local_model_dirs = [roots]
    original = huggingface_hub.constants.HF_HUB_CACHE
    huggingface_hub.constants.HF_HUB_CACHE = str(tmp_path / "hf-cache")
    yield settings
    huggingface_hub.constants.HF_HUB_CACHE = original


@dataclass
class World:
    a: dict[str, str]
    b: dict[str, str]
    staff: dict[str, str]
    a_id: int
    chat_id: int
    clf_id: int
    chat_dir: Path
    clf_dir: Path


async def plant(
    database: Database,
    settings: Settings,
    *,
    owner: int | None,
    name: str,
    source: Path,
    task: str,
    visibility: str = "private",
) -> tuple[int, Path]:
    """A trained model of ``owner`` as a succeeded job leaves it: folder and record."""
    folder = model_folder(owner, name)
    destination = settings.data_dir.resolve() / folder
    shutil.copytree(source, destination)
    async with database.sessions() as session:
        record = TrainedModel(
            owner_id=owner,
            name=name,
            visibility=visibility,
            task=task,
            base_model="tiny",
            path=folder,
        )
        session.add(record)
        await session.commit()
        return record.id, destination


@pytest.fixture
async def world(
    database: Database, settings: Settings, tiny_causal: Path, tiny_classifier: Path
) -> World:
    a = await make_user(database, "owner-a@example.com")
    b = await make_user(database, "attacker-b@example.com")
    staff = await make_user(database, "staff@example.com", staff=True)
    chat_id, chat_dir = await plant(
        database, settings, owner=a.id, name="secret-chat", source=tiny_causal, task="chat"
    )
    clf_id, clf_dir = await plant(
        database,
        settings,
        owner=a.id,
        name="secret-clf",
        source=tiny_classifier,
        task="classification",
    )
    return World(
        a=bearer(await make_token(database, a)),
        b=bearer(await make_token(database, b)),
        staff=bearer(await make_token(database, staff)),
        a_id=a.id,
        chat_id=chat_id,
        clf_id=clf_id,
        chat_dir=chat_dir,
        clf_dir=clf_dir,
    )


def _chat(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": HELLO, "max_tokens": 2, **extra}


async def _call(
    http: httpx.AsyncClient, auth: dict[str, str], probe: str, name: str
) -> httpx.Response:
    """One path that takes a model name, asked for ``name``."""
    if probe == "chat":
        return await http.post("/v1/chat/completions", headers=auth, json=_chat(f"local/{name}"))
    if probe == "stream":
        body = _chat(f"local/{name}", stream=True)
        return await http.post("/v1/chat/completions", headers=auth, json=body)
    if probe == "completions":
        body = {"model": f"local/{name}", "prompt": "hello", "max_tokens": 2}
        return await http.post("/v1/completions", headers=auth, json=body)
    if probe == "completions-stream":
        body = {"model": f"local/{name}", "prompt": "hello", "max_tokens": 2, "stream": True}
        return await http.post("/v1/completions", headers=auth, json=body)
    if probe == "responses":
        body = {"model": f"local/{name}", "input": "hello", "max_output_tokens": 2}
        return await http.post("/v1/responses", headers=auth, json=body)
    if probe == "responses-stream":
        body = {"model": f"local/{name}", "input": "hello", "max_output_tokens": 2, "stream": True}
        return await http.post("/v1/responses", headers=auth, json=body)
    if probe == "embeddings":
        body = {"model": f"local/{name}", "input": "x"}
        return await http.post("/v1/embeddings", headers=auth, json=body)
    if probe == "messages":
        body = {"model": f"local/{name}", "max_tokens": 2, "messages": HELLO}
        return await http.post("/v1/messages", headers=auth, json=body)
    if probe == "count-tokens":
        body = {"model": f"local/{name}", "messages": HELLO}
        return await http.post("/v1/messages/count_tokens", headers=auth, json=body)
    if probe == "v2-chat":
        return await http.post(
            "/v2/llm/chat/completions", headers=auth, json=_chat(f"local/{name}")
        )
    if probe == "advice":  # a named advisor model goes through the gateway like any chat
        body = {"task": "classification", "description": "x", "model": f"local/{name}"}
        return await http.post("/v2/training/advice", headers=auth, json=body)
    if probe == "classify":
        path = f"/v2/models/{quote(name, safe='/')}/classify"
        return await http.post(path, headers=auth, json={"input": "x"})
    if probe == "retrieve":
        return await http.get(f"/v1/models/local/{quote(name, safe='/')}", headers=auth)
    raise AssertionError(probe)


def _anonymised(response: httpx.Response, name: str) -> str:
    return response.text.replace(name, "NAME")


PROBES = (
    "chat",
    "stream",
    "completions",
    "completions-stream",
    "responses",
    "responses-stream",
    "embeddings",
    "messages",
    "count-tokens",
    "v2-chat",
    "advice",
    "classify",
    "retrieve",
)

#: Every route of the API that takes a model name and is open to users, by probe.
PROBED_ROUTES = {
    ("POST", "/v1/chat/completions"): "chat",
    ("POST", "/v1/completions"): "completions",
    ("POST", "/v1/responses"): "responses",
    ("POST", "/v1/embeddings"): "embeddings",
    ("POST", "/v1/messages"): "messages",
    ("POST", "/v1/messages/count_tokens"): "count-tokens",
    ("POST", "/v2/llm/chat/completions"): "v2-chat",
    ("POST", "/v2/training/advice"): "advice",
    ("POST", "/v2/models/{name}/classify"): "classify",
    ("GET", "/v1/models/{model_id}"): "retrieve",
    # base_model of a new job: test_b_cannot_train_on_a_private_model_nor_push_it
    ("POST", "/v2/training/jobs"): "jobs",
    ("POST", "/train"): "jobs",
}
#: Staff-only routes whose model fields name a remote provider's models.
STAFF_ROUTES = {
    "/v2/admin/providers",
    "/v2/admin/providers/{provider_id}",
    "/v2/finetune/commands",
    # The default chat model: a name checked against the staff's own list; a user gets
    # it only where it is one of their chat models (test_default_chat_model.py).
    "/v2/admin/settings/default-chat-model",
}


def _named_in_path(operation: dict[str, Any]) -> bool:
    """Whether a path parameter is a model name (a string ``model_id``; numbers are rows)."""
    return any(
        parameter["in"] == "path"
        and parameter["name"] == "model_id"
        and parameter.get("schema", {}).get("type") == "string"
        for parameter in operation.get("parameters", [])
    )


def _model_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) whose body has a ``model``/``base_model`` or whose path a name."""
    spec = app.openapi()
    schemas = spec.get("components", {}).get("schemas", {})

    def fields(schema: dict[str, Any]) -> set[str]:
        if "$ref" in schema:
            schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
        found = set(schema.get("properties", {}))
        for key in ("anyOf", "oneOf", "allOf"):
            for part in schema.get(key, []):
                found |= fields(part)
        return found

    routes = set()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            names = set().union(*(fields(c.get("schema", {})) for c in content.values()))
            if names & {"model", "base_model"} or "{name" in path or _named_in_path(operation):
                routes.add((method.upper(), path))
    return {route for route in routes if route[1] not in STAFF_ROUTES}


def test_the_walk_covers_every_route_that_takes_a_model_name(app: FastAPI) -> None:
    assert _model_routes(app) == set(PROBED_ROUTES)


async def test_b_gets_for_a_private_model_what_a_missing_model_gets_on_every_path(
    client: httpx.AsyncClient, world: World
) -> None:
    for name in ("secret-chat", "secret-clf"):
        for probe in PROBES:
            foreign = await _call(client, world.b, probe, name)
            missing = await _call(client, world.b, probe, "no-such-model-xyz")
            assert foreign.status_code == 404, (probe, name, foreign.text)
            assert _anonymised(foreign, name) == _anonymised(missing, "no-such-model-xyz")
    # Nothing was half-written for B: no conversation from the refused chats.
    listed = await client.get("/v2/conversations/", headers=world.b)
    assert listed.status_code == 200 and listed.json()["total"] == 0
    # A, the owner, is served on the same paths (so the 404s above are not a broken setup).
    chat = await _call(client, world.a, "chat", "secret-chat")
    assert chat.status_code == 200, chat.text
    assert chat.json()["model"] == "secret-chat"
    completed = await _call(client, world.a, "completions", "secret-chat")
    assert completed.status_code == 200, completed.text
    assert completed.json()["object"] == "text_completion"
    answered = await _call(client, world.a, "responses", "secret-chat")
    assert answered.status_code == 200, answered.text
    assert answered.json()["object"] == "response"
    counted = await _call(client, world.a, "count-tokens", "secret-chat")
    assert counted.status_code == 200, counted.text
    assert counted.headers["x-modelyard-estimated"] == "true"
    classified = await _call(client, world.a, "classify", "secret-clf")
    assert classified.status_code == 200, classified.text
    assert classified.json()["data"][0]["label"] in ("negative", "positive")
    wrong_task = await _call(client, world.a, "embeddings", "secret-chat")
    assert wrong_task.status_code == 400  # A learns the task; B above only learned "missing"

    listed_b = (await client.get("/v1/models", headers=world.b)).json()["data"]
    listed_a = (await client.get("/v1/models", headers=world.a)).json()["data"]
    assert not {m["id"] for m in listed_b} & {"local/secret-chat", "local/secret-clf"}
    assert {"local/secret-chat", "local/secret-clf"} <= {m["id"] for m in listed_a}
    trained_b = (await client.get("/v2/models/trained", headers=world.b)).json()["data"]
    assert trained_b == []
    trained_a = (await client.get("/v2/models/trained", headers=world.a)).json()["data"]
    assert {m["name"] for m in trained_a} == {"secret-chat", "secret-clf"}
    assert all(m["owned"] and "path" not in m for m in trained_a)


async def test_b_cannot_train_on_a_private_model_nor_push_it(
    client: httpx.AsyncClient, world: World, tmp_path: Path
) -> None:
    csv = write_csv(tmp_path / "rows.csv", classification_rows(20)).read_bytes()
    upload = await client.post("/v2/datasets", headers=world.b, files={"file": ("r.csv", csv)})
    assert upload.status_code == 201, upload.text
    dataset_id = upload.json()["id"]
    for base in ("secret-clf", str(world.clf_dir), f"/proc/self/cwd/{world.clf_dir}"):
        job = {"task": "classification", "dataset_id": dataset_id, "base_model": base}
        refused = await client.post("/v2/training/jobs", headers=world.b, json=job)
        assert refused.status_code == 404, refused.text
        assert refused.json()["error"]["param"] == "base_model"
        assert "no such directory" not in refused.text and "has no config.json" not in refused.text
    jobs = (await client.get("/v2/training/jobs", headers=world.b)).json()["data"]
    assert jobs == []  # nothing was half-created


def _relative_to_cwd(path: Path) -> str:
    return os.path.relpath(path, Path.cwd())


async def test_every_spelling_of_a_private_model_is_refused(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    data_dir = settings.data_dir.resolve()
    relative = _relative_to_cwd(world.clf_dir)
    spellings = [
        str(world.clf_dir),
        f"/proc/self/cwd/{relative}",
        f"{world.clf_dir}/",
        f"{world.clf_dir}/../secret-clf",
        f"models/u{world.a_id}/secret-clf",
        f"u{world.a_id}/secret-clf",
        str(data_dir / "models" / f"u{world.a_id}" / "." / "secret-clf"),
        "~/../" + str(world.clf_dir).lstrip("/"),
    ]
    missing = await _call(client, world.b, "classify", "no-such-model-xyz")
    for spelling in spellings:
        for probe in ("classify", "chat"):
            answer = await _call(client, world.b, probe, spelling)
            assert answer.status_code == 404, (spelling, probe, answer.text)
            assert (
                "has no config.json" not in answer.text and "no such directory" not in answer.text
            )
        classify = await _call(client, world.b, "classify", spelling)
        assert classify.json()["error"]["code"] == missing.json()["error"]["code"]
    encoded = f"/v2/models/{quote(str(world.clf_dir), safe='')}/classify"
    answer = await client.post(encoded, headers=world.b, json={"input": "x"})
    assert answer.status_code == 404
    double = f"/v2/models/{quote(quote(str(world.clf_dir), safe=''), safe='')}/classify"
    answer = await client.post(double, headers=world.b, json={"input": "x"})
    assert answer.status_code == 404


async def test_sharing_opens_a_model_and_only_its_owner_or_staff_changes_that(
    client: httpx.AsyncClient, world: World
) -> None:
    path = f"/v2/models/trained/{world.clf_id}"
    by_b = await client.patch(path, headers=world.b, json={"visibility": "everyone"})
    assert by_b.status_code == 404
    assert (await _call(client, world.b, "classify", "secret-clf")).status_code == 404

    shared = await client.patch(path, headers=world.a, json={"visibility": "everyone"})
    assert shared.status_code == 200, shared.text
    assert shared.json()["visibility"] == "everyone"
    used = await _call(client, world.b, "classify", "secret-clf")
    assert used.status_code == 200, used.text
    trained_b = (await client.get("/v2/models/trained", headers=world.b)).json()["data"]
    assert [(m["name"], m["owned"]) for m in trained_b] == [("secret-clf", False)]
    assert "local/secret-clf" in {
        m["id"] for m in (await client.get("/v1/models", headers=world.b)).json()["data"]
    }
    # Shared is not B's: B still cannot make it private, nor reach A's other model.
    assert (
        await client.patch(path, headers=world.b, json={"visibility": "private"})
    ).status_code == 404
    assert (await _call(client, world.b, "chat", "secret-chat")).status_code == 404

    bad = await client.patch(path, headers=world.a, json={"visibility": "public"})
    assert bad.status_code == 422

    by_staff = await client.patch(path, headers=world.staff, json={"visibility": "private"})
    assert by_staff.status_code == 200 and by_staff.json()["owned"] is False
    assert (await _call(client, world.b, "classify", "secret-clf")).status_code == 404
    # Staff see and use every model.
    assert (await _call(client, world.staff, "classify", "secret-clf")).status_code == 200
    staff_list = (await client.get("/v2/models/trained", headers=world.staff)).json()["data"]
    assert {m["name"] for m in staff_list} == {"secret-chat", "secret-clf"}


async def test_names_are_unique_per_owner_and_a_model_is_never_replaced(
    client: httpx.AsyncClient, world: World, tmp_path: Path, database: Database, settings: Settings
) -> None:
    csv = write_csv(tmp_path / "rows.csv", classification_rows(20)).read_bytes()
    ids = {}
    for who, auth in (("a", world.a), ("b", world.b)):
        upload = await client.post("/v2/datasets", headers=auth, files={"file": ("r.csv", csv)})
        assert upload.status_code == 201, upload.text
        ids[who] = upload.json()["id"]
    job = {"task": "classification", "output_name": "secret-clf"}
    taken = await client.post(
        "/v2/training/jobs", headers=world.a, json={**job, "dataset_id": ids["a"]}
    )
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "name_taken"
    # B's namespace is B's own: the same name is free (and says nothing about A's models).
    free = await client.post(
        "/v2/training/jobs", headers=world.b, json={**job, "dataset_id": ids["b"]}
    )
    assert free.status_code == 201, free.text

    # An automatic name is checked like a chosen one: A already has every plain candidate.
    next_ids = range(free.json()["id"] + 1, free.json()["id"] + 4)
    async with database.sessions() as session:
        for number in next_ids:
            session.add(
                TrainedModel(
                    owner_id=world.a_id,
                    name=f"all-MiniLM-L6-v2-classification-{number}",
                    task="classification",
                    base_model="x",
                    path=model_folder(world.a_id, f"all-MiniLM-L6-v2-classification-{number}"),
                )
            )
        await session.commit()
    auto = await client.post(
        "/v2/training/jobs",
        headers=world.a,
        json={"task": "classification", "dataset_id": ids["a"]},
    )
    assert auto.status_code == 201, auto.text
    assert auto.json()["output_name"] == f"all-MiniLM-L6-v2-classification-{auto.json()['id']}-2"

    # Saving over another job's model is refused and the model is kept as it was.
    before = (world.clf_dir / "config.json").read_bytes()
    card = ModelCard("secret-clf", "classification", "x", {}, {}, {}, job_id=999)
    with pytest.raises(ModelExistsError):
        save_model(object(), object(), world.clf_dir, card)
    assert (world.clf_dir / "config.json").read_bytes() == before
    assert not [p for p in world.clf_dir.parent.iterdir() if p.name.startswith(".")]


async def test_paths_are_staff_only_and_only_under_the_configured_roots(
    client: httpx.AsyncClient,
    world: World,
    roots: Path,
    tiny_causal: Path,
    tmp_path: Path,
    database: Database,
) -> None:
    inside = roots / "team" / "chat"
    shutil.copytree(tiny_causal, inside)
    outside = tmp_path / "elsewhere" / "chat"
    shutil.copytree(tiny_causal, outside)
    (roots / "escape").symlink_to(outside)
    empty = roots / "empty"
    empty.mkdir()
    (roots / "odd").mkdir()
    (roots / "odd" / "config.json").write_text('{"secret": "do-not-echo", "model_type": 7}')

    # B: no path at all, each refusal the same as for a missing name of the same shape.
    async def missing(name: str) -> str:
        return _anonymised(await _call(client, world.b, "chat", name), name)

    as_path = await missing(str(tmp_path / "never-there"))
    as_hub_id = await missing("acme/never-there")
    for name in (str(inside), str(empty), str(roots / "odd"), str(roots / "nope"), "team/chat"):
        answer = await _call(client, world.b, "chat", name)
        assert answer.status_code == 404, (name, answer.text)
        expected = as_path if name.startswith("/") else as_hub_id
        assert _anonymised(answer, name) == expected
    # Staff: under a root, by absolute or root-relative path.
    for name in (str(inside), "team/chat"):
        answer = await _call(client, world.staff, "chat", name)
        assert answer.status_code == 200, (name, answer.text)
    # Staff outside every root, through a link out of a root, or where there is no model:
    # one generic answer, with nothing read from the files.
    for name in (
        str(outside),
        str(roots / "escape"),
        str(empty),
        f"/proc/self/cwd/{outside}",
        "/etc",
    ):
        answer = await _call(client, world.staff, "chat", name)
        assert answer.status_code == 404, (name, answer.text)
        assert "no such directory" not in answer.text and "has no config.json" not in answer.text
    odd = await _call(client, world.staff, "chat", str(roots / "odd"))
    assert odd.status_code in (400, 404) and "do-not-echo" not in odd.text

    # A folder an admin offers in the catalog is open to users, if it is under a root.
    for folder in (inside, outside):
        await offer_local_model(database, str(folder), "chat")
    assert (await _call(client, world.b, "chat", str(inside))).status_code == 200
    assert (await _call(client, world.b, "chat", str(outside))).status_code == 404


@pytest.fixture
def hub(tiny_causal: Path) -> Iterator[FakeHub]:
    files = {p.name: p.read_bytes() for p in tiny_causal.iterdir() if p.is_file()}
    with FakeHub(keys={HUB_TOKEN_A}) as fake:
        fake.repos["acme/public-chat"] = HubRepo(files=dict(files))
        fake.repos["acme/private-chat"] = HubRepo(files=dict(files), private=True)
        big = {**files, "model-00002.safetensors": b"x" * (3 * 2**20)}
        fake.repos["acme/big-chat"] = HubRepo(files=big)
        yield fake


def _resolves(hub: FakeHub, repo: str) -> int:
    return sum(1 for r in hub.requests if f"/{repo}/resolve/" in r.path)


async def test_hub_downloads_by_users_are_off_unless_enabled_or_offered(
    client: httpx.AsyncClient, world: World, hub: FakeHub, settings: Settings, database: Database
) -> None:
    settings.hf_endpoint = hub.url
    client_app = client._transport.app  # type: ignore[attr-defined]
    client_app.state.modelyard.gateway.local_models.endpoint = hub.url
    refused = await _call(client, world.b, "chat", "acme/public-chat")
    missing = await _call(client, world.b, "chat", "acme/no-such-repo")
    assert refused.status_code == 404 and "MODELYARD_LOCAL_HUB_DOWNLOADS" in refused.text
    assert _anonymised(refused, "acme/public-chat") == _anonymised(missing, "acme/no-such-repo")
    assert not hub.requests  # nothing was asked of the Hub

    await offer_local_model(database, "acme/public-chat", "chat")
    offered = await _call(client, world.b, "chat", "acme/public-chat")
    assert offered.status_code == 200, offered.text

    settings.local_hub_downloads = True
    settings.local_hub_max_mb = 2
    too_big = await _call(client, world.b, "chat", "acme/big-chat")
    assert too_big.status_code == 400 and too_big.json()["error"]["code"] == "model_too_large"
    assert _resolves(hub, "acme/big-chat") == 0  # refused from the metadata alone
    settings.local_hub_max_mb = 8
    assert (await _call(client, world.b, "chat", "acme/big-chat")).status_code == 200
    # Staff are not capped nor switched off.
    settings.local_hub_downloads = False
    assert (await _call(client, world.staff, "chat", "acme/big-chat")).status_code == 200


async def _user_key(client: httpx.AsyncClient, auth: dict[str, str], key: str) -> None:
    saved = await client.patch(
        "/v2/users/me/api-key", headers=auth, json={"provider": "huggingface", "api_key": key}
    )
    assert saved.status_code in (200, 201), saved.text


async def test_a_model_loaded_with_a_token_is_served_only_to_callers_whose_token_may_read_it(
    client: httpx.AsyncClient, world: World, hub: FakeHub, settings: Settings
) -> None:
    settings.hf_endpoint = hub.url
    settings.local_hub_downloads = True
    client_app = client._transport.app  # type: ignore[attr-defined]
    client_app.state.modelyard.gateway.local_models.endpoint = hub.url
    await _user_key(client, world.a, HUB_TOKEN_A)
    await _user_key(client, world.b, HUB_TOKEN_B)
    served = await _call(client, world.a, "chat", "acme/private-chat")
    assert served.status_code == 200, served.text
    # B's own token has no access: the copy A loaded is not handed over, the Hub says no.
    refused = await _call(client, world.b, "chat", "acme/private-chat")
    assert refused.status_code in (401, 403, 404), refused.text
    assert hub.requests[-1].header("authorization") == f"Bearer {HUB_TOKEN_B}"
    again = await _call(client, world.a, "chat", "acme/private-chat")
    assert again.status_code == 200


async def test_cached_answers_belong_to_whoever_paid(
    client: httpx.AsyncClient, world: World, database: Database, settings: Settings
) -> None:
    from tests.fakes.fixtures import OPENAI_KEY
    from tests.fakes.openai_chat import ChatOpenAI
    from tests.gateway.conftest import add_provider

    cache = {"x-modelyard-cache": "true"}
    with ChatOpenAI(keys={OPENAI_KEY}) as upstream:
        settings.provider_base_urls = {"openai": upstream.base_url}  # for B's own key below
        await add_provider(database, "fake openai", upstream.base_url, OPENAI_KEY, default=True)
        body = _chat("gpt-4o-mini")
        first = await client.post("/v1/chat/completions", headers={**world.a, **cache}, json=body)
        assert first.status_code == 200 and first.headers["x-modelyard-cache"] == "miss"
        again = await client.post("/v1/chat/completions", headers={**world.a, **cache}, json=body)
        assert again.headers["x-modelyard-cache"] == "hit"
        seen = len(upstream.requests)
        other = await client.post("/v1/chat/completions", headers={**world.b, **cache}, json=body)
        assert other.headers["x-modelyard-cache"] == "miss" and len(upstream.requests) == seen + 1

        route = {
            "name": "shared-answers",
            "targets": [{"provider": "openai", "model": "gpt-4o-mini"}],
            "cache_ttl_seconds": 60,
            "cache_shared": True,
        }
        created = await client.post("/v2/admin/routes", headers=world.staff, json=route)
        assert created.status_code == 201, created.text
        assert created.json()["cache_shared"] is True
        routed = _chat("shared-answers")
        by_a = await client.post("/v1/chat/completions", headers=world.a, json=routed)
        assert by_a.headers["x-modelyard-cache"] == "miss"
        seen = len(upstream.requests)
        by_b = await client.post("/v1/chat/completions", headers=world.b, json=routed)
        assert by_b.headers["x-modelyard-cache"] == "hit" and len(upstream.requests) == seen

        # An answer paid by B's own key stays B's, even on a sharing route.
        own = await client.patch(
            "/v2/users/me/api-key",
            headers=world.b,
            json={"provider": "openai", "api_key": OPENAI_KEY},
        )
        assert own.status_code in (200, 201), own.text
        paid_by_b = _chat("shared-answers", max_tokens=3)
        first_b = await client.post("/v1/chat/completions", headers=world.b, json=paid_by_b)
        assert first_b.headers["x-modelyard-cache"] == "miss"
        seen = len(upstream.requests)
        by_a = await client.post("/v1/chat/completions", headers=world.a, json=paid_by_b)
        assert by_a.headers["x-modelyard-cache"] == "miss" and len(upstream.requests) == seen + 1
