"""The training pages over HTTP (no browser): who may see them, the 404 page for another
user's job, the headers, what the server renders (base models, advisors, the keys dialog,
"Try it"), and that a saved key is never in the page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.db.models import TrainedModel, TrainingJob, User
from modelyard.training.models import register
from modelyard.web.rendering import CONTENT_SECURITY_POLICY
from tests.conftest import refuse_canaries
from tests.helpers import login, make_user
from tests.training.conftest import chat_rows, classification_rows, write_csv, write_jsonl
from tests.web.page_inventory import PageInventory

GROQ_CANARY = "gsk_training-page-canary-0123456789abcdef"
INFO = (
    "No API keys? You can still train models using PyTorch on CPU. Models will be saved "
    "locally instead of pushed to HuggingFace."
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Users may make the server download Hub models here (the SFT suggestions)."""
    settings.local_hub_downloads = True
    return settings


@pytest.fixture
async def other_browser(app: FastAPI, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    """A second browser, signed in as another user."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await make_user(database, "other-browser@example.com")
        await login(client, "other-browser@example.com")
        yield client


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client: it keeps cookies, does not follow redirects, and fails on any
    canary key it receives."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        event_hooks={"response": [refuse_canaries]},
    ) as client:
        yield client


async def sign_in(http: httpx.AsyncClient, database: Database, email: str) -> dict[str, str]:
    """A signed-in browser session; the header its scripts send with writes."""
    await make_user(database, email)
    return {"X-CSRF-Token": await login(http, email)}


async def start_job(
    http: httpx.AsyncClient, csrf: dict[str, str], tmp_path: Path, *, task: str, name: str
) -> int:
    """Upload a dataset and queue a job (the test app runs no jobs: it stays queued)."""
    directory = tmp_path
    if task == "classification":
        path = write_csv(directory / f"{name}.csv", classification_rows(20))
        extra: dict[str, object] = {}
    else:
        path = write_jsonl(directory / f"{name}.jsonl", chat_rows(12))
        extra = {"base_model": "HuggingFaceTB/SmolLM2-135M-Instruct", "method": "lora"}
    uploaded = await http.post(
        "/v2/datasets", headers=csrf, files={"file": (path.name, path.read_bytes())}
    )
    assert uploaded.status_code == 201, uploaded.text
    job = await http.post(
        "/v2/training/jobs",
        headers=csrf,
        json={
            "task": task,
            "dataset_id": uploaded.json()["id"],
            "output_name": name,
            "max_steps": 7,
            **extra,
        },
    )
    assert job.status_code == 201, job.text
    job_id: int = job.json()["id"]
    return job_id


class _Datalists(HTMLParser):
    """The options of each ``<datalist>`` and ``<select>`` of a page, by id."""

    def __init__(self) -> None:
        super().__init__()
        self.lists: dict[str, list[str]] = {}
        self._current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("datalist", "select"):
            self._current = values.get("id") or ""
            self.lists[self._current] = []
        elif tag == "option" and self._current is not None:
            self.lists[self._current].append(values.get("value") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("datalist", "select"):
            self._current = None


# -- who sees what -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "next_"),
    [("/training", "/training"), ("/training/jobs/3", "/training/jobs/3")],
)
async def test_anonymous_visitors_are_sent_to_sign_in(
    http: httpx.AsyncClient, path: str, next_: str
) -> None:
    response = await http.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next={next_}"
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


async def test_another_users_job_is_a_404_page(
    http: httpx.AsyncClient, database: Database, tmp_path: Path
) -> None:
    owner = await sign_in(http, database, "owner@example.com")
    job_id = await start_job(http, owner, tmp_path, task="classification", name="owned-model")
    mine = await http.get(f"/training/jobs/{job_id}")
    assert mine.status_code == 200 and "owned-model" in mine.text

    await sign_in(http, database, "other@example.com")
    missing = ("999", "abc", "0", "99999999999999999999", "-1")
    for path in [f"/training/jobs/{job_id}", *(f"/training/jobs/{ref}" for ref in missing)]:
        response = await http.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html")
        assert "Training job not found" in response.text
        assert "owned-model" not in response.text
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["cache-control"] == "no-store"
    # The API agrees: the job is not the other user's to see.
    assert (await http.get(f"/v2/training/jobs/{job_id}")).status_code == 404
    shown = await http.get("/training/jobs/%3Cscript%3Ealert(1)")
    assert shown.status_code == 404 and "<script>alert" not in shown.text
    assert "&lt;script&gt;alert(1)" in shown.text

    # Staff see every job's page.
    await make_user(database, "boss@example.com", staff=True)
    await login(http, "boss@example.com")
    assert (await http.get(f"/training/jobs/{job_id}")).status_code == 200


# -- headers and what the pages contain ------------------------------------------------------


async def test_pages_send_security_headers_and_run_nothing_inline(
    http: httpx.AsyncClient, database: Database, tmp_path: Path
) -> None:
    csrf = await sign_in(http, database, "u@example.com")
    job_id = await start_job(http, csrf, tmp_path, task="classification", name="headers-model")
    for path in ("/training", f"/training/jobs/{job_id}", "/training/jobs/12345"):
        response = await http.get(path)
        assert response.status_code in (200, 404), path
        headers = response.headers
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "same-origin"
        assert headers["cache-control"] == "no-store"
        inventory = PageInventory()
        inventory.feed(response.text)
        assert inventory.inline_scripts == 0 and inventory.handlers == []
        assert inventory.style_attributes == 0 and inventory.style_tags == 0
        assert inventory.external == []
        assert 'aria-current="page">Training<' in response.text
    for script in ("/static/training.js", "/static/training_job.js"):
        served = await http.get(script)
        assert served.status_code == 200 and "javascript" in served.headers["content-type"]


async def test_the_training_page_offers_bases_advisors_and_the_keys_dialog(
    http: httpx.AsyncClient, database: Database
) -> None:
    csrf = await sign_in(http, database, "u@example.com")
    other = await make_user(database, "someone-else@example.com")
    async with database.sessions() as session:
        me = await session.scalar(select(User).where(User.email == "u@example.com"))
        assert me is not None
        for owner, name, task, visibility in (
            (me.id, "my-classifier", "classification", "private"),
            (me.id, "my-chat", "chat", "private"),
            (other.id, "their-chat", "chat", "private"),  # not offered: someone else's
            (other.id, "shared-chat", "chat", "everyone"),
        ):
            session.add(
                TrainedModel(
                    owner_id=owner,
                    name=name,
                    task=task,
                    visibility=visibility,
                    base_model="x",
                    path=f"models/u{owner}/{name}",
                )
            )
        await session.commit()
    page = await http.get("/training")
    assert page.status_code == 200
    lists = _Datalists()
    lists.feed(page.text)
    assert lists.lists["bases-classification"] == ["all-MiniLM-L6-v2", "my-classifier"]
    assert lists.lists["bases-sft"] == [
        "my-chat",
        "shared-chat",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "Qwen/Qwen2.5-0.5B-Instruct",
    ]
    # Without a Groq key the advice comes from the rules (or a usable chat model: the
    # local ones need no key).
    assert lists.lists["job-advisor"][0] == ""
    assert "groq:saved" not in lists.lists["job-advisor"]
    assert "local/my-chat" in lists.lists["job-advisor"]
    assert "local/their-chat" not in lists.lists["job-advisor"]
    # The keys dialog: a real <dialog>, password fields, links, the info box, both buttons.
    assert '<dialog class="keys-dialog" id="keys-dialog"' in page.text
    assert re.search(r'<input id="keys-hf" type="password"', page.text)
    assert re.search(r'<input id="keys-groq" type="password"', page.text)
    assert 'href="https://huggingface.co/settings/tokens"' in page.text
    assert 'href="https://console.groq.com/keys"' in page.text
    assert f'<p class="info-box" id="keys-info">{INFO}</p>' in page.text
    assert ">Continue with Keys<" in page.text and ">Skip (Train with CPU)<" in page.text
    assert 'id="keys-use-saved"' not in page.text
    # The dialog's form never submits to a URL: keys cannot end up in one.
    assert '<form method="dialog" id="keys-form"' in page.text

    saved = await http.patch(
        "/v2/users/me/api-key", headers=csrf, json={"provider": "groq", "api_key": GROQ_CANARY}
    )
    assert saved.status_code == 200, saved.text
    page = await http.get("/training")  # refuse_canaries: the key is not in it
    lists = _Datalists()
    lists.feed(page.text)
    assert lists.lists["job-advisor"][:2] == ["", "groq:saved"]
    assert 'id="keys-use-saved" checked' in page.text
    assert "one is saved in your profile" in page.text
    assert 'data-saved-keys="groq"' in page.text


async def test_try_it_is_a_chat_link_for_sft_and_a_classify_box_for_classifiers(
    http: httpx.AsyncClient, database: Database, tmp_path: Path, other_browser: httpx.AsyncClient
) -> None:
    csrf = await sign_in(http, database, "u@example.com")
    sft = await start_job(http, csrf, tmp_path, task="sft", name="my.chat-model")
    page = await http.get(f"/training/jobs/{sft}")
    assert 'href="/language-models/local/my.chat-model"' in page.text
    assert 'id="classify-form"' not in page.text
    assert 'data-task="sft"' in page.text and 'data-state="queued"' in page.text
    assert "<dt>Method</dt><dd>lora</dd>" in page.text
    assert "<dt>Max steps</dt><dd>7</dd>" in page.text
    # Once trained, the model is in the catalog; the link (a name with a slash) opens its
    # chat, under the name the gateway knows it by.
    async with database.sessions() as session:
        me = await session.scalar(select(User).where(User.email == "u@example.com"))
        assert me is not None
        session.add(
            TrainedModel(
                owner_id=me.id,
                name="my.chat-model",
                task="chat",
                base_model="x",
                path=f"models/u{me.id}/my.chat-model",
            )
        )
        await session.commit()
    chat = await http.get("/language-models/local/my.chat-model")
    assert chat.status_code == 200
    assert 'data-model="local/my.chat-model"' in chat.text
    # Someone else opening that page sees what any unknown name shows (it is not theirs).
    foreign = await other_browser.get("/language-models/local/my.chat-model")
    unknown = await other_browser.get("/language-models/local/no-such-model")
    strip = re.compile(r'name="csrf-token" content="[^"]*"|nonce="[^"]*"')
    assert strip.sub("", foreign.text).replace("my.chat-model", "X") == strip.sub(
        "", unknown.text
    ).replace("no-such-model", "X")

    classifier = await start_job(http, csrf, tmp_path, task="classification", name="my-labels")
    page = await http.get(f"/training/jobs/{classifier}")
    assert 'id="classify-form"' in page.text
    assert "/language-models/local/" not in page.text
    assert "<dt>Method</dt>" not in page.text
    assert 'id="job-cancel"' in page.text and 'id="job-cancel" hidden' not in page.text
    assert 'id="share-form"' not in page.text  # nothing to share before it is trained

    # Trained: its owner may share it from the page; someone else may not even see it.
    async with database.sessions() as session:
        job = await session.get(TrainingJob, classifier)
        assert job is not None
        job.state = "succeeded"
        model = await register(session, job)
        await session.commit()
        model_id = model.id
    page = await http.get(f"/training/jobs/{classifier}")
    assert f'id="share-form" data-model-id="{model_id}"' in page.text
    assert '<option value="private" selected>' in page.text
    assert '<select id="share-visibility" aria-describedby="share-status">' in page.text
    assert (await other_browser.get(f"/training/jobs/{classifier}")).status_code == 404
