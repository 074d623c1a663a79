"""Datasets from the Hub (``hub://owner/name[:split]``): fetched by the ``datasets``
library from a fake Hub on 127.0.0.1 serving Parquet files, with the three refusals of
private data (not found, no token, token refused), and each user's token theirs only."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.db.models import TrainingDataset, TrainingJob
from modelyard.training.hub_datasets import HubDatasetRef
from tests.fakes.hub import FakeHub, HubRepo
from tests.helpers import bearer, database_text, make_token, make_user
from tests.training.conftest import classification_rows

TOKEN = "hf_canaryhubdatasets0123456789abcdef"
#: Well formed, but the fake Hub does not know it.
OTHER_TOKEN = "hf_canaryhubotherperson0123456789abc"
TRAIN_FILE = "data/train-00000-of-00001.parquet"
TEST_FILE = "data/test-00000-of-00001.parquet"


def _parquet(rows: list[dict[str, str]]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


@pytest.fixture
def hub(settings: Settings) -> Iterator[FakeHub]:
    with FakeHub(keys={TOKEN}) as fake:
        fake.datasets["acme/reviews"] = HubRepo(
            files={
                TRAIN_FILE: _parquet(classification_rows(20)),
                TEST_FILE: _parquet(classification_rows(10)),
                "README.md": b"---\nlicense: mit\n---\n# Reviews\n",
            }
        )
        fake.datasets["acme/secret"] = HubRepo(
            files={TRAIN_FILE: _parquet(classification_rows(12))}, private=True
        )
        fake.datasets["acme/gated"] = HubRepo(
            files={TRAIN_FILE: _parquet(classification_rows(12))}, gated=True
        )
        fake.datasets["acme/odd"] = HubRepo(
            files={TRAIN_FILE: _parquet([{"body": "x", "y": "z"}] * 12)}
        )
        settings.hf_endpoint = fake.url
        yield fake


async def _user(database: Database, email: str) -> dict[str, str]:
    return bearer(await make_token(database, await make_user(database, email)))


async def _import(http: httpx.AsyncClient, auth: dict[str, str], **body: object) -> httpx.Response:
    return await http.post("/v2/datasets/hub", headers=auth, json=body)


async def _datasets(database: Database) -> int:
    async with database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(TrainingDataset)) or 0)


def test_references_are_parsed_and_bad_ones_say_how_to_write_them() -> None:
    assert HubDatasetRef.parse("hub://acme/reviews") == HubDatasetRef("acme/reviews", "train")
    assert HubDatasetRef.parse("hub://acme/re.v-1:test") == HubDatasetRef("acme/re.v-1", "test")
    assert str(HubDatasetRef("acme/reviews")) == "hub://acme/reviews:train"
    for bad in (
        "acme/reviews",
        "hub://reviews",
        "hub://acme/reviews:",
        "hub://a/b/c",
        "hub://../x",
    ):
        with pytest.raises(Exception, match="hub://owner/name:split"):
            HubDatasetRef.parse(bad)


async def test_a_public_split_is_fetched_by_the_datasets_library(
    http: httpx.AsyncClient, database: Database, hub: FakeHub, settings: Settings
) -> None:
    auth = await _user(database, "reader@example.com")
    train = await _import(http, auth, source="hub://acme/reviews")
    assert train.status_code == 201, train.text
    body = train.json()
    assert body["name"] == "hub://acme/reviews:train" and body["format"] == "parquet"
    assert body["kind"] == "classification" and body["num_examples"] == 20
    assert body["labels"] == ["negative", "positive"]
    # Through the real client: the dataset info, the tree, then the Parquet file itself.
    paths = [r.path for r in hub.requests]
    assert "/api/datasets/acme/reviews" in paths
    assert any(p.startswith("/api/datasets/acme/reviews/tree/") for p in paths)
    assert any(p.endswith(f"/{TRAIN_FILE}") and p.startswith("/datasets/") for p in paths)
    assert all(r.header("authorization") is None for r in hub.requests)  # no token: none sent

    test = await _import(http, auth, source="hub://acme/reviews:test", name="held out")
    assert test.status_code == 201, test.text
    assert test.json()["num_examples"] == 10 and test.json()["name"] == "held out"
    stored = settings.data_dir.resolve() / "datasets"
    assert not list(stored.glob(".hub-*"))  # no staged file is left


async def test_three_distinct_refusals_of_private_data(
    http: httpx.AsyncClient, database: Database, hub: FakeHub, settings: Settings
) -> None:
    auth = await _user(database, "reader@example.com")
    missing = await _import(http, auth, source="hub://acme/nonesuch")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "dataset_not_found"
    assert missing.json()["error"]["param"] == "source"
    split = await _import(http, auth, source="hub://acme/reviews:nope")
    assert split.status_code == 404 and "no split 'nope'" in split.json()["error"]["message"]
    assert "train" in split.json()["error"]["message"]

    no_token = await _import(http, auth, source="hub://acme/secret")
    assert no_token.status_code == 401
    assert no_token.json()["error"]["code"] == "dataset_token_required"
    refused = await _import(http, auth, source="hub://acme/secret", hf_token=OTHER_TOKEN)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "dataset_token_refused"
    gated = await _import(http, auth, source="hub://acme/gated")
    assert gated.status_code == 401
    assert await _datasets(database) == 0

    allowed = await _import(http, auth, source="hub://acme/secret", hf_token=TOKEN)
    assert allowed.status_code == 201, allowed.text
    assert allowed.json()["num_examples"] == 12
    sent = {r.header("authorization") for r in hub.requests if "acme/secret" in r.path}
    assert f"Bearer {TOKEN}" in sent


async def test_unsuitable_or_malformed_requests_leave_nothing(
    http: httpx.AsyncClient, database: Database, hub: FakeHub, settings: Settings
) -> None:
    auth = await _user(database, "reader@example.com")
    odd = await _import(http, auth, source="hub://acme/odd")
    assert odd.status_code == 400 and odd.json()["error"]["code"] == "invalid_dataset"
    assert "missing columns" in odd.json()["error"]["message"]
    wrong_task = await _import(http, auth, source="hub://acme/reviews", task="sft")
    assert wrong_task.status_code == 400
    bad = await _import(http, auth, source="acme/reviews")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_dataset_ref"
    malformed = await _import(http, auth, source="hub://acme/secret", hf_token="hf_short")
    assert malformed.status_code == 400 and malformed.json()["error"]["param"] == "hf_token"
    settings.dataset_max_bytes = 1024
    large = await _import(http, auth, source="hub://acme/reviews")
    assert large.status_code == 400 and large.json()["error"]["code"] == "dataset_too_large"
    assert await _datasets(database) == 0
    assert [p.name for p in (settings.data_dir.resolve() / "datasets").iterdir()] == []


async def test_a_token_serves_only_its_owner(
    http: httpx.AsyncClient,
    database: Database,
    hub: FakeHub,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    owner = await _user(database, "owner@example.com")
    other = await _user(database, "other@example.com")
    # The server's own token (in its environment) never reads data for a user.
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    mine = await _import(http, owner, source="hub://acme/secret", hf_token=TOKEN, use_saved=True)
    assert mine.status_code == 201, mine.text
    dataset_id = mine.json()["id"]
    assert (await http.get(f"/v2/datasets/{dataset_id}", headers=other)).status_code == 404
    assert all(
        d["id"] != dataset_id
        for d in (await http.get("/v2/datasets", headers=other)).json()["data"]
    )
    # The owner's fetch filled no cache another user could read from.
    again = await _import(http, other, source="hub://acme/secret", use_saved=True)
    assert again.status_code == 401
    job = await http.post(
        "/train", headers=other, json={"task": "classification", "dataset_id": dataset_id}
    )
    assert job.status_code == 404
    assert TOKEN not in await database_text(database) and TOKEN not in caplog.text


async def test_a_job_trains_on_a_hub_dataset_in_the_first_front_ends_shape(
    http: httpx.AsyncClient, database: Database, hub: FakeHub, settings: Settings
) -> None:
    auth = await _user(database, "trainer2@example.com")
    body = {
        "task": "text-classification",
        "dataset": "hub://acme/secret:train",
        "hf_token": TOKEN,
        "compute_type": "cpu",
        "max_steps": 1,
        "hub": {"push": False},
    }
    created = await http.post("/train", headers=auth, json=body)
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["task"] == "classification" and job["config"]["task"] == "classification"
    listed = (await http.get("/v2/datasets", headers=auth)).json()["data"]
    assert [d["id"] for d in listed] == [job["dataset_id"]]
    assert listed[0]["name"] == "hub://acme/secret:train"
    assert TOKEN not in await database_text(database)

    # A job refused after the fetch keeps no dataset: the name is taken now.
    taken = await http.post(
        "/train", headers=auth, json={**body, "output_name": job["output_name"]}
    )
    assert taken.status_code == 409
    assert len((await http.get("/v2/datasets", headers=auth)).json()["data"]) == 1
    refused = await http.post("/train", headers=auth, json={**body, "hf_token": OTHER_TOKEN})
    assert refused.status_code == 403 and refused.json()["error"]["param"] == "dataset"
    async with database.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(TrainingJob)) == 1
