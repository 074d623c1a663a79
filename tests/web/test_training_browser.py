"""The training pages in Chromium against the live app (its job runner on): upload a dataset
and see its validation, line-numbered problems inline, advice applied in one click, the API
keys dialog (a malformed token's error, keys gone once it closes), a tiny job trained on
the CPU to "succeeded" with its loss curve, then the classify box answers."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import FilePayload, Page, expect

from modelyard.config import Settings
from modelyard.db.engine import Database
from tests.helpers import offer_local_model
from tests.training.conftest import (
    chat_rows,
    classification_rows,
    tiny_bert,  # noqa: F401  (the session fixture: a one-layer BERT, fast to train)
)
from tests.web.conftest import SCREENSHOTS, Console
from tests.web.flows import csrf_headers, register

#: A malformed Hugging Face token (not ``hf_…``); no page may show it once the dialog closes.
BAD_TOKEN = "xx_training-dialog-canary-0123456789"
#: Seconds the tiny job may take from Start to "succeeded" (a worker process starts torch).
TRAINING_TIMEOUT_MS = 25_000


@pytest.fixture
def live_settings(live_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Folders under pytest's root may be offered; users may pick the Hub suggestions."""
    live_settings.local_model_dirs = [tmp_path_factory.getbasetemp()]
    live_settings.local_hub_downloads = True
    return live_settings


@pytest.fixture(autouse=True)
async def offered_tiny_bert(database: Database, tiny_bert: Path) -> Path:  # noqa: F811
    """The admin offers the tiny BERT (a folder under a configured root) in the catalog:
    the users these tests register may train on it, as on any offered local model."""
    await offer_local_model(database, str(tiny_bert), "classification")
    return tiny_bert


async def training_ready(page: Page) -> None:
    """Wait until the page's script has attached its handlers."""
    await expect(page.locator("#training-app")).to_have_attribute("data-ready", "true")


def csv_bytes(rows: list[dict[str, Any]], columns: list[str] | None = None) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns or list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


