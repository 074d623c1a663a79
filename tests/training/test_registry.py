"""The training task registry drives the API, the web page and the CLI: the tasks they
offer are the registry's, and an unknown task is refused naming the registered ones."""

from __future__ import annotations

import json
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from modelyard.db.engine import Database
from modelyard.training.config import TrainingConfig
from modelyard.training.tasks import TASK_NAMES, TASKS, UnknownTaskError, get_task
from modelyard.training.tasks import classification as classification_task
from tests.cli_helpers import invoke, isolate_cli
from tests.helpers import login, make_user
from tests.training.conftest import UploadFn, classification_rows, write_csv


class _TaskInputs(HTMLParser):
    """The task radios, the dataset form's task options, the base model lists and the
    ``data-tasks`` catalog of the training page."""

    def __init__(self) -> None:
        super().__init__()
        self.radios: list[str] = []
        self.checks: list[str] = []
        self.datalists: list[str] = []
        self.catalog: list[dict[str, object]] = []
        self._in_check = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "input" and found.get("name") == "task":
            self.radios.append(found.get("value") or "")
        elif tag == "select":
            self._in_check = found.get("id") == "dataset-task"
        elif tag == "option" and self._in_check:
            self.checks.append(found.get("value") or "")
        elif tag == "datalist" and (found.get("id") or "").startswith("bases-"):
            self.datalists.append((found.get("id") or "").removeprefix("bases-"))
        if found.get("id") == "training-app":
            self.catalog = json.loads(found.get("data-tasks") or "[]")

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._in_check = False


@pytest.fixture
def toy_task(monkeypatch: pytest.MonkeyPatch) -> str:
    """A third task in the registry (a renamed classifier), for this test only."""
    toy = replace(classification_task.TASK, name="toy", label="Toy task", noun="a toy")
    monkeypatch.setitem(TASKS, "toy", toy)
    return toy.name


def test_get_task_names_the_registered_tasks_when_it_does_not_know_one() -> None:
    assert TASK_NAMES == tuple(TASKS) == ("classification", "sft", "dpo", "orpo")
    assert get_task("sft").name == "sft"
    with pytest.raises(UnknownTaskError) as caught:
        get_task("regression")
    assert caught.value.status_code == 400 and caught.value.param == "task"
    assert caught.value.message == (
        "Unknown task 'regression'; use classification or sft or dpo or orpo."
    )


def test_the_config_takes_its_task_names_and_defaults_from_the_registry() -> None:
    schema = TrainingConfig.model_json_schema()
    assert schema["properties"]["task"]["enum"] == list(TASK_NAMES)
    for task in TASKS.values():
        assert TrainingConfig(task=task.name).resolved_base() == task.default_base


async def test_the_api_lists_the_registry_and_refuses_an_unknown_task(
    http: httpx.AsyncClient, auth: dict[str, str], upload: UploadFn, tmp_path: Path, toy_task: str
) -> None:
    listed = await http.get("/v2/training/tasks", headers=auth)
    assert listed.status_code == 200, listed.text
    tasks = listed.json()["data"]
    assert (
        [t["name"] for t in tasks]
        == list(TASKS)
        == ["classification", "sft", "dpo", "orpo", toy_task]
    )
    assert tasks == [task.describe() for task in TASKS.values()]
    schema = (await http.get("/openapi.json")).json()["components"]["schemas"]
    assert schema["JobCreate"]["properties"]["task"]["enum"] == list(TASK_NAMES)

    reviews = write_csv(tmp_path / "reviews.csv", classification_rows(12))
    refused = await upload(reviews, task="regression")
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["param"] == "task"
    assert error["message"] == f"Unknown task 'regression'; use {' or '.join(TASKS)}."
    dataset = await upload(reviews)
    assert dataset.status_code == 201, dataset.text
    job = await http.post(
        "/v2/training/jobs",
        headers=auth,
        json={"task": "regression", "dataset_id": dataset.json()["id"]},
    )
    assert job.status_code == 422, job.text
    assert all(repr(name) in job.text for name in TASK_NAMES), job.text


async def test_the_training_page_offers_the_registry_tasks(
    http: httpx.AsyncClient, database: Database, toy_task: str
) -> None:
    await make_user(database, "tasks@example.com")
    await login(http, "tasks@example.com")
    page = await http.get("/training")
    assert page.status_code == 200, page.text
    inputs = _TaskInputs()
    inputs.feed(page.text)
    names = list(TASKS)
    assert names == ["classification", "sft", "dpo", "orpo", toy_task]
    assert inputs.radios == names
    assert inputs.checks == ["", *names]
    assert inputs.datalists == names
    assert inputs.catalog == [task.describe() for task in TASKS.values()]
    assert 'value="classification" checked' in page.text


def test_the_cli_offers_the_registry_tasks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_cli(tmp_path, monkeypatch)
    data = write_csv(tmp_path / "reviews.csv", classification_rows(12))
    code, output = invoke("train", "--data", str(data), "--task", "regression")
    assert code == 2, output
    assert "'regression' is not one of" in output
    assert all(f"'{name}'" in output for name in TASK_NAMES), output
    code, output = invoke("train", "--help")
    assert code == 0 and f"<{'|'.join(TASK_NAMES)}>" in output, output
