"""``auto``: the time-budgeted search. Trials on a subset, pruned on the validation metric,
then the final run with the best trial's values, all within the budget; the trials are
stored with the job and shown by the API, the job page and the CLI."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.db.models import TrainedModel
from modelyard.training.config import TrainingConfig, parse_duration
from modelyard.training.runner import TrainingRunner, job_work_dir
from modelyard.training.search import search_space, trial_sizes
from tests.cli_helpers import invoke, isolate_cli
from tests.helpers import login
from tests.training.conftest import UploadFn, classification_rows, write_csv
from tests.training.jobs_helpers import train_timed

#: The budget of the end-to-end job (seconds): enough for the worker's start (torch and
#: transformers load in it), a few trials and the final run of a tiny model, on a
#: loaded machine too (the first trial may take 30% of it).
BUDGET = 60


def test_durations_are_read_in_seconds_minutes_and_hours() -> None:
    assert [parse_duration(text) for text in ("300", "300s", "5m", "1h", "1.5h", " 2 min")] == [
        300.0, 300.0, 300.0, 3600.0, 5400.0, 120.0,
    ]  # fmt: skip
    for text in ("", "5 days", "m5", "-3m", "1e3"):
        with pytest.raises(ValueError, match="is not a duration"):
            parse_duration(text)
    assert TrainingConfig(task="classification", auto={"time_budget_s": "5m"}).auto == (
        TrainingConfig(task="classification", auto={"time_budget_s": 300}).auto
    )


def test_the_space_surrounds_the_recommendation_and_skips_what_the_user_set() -> None:
    config = TrainingConfig(
        task="classification", learning_rate=1e-4, batch_size=16, epochs=10, recommend=False
    )
    # Set by the user: nothing left to search, so ``auto`` is refused.
    with pytest.raises(ValueError, match="leave at least one unset"):
        TrainingConfig.model_validate(
            config.model_dump() | {"user_set": None, "auto": {"time_budget_s": 60}}
        )
    chosen = TrainingConfig.model_validate(
        {"task": "classification", "auto": {"time_budget_s": 60}}
    ).model_copy(update={"learning_rate": 1e-4, "batch_size": 16, "epochs": 10.0})
    space = search_space(chosen, train_examples=32)
    assert space["learning_rate"].low == pytest.approx(1e-4 / 3)
    assert space["learning_rate"].high == pytest.approx(3e-4) and space["learning_rate"].log
    assert space["batch_size"].choices == (8, 16, 32)
    assert space["epochs"].choices == (5.0, 10.0, 15.0)
    given = TrainingConfig.model_validate(
        {"task": "classification", "learning_rate": 2e-5, "auto": {"time_budget_s": 60}}
    )
    assert set(search_space(given, 32)) == {"batch_size", "epochs"}
    assert set(search_space(given.model_copy(update={"max_steps": 5}), 32)) == {"batch_size"}
    # The trials' subset: a fifth of the training split, within 128 and 2000 examples.
    assert trial_sizes(32, 4) == (32, 4)
    assert trial_sizes(5000, 900) == (1000, 300)
    assert trial_sizes(400, 40) == (128, 40)
    assert trial_sizes(100_000, 100) == (2000, 100)


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        (5, "time_budget_s must be between 30 seconds and 24 hours (86400 s); got 5"),
        (-60, "must be between 30 seconds and 24 hours"),
        (10**9, "must be between 30 seconds and 24 hours"),
        ("1d", "'1d' is not a duration; write seconds (300, 300s), minutes (5m) or hours (1h)"),
        (None, "auto.time_budget_s"),
    ],
)
async def test_a_bad_budget_is_a_422_that_says_why(
    http: httpx.AsyncClient, auth: dict[str, str], dataset_id: int, budget: Any, message: str
) -> None:
    body = {"task": "classification", "dataset_id": dataset_id, "auto": {"time_budget_s": budget}}
    response = await http.post("/v2/training/jobs", headers=auth, json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert message in error["message"] and error["param"] == "auto.time_budget_s", error
    everything_set = {
        "task": "classification", "dataset_id": dataset_id, "learning_rate": 1e-4,
        "batch_size": 8, "epochs": 2, "auto": {"time_budget_s": 60},
    }  # fmt: skip
    response = await http.post("/v2/training/jobs", headers=auth, json=everything_set)
    assert response.status_code == 422
    assert "leave at least one unset" in response.json()["error"]["message"]


async def test_a_budgeted_job_searches_then_trains_the_best_within_its_budget(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    upload: UploadFn,
    runner: TrainingRunner,
    database: Database,
    settings: Settings,
    tiny_bert: Path,
    tmp_path: Path,
) -> None:
    response = await upload(write_csv(tmp_path / "reviews.csv", classification_rows(40)))
    assert response.status_code == 201, response.text
    body = {
        "task": "classification",
        "base_model": str(tiny_bert),
        "dataset_id": response.json()["id"],
        "output_name": "searched",
        "auto": {"time_budget_s": BUDGET},
    }
    job, wall = await train_timed(http, auth, body, timeout=BUDGET * 2)
    assert job["state"] == "succeeded", job

    # The budget, from the request to the trained model: at most 10% over, and used.
    assert wall <= BUDGET * 1.1, f"{wall:.1f} s for a {BUDGET} s budget"
    assert wall >= BUDGET * 0.6, f"{wall:.1f} s: most of the {BUDGET} s budget left unused"

    config = job["config"]
    search = config["search"]
    trials = search["trials"]
    assert len(trials) >= 2, search
    for trial in trials:
        assert set(trial) >= {"number", "params", "metric", "state", "seconds"}
        assert trial["state"] in ("complete", "pruned") and trial["seconds"] > 0
        assert set(trial["params"]) == {"learning_rate", "batch_size", "epochs"}
    # The first trial is the recommendation itself.
    assert trials[0]["number"] == 0
    assert trials[0]["params"]["batch_size"] == 16 and trials[0]["params"]["epochs"] == 10
    # The final run trained with the best complete trial's values, each with its reason
    # (of equal scores, the fastest trial's: on this tiny validation split they tie).
    complete = [t for t in trials if t["state"] == "complete"]
    assert complete, trials
    top = max(t["metric"] for t in complete)
    fastest = min((t for t in complete if t["metric"] == top), key=lambda t: t["seconds"])
    assert search["best_trial"] == fastest["number"], search
    best = fastest
    for name in ("learning_rate", "batch_size"):
        assert config[name] == best["params"][name]
        assert config["recommended"][name]["reason"].startswith(f"best of {len(trials)} trials")
        assert search["chosen"][name]["value"] == config[name]
    epochs_reason = config["recommended"]["epochs"]["reason"]
    assert epochs_reason.startswith(f"best of {len(trials)} trials")
    if "fit the time budget" not in epochs_reason:
        assert config["epochs"] == best["params"]["epochs"]
    assert search["time_budget_s"] == BUDGET and search["stopped"]
    assert 0 < search["search_seconds"] < BUDGET

    # The saved model was trained with those values; it is the only model of the job, and
    # the trials left nothing behind.
    (model_dir,) = (settings.data_dir / "models").glob("*/searched")
    card = json.loads((model_dir / "modelyard.json").read_text())
    for name in ("learning_rate", "batch_size", "epochs"):
        assert card["hyperparameters"][name] == config[name]
    async with database.sessions() as session:
        names = list(await session.scalars(select(TrainedModel.name)))
    assert names == ["searched"]
    assert [p.name for p in model_dir.parent.iterdir()] == ["searched"]
    work_dir = job_work_dir(settings.data_dir.resolve(), job["id"])
    assert not (work_dir / "trials").exists() or not any((work_dir / "trials").iterdir())

    # The events: one per trial, then the search's choice.
    events = await http.get(f"/v2/training/jobs/{job['id']}/events", headers=auth)
    kinds = re.findall(r"^event: (\w+)$", events.text, flags=re.M)
    assert kinds.count("trial") == len(trials) and kinds.count("search") == 1

    # The job page shows the trials table and where the values came from.
    await login(http, "trainer@example.com")
    page = await http.get(f"/training/jobs/{job['id']}")
    assert page.status_code == 200
    html = page.text
    assert 'id="job-trials"' in html and html.count('class="trial-row') == len(trials)
    assert f"best of {len(trials)} trials" in html
    assert "Chosen by the search" in html


def test_the_cli_takes_a_time_budget_and_prints_the_trials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_bert: Path
) -> None:
    isolate_cli(tmp_path, monkeypatch, migrate=True)
    reviews = write_csv(tmp_path / "reviews.csv", classification_rows(20))
    base = ("train", "--data", str(reviews), "--task", "classification", "--base", str(tiny_bert))
    code, output = invoke(*base, "--time-budget", "soon")
    assert code == 2 and "'soon' is not a duration" in output, output
    code, output = invoke(*base, "--time-budget", "10s")
    assert code == 2 and "must be between 30 seconds and 24 hours" in output, output
    started = time.monotonic()
    code, output = invoke(*base, "--time-budget", "40s", "--name", "cli-auto")
    wall = time.monotonic() - started
    assert code == 0, output
    assert wall <= 40 * 1.1 + 3, wall  # the dataset's check and the job's creation besides
    assert "Search:" in output and "trials within a 40 s budget" in output, output
    assert re.search(r"trial 0: \w+ · learning_rate 0\.0001, batch_size 16", output), output
    table = output[output.index("Search:") :]
    assert re.search(r"\b0\s+.*(complete|pruned)", table), table
    assert re.search(r"\b1\s+.*(complete|pruned)", table), table
    assert "best of" in output and "Model saved as cli-auto" in output