async def shot(page: Page, name: str, *, full_page: bool = True) -> None:
    """``test-artifacts/screenshots/<name>.png``, from the top (the sticky bar in place)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if full_page:
        await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


async def upload(page: Page, name: str, content: bytes, mime: str = "text/csv") -> None:
    payload = FilePayload(name=name, mimeType=mime, buffer=content)
    await page.set_input_files("#dataset-file", files=[payload])
    await page.get_by_role("button", name="Upload and check").click()


async def test_upload_train_with_skip_and_classify(
    page: Page,
    console: Console,
    tiny_bert: Path,  # noqa: F811
) -> None:
    console.allow(r"status of 400")
    await register(page)
    await page.get_by_role("link", name="Training").click()
    await expect(page).to_have_url(re.compile(r"/training$"))
    await training_ready(page)
    await expect(page.locator("#jobs-empty")).to_be_visible()

    # A file with problems: each one is listed with its line, and nothing is kept.
    rows = classification_rows(12)
    rows[1]["label"] = ""
    rows[3]["text"] = ""
    await upload(page, "broken.csv", csv_bytes(rows))
    problems = page.locator("#upload-error")
    await expect(problems).to_be_visible()
    await expect(problems).to_have_attribute("role", "alert")
    await expect(page.locator("#upload-error-title")).to_have_text(
        "broken.csv cannot be used: 2 problems."
    )
    issues = page.locator("#upload-issues li")
    await expect(issues.filter(has_text="line 3")).to_contain_text("empty label")
    await expect(issues.filter(has_text="line 5")).to_contain_text("empty or non-text 'text'")
    await expect(issues).to_have_count(2)
    await expect(page.locator("#datasets-empty")).to_be_visible()
    await shot(page, "training-upload-errors")

    # A good file: its kind, size, labels and columns; it is chosen for the job.
    await upload(page, "reviews.csv", csv_bytes(classification_rows(20)))
    await expect(page.locator("#upload-error")).to_be_hidden()
    await expect(page.locator("#result-name")).to_have_text("reviews.csv")
    await expect(page.locator("#result-kind")).to_have_text("classification")
    await expect(page.locator("#result-examples")).to_have_text("20")
    await expect(page.locator("#result-labels")).to_have_text("negative, positive")
    await expect(page.locator("#result-columns")).to_have_text("text, label")
    await expect(page.locator("#dataset-rows tr")).to_have_count(1)
    dataset = page.get_by_label("Dataset", exact=True)
    await expect(dataset.locator("option:checked")).to_contain_text("reviews.csv")

    # Advice from the rules (no key), applied to the form, then the tiny settings.
    await page.get_by_role("button", name="Get advice").click()
    await expect(page.locator("#advice-source")).to_have_text("Built-in rules")
    await expect(page.locator("#advice-strategy")).to_contain_text(
        "sequence classifier over 2 labels"
    )
    await page.locator("#advice").get_by_role("button", name="Apply").click()
    await expect(page.get_by_label("Batch size")).to_have_value("16")
    await expect(page.get_by_label("Max length")).to_have_value("128")
    await page.get_by_label("Base model").fill(str(tiny_bert))
    await page.get_by_label("Output name").fill("web-sentiment")
    for label, value in (("Max steps", "4"), ("Batch size", "4"), ("Max length", "16")):
        await page.get_by_label(label, exact=True).fill(value)
    await page.get_by_text("More settings").click()
    await page.get_by_label("Logging steps").fill("1")
    await page.get_by_label("Eval fraction").fill("0.2")
    await shot(page, "training")

    # Start training opens the keys dialog; a malformed token is refused inside it.
    start = page.get_by_role("button", name="Start training")
    await start.click()
    dialog = page.get_by_role("dialog", name="API keys for this job")
    await expect(dialog).to_be_visible()
    token = dialog.get_by_label("Hugging Face token", exact=True)
    await expect(token).to_be_focused()
    await expect(token).to_have_attribute("type", "password")
    await expect(dialog.locator("#keys-info")).to_have_text(
        "No API keys? You can still train models using PyTorch on CPU. Models will be saved "
        "locally instead of pushed to HuggingFace."
    )
    await expect(
        dialog.get_by_role("link", name=re.compile("Get a Hugging Face token"))
    ).to_have_attribute("href", "https://huggingface.co/settings/tokens")
    await expect(
        dialog.get_by_role("link", name=re.compile("Get a Groq API key"))
    ).to_have_attribute("href", "https://console.groq.com/keys")
    await expect(dialog.get_by_label("CPU")).to_be_checked()
    await expect(dialog.get_by_label("Private repository")).to_be_checked()
    await token.fill(BAD_TOKEN)
    await dialog.get_by_role("button", name="Show Hugging Face token").click()
    await expect(token).to_have_attribute("type", "text")
    await dialog.get_by_role("button", name="Continue with Keys").click()
    error = dialog.get_by_role("alert")
    await expect(error).to_have_text('HuggingFace token should start with "hf_"')
    await expect(error).to_have_class(re.compile(r"\balert error\b"))
    assert await error.evaluate("e => getComputedStyle(e).color") == "rgb(192, 38, 45)"
    await expect(dialog).to_be_visible()
    await expect(token).to_have_attribute("aria-invalid", "true")
    await dialog.get_by_role("button", name="Hide Hugging Face token").click()
    await expect(token).to_have_attribute("type", "password")
    await shot(page, "training-keys-dialog-error", full_page=False)

    # Esc closes it, and the key leaves the page with it.
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(start).to_be_focused()
    field = page.locator("#keys-hf")  # the closed dialog is out of the accessibility tree
    await expect(field).to_have_value("")
    assert await field.get_attribute("type") == "password"
    assert BAD_TOKEN not in await page.content()
    assert BAD_TOKEN not in page.url
    stored = await page.evaluate("JSON.stringify([localStorage, sessionStorage])")
    assert BAD_TOKEN not in stored
    listed = await page.request.get("/v2/training/jobs")
    assert (await listed.json())["data"] == []  # the refused start left no job behind

    # Skip (Train with CPU): the job trains to "succeeded", drawn as it goes.
    await start.click()
    await expect(token).to_have_value("")
    await expect(dialog.get_by_role("alert")).to_be_hidden()
    began = time.monotonic()
    await dialog.get_by_role("button", name="Skip (Train with CPU)").click()
    await expect(page).to_have_url(re.compile(r"/training/jobs/\d+$"))
    assert BAD_TOKEN not in page.url
    job_id = int(page.url.rsplit("/", 1)[1])
    await expect(page.locator("#job-state")).to_have_text("succeeded", timeout=TRAINING_TIMEOUT_MS)
    trained_in = time.monotonic() - began
    await expect(page.locator("#job-progress")).to_have_attribute("value", "4")
    await expect(page.locator("#job-percent")).to_have_text("100%")
    await expect(page.locator("#stat-eta")).to_have_text("done")
    await expect(page.locator("#loss-chart svg .loss-point")).to_have_count(4)
    await expect(page.locator("#loss-chart svg path.loss-line")).to_have_attribute(
        "d", re.compile(r"^M[\d.]+ [\d.]+( L[\d.]+ [\d.]+){3}$")
    )
    events = page.locator("#job-events")
    await expect(events).to_contain_text("State: queued")
    await expect(events).to_contain_text("State: running")
    await expect(events).to_contain_text(re.compile(r"Evaluation: loss [\d.]+, accuracy"))
    await expect(events.locator("li").last).to_have_text(re.compile("State: succeeded"))
    await expect(page.locator("#job-metrics")).to_contain_text("Eval accuracy")
    await expect(page.get_by_role("button", name="Cancel")).to_be_hidden()
    await expect(page.locator("#hub-push")).to_be_hidden()

    # The classify box answers with one of the dataset's labels.
    await page.get_by_label("Text to classify").fill("loved it")
    await page.get_by_role("button", name="Classify").click()
    await expect(page.locator("#classify-label")).to_have_text(re.compile(r"^(positive|negative)$"))
    await expect(page.locator("#classify-scores li")).to_have_count(2)
    await shot(page, "training-job")

    # The model is private; its owner shares it from the page (opened again once trained).
    await page.reload()
    visibility = page.get_by_label("Who may use this model")
    await expect(visibility).to_have_value("private")
    await visibility.select_option("everyone")
    await expect(page.locator("#share-status")).to_have_text(re.compile("^Shared"))
    trained = await (await page.request.get("/v2/models/trained")).json()
    assert [(m["name"], m["visibility"]) for m in trained["data"]] == [
        ("web-sentiment", "everyone")
    ]

    job = await (await page.request.get(f"/v2/training/jobs/{job_id}")).json()
    assert job["state"] == "succeeded" and job["model"] == "web-sentiment"
    assert job["compute_type"] == "cpu" and job["hub_push"] is None
    assert job["config"]["max_steps"] == 4 and job["config"]["batch_size"] == 4
    assert job["advice"]["source"] == "rules"  # the advice applied went with the job
    assert BAD_TOKEN not in json.dumps(job)

    # Back on the training page the job is listed; the usage page still works.
    nav = page.get_by_role("navigation", name="Main")
    await expect(nav.get_by_role("link", name="Training")).to_have_attribute("aria-current", "page")
    await page.locator(".crumbs").get_by_role("link", name="Training").click()
    row = page.locator(f'#job-rows tr[data-job-id="{job_id}"]')
    await expect(row).to_contain_text("web-sentiment")
    await expect(row.locator(".state-pill")).to_have_text("succeeded")
    await nav.get_by_role("link", name="Usage").click()
    await expect(page.locator("#total-requests")).to_have_text(re.compile(r"^\d+$"))
    await expect(page.locator("#usage-error")).to_be_hidden()
    assert trained_in < TRAINING_TIMEOUT_MS / 1000, trained_in


async def test_sft_advice_applies_and_the_dialog_is_keyboard_friendly(
    page: Page, console: Console
) -> None:
    console.allow(r"status of 400")
    await register(page)
    await page.goto("/training")
    await training_ready(page)
    rows = [{"messages": json.dumps(row["messages"])} for row in chat_rows(12)]
    await upload(page, "chats.csv", csv_bytes(rows))
    await expect(page.locator("#result-kind")).to_have_text("chat (SFT)")
    # The chat data chose the SFT task: its base models, and LoRA may be chosen.
    await expect(page.get_by_label("Chat model (SFT)")).to_be_checked()
    base = page.get_by_label("Base model")
    await expect(base).to_have_attribute("list", "bases-sft")
    await expect(page.get_by_label("Method")).to_be_enabled()
    options = page.locator("#bases-sft option")
    await expect(options.first).to_have_attribute("value", "HuggingFaceTB/SmolLM2-135M-Instruct")

    # No base model: the form says so before any dialog opens.
    await page.get_by_role("button", name="Start training").click()
    await expect(page.locator("#err-base_model")).to_contain_text("needs a base model")
    await expect(base).to_be_focused()
    await expect(page.get_by_role("dialog")).to_be_hidden()

    # Advice for a 7B model on a CPU: LoRA, and a note that the CPU is too slow.
    await base.fill("Qwen/Qwen2.5-7B-Instruct")
    await page.get_by_label("What should the model do?").fill("answer support questions")
    await page.get_by_label("Epochs").fill("9")
    await page.get_by_role("button", name="Get advice").click()
    advice = page.locator("#advice")
    await expect(page.locator("#advice-source")).to_have_text("Built-in rules")
    await expect(page.locator("#advice-fallback")).to_be_hidden()
    await expect(advice.locator("#advice-hyper")).to_contain_text("lora")
    await expect(advice.locator("#advice-notes")).to_contain_text("impractically slow")
    link = advice.get_by_role("link", name="databricks/databricks-dolly-15k")
    await expect(link).to_have_attribute("rel", "noopener noreferrer")
    await advice.get_by_role("button", name="Apply").click()
    await expect(page.get_by_label("Method")).to_have_value("lora")
    await expect(page.get_by_label("Epochs")).to_have_value("3")
    await expect(page.get_by_label("Learning rate")).to_have_value("0.0002")
    await expect(page.get_by_label("Batch size")).to_have_value("1")
    await expect(page.get_by_label("LoRA rank")).to_have_value("16")
    await expect(page.locator("#advice-status")).to_have_text("Advice applied to the form.")

    # A bad number is refused next to its field.
    await page.get_by_label("Learning rate").fill("0")
    await page.get_by_role("button", name="Start training").click()
    await expect(page.locator("#err-learning_rate")).to_have_text(
        "Enter a number, greater than 0 and at most 1."
    )
    await expect(page.get_by_label("Learning rate")).to_be_focused()
    await page.get_by_label("Learning rate").fill("0.0002")

    # The dialog by keyboard: Enter on the token submits, an empty one is explained.
    await page.get_by_role("button", name="Start training").focus()
    await page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="API keys for this job")
    await expect(dialog.get_by_label("Hugging Face token", exact=True)).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(dialog.get_by_role("alert")).to_contain_text(
        'Enter a Hugging Face token or a Groq key, or choose "Skip (Train with CPU)".'
    )
    # A malformed Groq key is named as such; the close button empties the fields.
    await dialog.get_by_label("Groq API key", exact=True).fill("not-a-groq-canary-key-0123456789")
    await dialog.get_by_role("button", name="Continue with Keys").click()
    await expect(dialog.get_by_role("alert")).to_contain_text('should start with "gsk_"')
    await expect(dialog.get_by_label("Groq API key", exact=True)).to_be_focused()
    await dialog.get_by_role("button", name="Close").click()
    await expect(dialog).to_be_hidden()
    assert "not-a-groq-canary" not in await page.content()
    # Tab order reaches the dialog's controls in the order they are shown.
    await page.get_by_role("button", name="Start training").click()
    await expect(dialog.get_by_label("Hugging Face token", exact=True)).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(dialog.get_by_role("button", name="Show Hugging Face token")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    assert (await (await page.request.get("/v2/training/jobs")).json())["data"] == []


async def test_a_running_job_moves_live_and_cancels(
    page: Page,
    tiny_bert: Path,  # noqa: F811
) -> None:
    await register(page)
    headers = await csrf_headers(page)
    uploaded = await page.request.post(
        "/v2/datasets",
        headers=headers,
        multipart={
            "file": FilePayload(
                name="reviews.csv", mimeType="text/csv", buffer=csv_bytes(classification_rows(40))
            )
        },
    )
    assert uploaded.ok, await uploaded.text()
    created = await page.request.post(
        "/v2/training/jobs",
        headers=headers,
        data={
            "task": "classification",
            "dataset_id": (await uploaded.json())["id"],
            "base_model": str(tiny_bert),
            "output_name": "long-runner",
            "max_steps": 100_000,
            "batch_size": 4,
            "max_length": 16,
            "logging_steps": 5,
            "checkpoint_steps": 100_000,
        },
    )
    assert created.ok, await created.text()
    job_id = (await created.json())["id"]
    await page.goto(f"/training/jobs/{job_id}")

    # While it runs: the bar moves, the ETA is counted, the curve grows point by point.
    await expect(page.locator("#job-state")).to_have_text("running", timeout=TRAINING_TIMEOUT_MS)
    await expect(page.locator("#job-progress-label")).to_have_text(
        re.compile(r"^Step \d+ of 100000$")
    )
    await expect(page.locator("#stat-eta")).to_have_text(
        re.compile(r"^\d+ (s|min \d\d s|h \d\d min)$")
    )
    await expect(page.locator("#stat-speed")).to_have_text(re.compile(r"^[\d,.]+$"))
    points = page.locator("#loss-chart svg .loss-point")
    await expect(points.nth(2)).to_be_attached()
    first = await points.count()
    await expect(points.nth(first)).to_be_attached()  # a new point arrived while watching
    value = int(await page.locator("#job-progress").get_attribute("value") or 0)
    assert 0 < value < 100_000

    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Cancel").click()
    await expect(page.locator("#job-state")).to_have_text("cancelled", timeout=TRAINING_TIMEOUT_MS)
    await expect(page.get_by_role("button", name="Cancel")).to_be_hidden()
    await expect(page.locator("#job-events li").last).to_have_text(re.compile("State: cancelled"))
    await expect(page.locator("#job-progress-label")).to_have_text(
        re.compile(r"^Cancelled at step \d+$")
    )
    await expect(page.locator("#try-it")).to_be_hidden()


async def test_continue_with_a_key_remembered_in_the_profile(
    page: Page,
    tiny_bert: Path,  # noqa: F811
) -> None:
    key = "gsk_web-dialog-canary-0123456789abcdef"
    await register(page)
    await page.goto("/training")
    await training_ready(page)
    await upload(page, "reviews.csv", csv_bytes(classification_rows(20)))
    await expect(page.locator("#result-examples")).to_have_text("20")
    await page.get_by_label("Base model").fill(str(tiny_bert))
    for label, value in (("Max steps", "2"), ("Batch size", "4"), ("Max length", "16")):
        await page.get_by_label(label, exact=True).fill(value)
    await page.get_by_role("button", name="Start training").click()
    dialog = page.get_by_role("dialog", name="API keys for this job")
    await dialog.get_by_label("Groq API key", exact=True).fill(key)
    await dialog.get_by_label("Remember in my profile").check()
    await dialog.get_by_role("button", name="Continue with Keys").click()
    await expect(page).to_have_url(re.compile(r"/training/jobs/\d+$"))
    assert key not in page.url and key not in await page.content()
    await expect(page.locator("#job-state")).to_have_text("succeeded", timeout=TRAINING_TIMEOUT_MS)
    job = await (await page.request.get(page.url.replace("/training/", "/v2/training/"))).json()
    assert job["compute_type"] == "cpu" and job["hub_push"] is None  # no token: kept local
    assert key not in json.dumps(job)
    me = await (await page.request.get("/v2/users/me")).json()
    assert me["has_groq_key"] is True and key not in json.dumps(me)
    # Next time the dialog offers the saved key, which is never put in the page.
    await page.goto("/training")
    await training_ready(page)
    await expect(page.locator("#keys-groq-hint")).to_contain_text("one is saved in your profile")
    await expect(page.get_by_label("Advice from")).to_contain_text("Groq, with the key saved")
    assert key not in await page.content()


async def test_empty_settings_come_from_the_data_and_a_time_budget_is_sent(
    page: Page,
    console: Console,
    tiny_bert: Path,  # noqa: F811
) -> None:
    await register(page)
    await page.goto("/training")
    await training_ready(page)
    await upload(page, "reviews.csv", csv_bytes(classification_rows(20)))
    await expect(page.locator("#result-kind")).to_have_text("classification")
    # Nothing is pre-filled: an empty value is derived from the data by the job.
    for label in ("Epochs", "Batch size", "Learning rate", "Max length"):
        await expect(page.get_by_label(label, exact=True)).to_have_value("")
        await expect(page.get_by_label(label, exact=True)).to_have_attribute(
            "placeholder", "from the data"
        )
    await page.get_by_label("Base model").fill(str(tiny_bert))
    budget = page.get_by_label("Time budget (minutes)")
    await budget.fill("0.1")
    await page.get_by_role("button", name="Start training").click()
    await expect(page.locator("#err-time_budget_min")).to_have_text(
        "Enter a number, at least 0.5 and at most 1440."
    )
    await expect(budget).to_be_focused()
    await budget.fill("1.5")

    await page.get_by_role("button", name="Start training").click()
    dialog = page.get_by_role("dialog", name="API keys for this job")
    async with page.expect_request(
        lambda r: r.url.endswith("/v2/training/jobs") and r.method == "POST"
    ) as sent:
        await dialog.get_by_role("button", name="Skip (Train with CPU)").click()
    body = (await sent.value).post_data_json
    assert body["auto"] == {"time_budget_s": 90}
    assert not {"epochs", "batch_size", "learning_rate", "max_length"} & set(body)
    await expect(page).to_have_url(re.compile(r"/training/jobs/\d+$"))
    job_id = int(page.url.rsplit("/", 1)[1])
    cancelled = await page.request.post(
        f"/v2/training/jobs/{job_id}/cancel", headers=await csrf_headers(page)
    )
    assert cancelled.ok, await cancelled.text()
    job = await (await page.request.get(f"/v2/training/jobs/{job_id}")).json()
    assert job["config"]["auto"]["time_budget_s"] == 90
    assert "epochs" not in job["config"]["user_set"]
