"""The admin views of provider fine-tuning: upload a training file, create a command,
then Run, Refresh and Cancel; failures shown plainly (the provider's code and message),
never the key; staff only."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from modelyard.db.engine import Database
from modelyard.db.models import FineTuneCommand, FineTuneFile, Provider, User
from tests.fakes.openai_finetune import FineTuneOpenAI
from tests.finetune.conftest import CANARY_KEY, chat_example, write_jsonl
from tests.helpers import login, make_user

SAME_SITE = {"Origin": "http://testserver"}
PAGES = [
    "/admin/fine-tune-file/list",
    "/admin/fine-tune-command/list",
    "/admin/fine-tune-event/list",
    "/admin/fine-tune-command/create",
    "/admin/fine-tune-file/create",
]
WRONG_KEY = "sk-wrong-canary-admin-0123456789abcdef"


@pytest.fixture
async def signed_in(client: httpx.AsyncClient, staff: User) -> User:
    await login(client, staff.email)
    return staff


def command_form(**values: str) -> dict[str, str]:
    form = {"command_type": "create", "save": "Save"}
    form.update(values)
    return form


async def action(client: httpx.AsyncClient, name: str, *ids: int) -> str:
    pks = ",".join(str(i) for i in ids)
    response = await client.get(
        f"/admin/fine-tune-command/action/{name}?pks={pks}",
        headers={"Referer": "http://testserver/admin/fine-tune-command/list"},
        follow_redirects=True,
    )
    assert response.status_code == 200, response.text
    return unescape(response.text)


async def commands(database: Database) -> list[FineTuneCommand]:
    async with database.sessions() as session:
        return list(await session.scalars(select(FineTuneCommand).order_by(FineTuneCommand.id)))


async def test_only_staff(client: httpx.AsyncClient, database: Database) -> None:
    await make_user(database, "plain@example.com")
    await login(client, "plain@example.com")
    for page in PAGES:
        assert (await client.get(page)).status_code == 403, page


async def test_upload_create_run_refresh_cancel(
    client: httpx.AsyncClient,
    database: Database,
    fake_ft: FineTuneOpenAI,
    openai_provider: int,
    signed_in: User,
    training_jsonl: Path,
    tmp_path: Path,
) -> None:
    for page in PAGES:
        assert (await client.get(page)).status_code == 200, page

    bad = write_jsonl(tmp_path / "bad.jsonl", [chat_example(i) for i in range(3)])
    with bad.open("rb") as handle:
        refused = await client.post(
            "/admin/fine-tune-file/create",
            files={"file": ("bad.jsonl", handle, "application/jsonl")},
            data={"save": "Save"},
            headers=SAME_SITE,
        )
    assert refused.status_code == 400
    assert "too few examples: 3; OpenAI needs at least 10" in unescape(refused.text)
    assert fake_ft.requests == []

    with training_jsonl.open("rb") as handle:
        uploaded = await client.post(
            "/admin/fine-tune-file/create",
            files={"file": ("support.jsonl", handle, "application/jsonl")},
            data={"save": "Save"},
            headers=SAME_SITE,
        )
    assert uploaded.status_code == 302, uploaded.text
    async with database.sessions() as session:
        record = await session.scalar(select(FineTuneFile))
    assert record is not None and record.created_by_id == signed_in.id
    assert record.remote_id in fake_ft.files and record.num_examples == 12

    created = await client.post(
        "/admin/fine-tune-command/create",
        data=command_form(training_file_id=str(record.id), n_epochs="2", suffix="admin"),
        headers=SAME_SITE,
    )
    assert created.status_code == 302, created.text
    [command] = await commands(database)
    assert (command.state, command.data) == ("pending", {"n_epochs": 2, "suffix": "admin"})
    assert not fake_ft.jobs

    page = await action(client, "run", command.id)
    [command] = await commands(database)
    assert command.state == "done" and command.remote_job_id in fake_ft.jobs
    assert f"Command {command.id}: job {command.remote_job_id} is validating_files" in page

    page = await action(client, "refresh", command.id)
    assert f"job {command.remote_job_id} is queued" in page
    page = await action(client, "cancel", command.id)
    assert f"job {command.remote_job_id} is cancelled" in page
    page = await action(client, "cancel", command.id)
    assert "has cancelled already; there is nothing to cancel" in page
    page = await action(client, "run", command.id)
    assert "it ran already" in page
    types = [c.command_type for c in await commands(database)]
    assert types == ["create", "refresh", "cancel"]

    listing = unescape((await client.get("/admin/fine-tune-event/list")).text)
    assert "Fine-tuning job cancelled" in listing
    details = await client.get(f"/admin/fine-tune-command/details/{command.id}")
    assert details.status_code == 200 and command.remote_job_id in details.text


async def test_failures_are_shown_plainly_and_never_the_key(
    client: httpx.AsyncClient,
    database: Database,
    fake_ft: FineTuneOpenAI,
    openai_provider: int,
    signed_in: User,
    training_jsonl: Path,
) -> None:
    refused = await client.post(
        "/admin/fine-tune-command/create",
        data=command_form(training_file_id="42"),
        headers=SAME_SITE,
    )
    assert refused.status_code == 400
    assert "No training file 42" in unescape(refused.text)
    invalid = await client.post(
        "/admin/fine-tune-command/create",
        data=command_form(command_type="cancel"),
        headers=SAME_SITE,
    )
    assert invalid.status_code == 400 and "needs job_command_id" in unescape(invalid.text)
    assert await commands(database) == []

    with training_jsonl.open("rb") as handle:
        await client.post(
            "/admin/fine-tune-file/create",
            files={"file": ("support.jsonl", handle, "application/jsonl")},
            data={"save": "Save"},
            headers=SAME_SITE,
        )
    async with database.sessions() as session:
        file_id = await session.scalar(select(FineTuneFile.id))
        provider = await session.get(Provider, openai_provider)
        assert provider is not None
        provider.api_key = WRONG_KEY
        await session.commit()
    await client.post(
        "/admin/fine-tune-command/create",
        data=command_form(training_file_id=str(file_id)),
        headers=SAME_SITE,
    )
    [command] = await commands(database)
    page = await action(client, "run", command.id)
    assert "answered HTTP 401 (invalid_api_key): Incorrect API key provided: ****" in page
    assert WRONG_KEY not in page and CANARY_KEY not in page
    listing = unescape((await client.get("/admin/fine-tune-command/list")).text)
    assert "HTTP 401 invalid_api_key: Incorrect API key provided: ****" in listing
    assert WRONG_KEY not in listing
    assert re.search(r"<td>failed</td>", listing)
