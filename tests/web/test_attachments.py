"""Attachments in the chat: images go to the model as image parts, text, Markdown and PDF
files as their text between ``<file>`` tags; each file is checked by its bytes when it is
uploaded, kept for its owner only, linked to the message it was sent with and shown with
it; bad files get a clear 400/413/415 and leave nothing behind."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from modelyard.conversations.attachments import MAX_IMAGE_BYTES, TEXT_TOKEN_BUDGET
from modelyard.db.engine import Database
from modelyard.db.models import Conversation, MessageAttachment
from tests.helpers import login, make_user
from tests.web.attachment_files import pdf_with_text, png
from tests.web.conftest import USER_KEY
from tests.web.live import SlowChatOpenAI

HEADER = "x-modelyard-conversation-id"


async def upload(
    client: httpx.AsyncClient, csrf: str, name: str, data: bytes, media_type: str = "text/plain"
) -> httpx.Response:
    return await client.post(
        "/web/api/attachments",
        files={"file": (name, data, media_type)},
        headers={"X-CSRF-Token": csrf},
    )


async def uploaded(client: httpx.AsyncClient, csrf: str, name: str, data: bytes) -> dict[str, Any]:
    response = await upload(client, csrf, name, data)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def send(
    client: httpx.AsyncClient, csrf: str, messages: list[dict[str, Any]], **extra: Any
) -> httpx.Response:
    body = {"model": "gpt-4o-mini", "messages": messages, **extra}
    return await client.post("/v2/llm/chat/completions", json=body, headers={"X-CSRF-Token": csrf})


def sent_messages(upstream: SlowChatOpenAI) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = json.loads(upstream.last_request.body)["messages"]
    return messages


async def test_text_and_pdf_files_are_inlined_and_kept_with_the_message(
    client: httpx.AsyncClient, csrf: str, openai_upstream: SlowChatOpenAI
) -> None:
    notes = await uploaded(client, csrf, "notes.md", b"# Plan\n\n- ship it\n")
    assert (notes["kind"], notes["filename"], notes["media_type"]) == (
        "text",
        "notes.md",
        "text/plain",
    )
    assert notes["token_estimate"] == 5
    report = await uploaded(client, csrf, "report.pdf", pdf_with_text("Revenue grew 12 percent"))
    assert report["media_type"] == "application/pdf" and report["kind"] == "text"

    question = {
        "role": "user",
        "content": "Summarise",
        "attachment_ids": [notes["id"], report["id"]],
    }
    response = await send(client, csrf, [question])
    assert response.status_code == 200, response.text
    [sent] = sent_messages(openai_upstream)
    assert "attachment_ids" not in sent
    assert sent["content"] == [
        {"type": "text", "text": "Summarise"},
        {"type": "text", "text": '<file name="notes.md">\n# Plan\n\n- ship it\n\n</file>'},
        {"type": "text", "text": '<file name="report.pdf">\nRevenue grew 12 percent\n</file>'},
    ]
    conversation = int(response.headers[HEADER])
    items = (await client.get(f"/web/api/conversations/{conversation}/messages")).json()["items"]
    assert items[0]["content"] == "Summarise"  # the file text is not the question
    assert [a["filename"] for a in items[0]["attachments"]] == ["notes.md", "report.pdf"]
    assert items[1]["attachments"] == []

    # Later turns send the files again with their message; the file stays readable.
    follow = [
        {"role": "user", "content": "Summarise", "attachment_ids": [notes["id"]]},
        {"role": "assistant", "content": items[1]["content"]},
        {"role": "user", "content": "Shorter"},
    ]
    assert (await send(client, csrf, follow, conversation_id=conversation)).status_code == 200
    first = sent_messages(openai_upstream)[0]
    assert "ship it" in first["content"][1]["text"]
    text = await client.get(f"/web/api/attachments/{report['id']}")
    assert text.status_code == 200 and text.text == "Revenue grew 12 percent"
    sent_file = await client.delete(
        f"/web/api/attachments/{notes['id']}", headers={"X-CSRF-Token": csrf}
    )
    assert sent_file.status_code == 409


async def test_an_image_goes_as_an_image_part(
    client: httpx.AsyncClient, csrf: str, openai_upstream: SlowChatOpenAI
) -> None:
    picture = png(2, 2)
    image = await uploaded(client, csrf, "chart.png", picture)
    assert (image["kind"], image["media_type"], image["token_estimate"]) == (
        "image",
        "image/png",
        0,
    )
    question = {"role": "user", "content": "What is this?", "attachment_ids": [image["id"]]}
    assert (await send(client, csrf, [question])).status_code == 200
    [sent] = sent_messages(openai_upstream)
    url = sent["content"][1]["image_url"]["url"]
    assert url == "data:image/png;base64," + base64.b64encode(picture).decode()
    served = await client.get(f"/web/api/attachments/{image['id']}")
    assert served.content == picture and served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("name", "data", "status", "says"),
    [
        ("tool.exe", b"MZ\x90\x00\x03" + bytes(100), 415, "not supported"),
        ("photo.jpg", b"not really a jpeg", 415, "not supported"),  # the bytes decide
        ("latin1.txt", "caf\xe9".encode("latin-1"), 400, "not UTF-8"),
        ("blob.txt", b"a\x00b", 400, "binary"),
        ("empty.txt", b"", 400, "empty"),
        ("broken.pdf", b"%PDF-1.4\ngarbage", 400, "could not be read as a PDF"),
        ("huge.png", b"\x89PNG\r\n\x1a\n" + bytes(MAX_IMAGE_BYTES), 413, "MiB"),
        ("long.txt", b"word " * (TEXT_TOKEN_BUDGET * 2), 413, "tokens"),
    ],
)
async def test_bad_files_are_refused_clearly(
    client: httpx.AsyncClient,
    csrf: str,
    database: Database,
    name: str,
    data: bytes,
    status: int,
    says: str,
) -> None:
    response = await upload(client, csrf, name, data)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert says in error["message"] and error["param"] == "file"
    async with database.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(MessageAttachment)) == 0


async def test_another_users_attachment_is_a_404(
    client: httpx.AsyncClient, csrf: str, database: Database, openai_upstream: SlowChatOpenAI
) -> None:
    mine = await uploaded(client, csrf, "secret.txt", b"the launch code")
    await make_user(database, "intruder@example.com")
    client.cookies.clear()
    other = await login(client, "intruder@example.com")
    await client.patch(
        "/v2/users/me/api-key",
        json={"provider": "openai", "api_key": USER_KEY},
        headers={"X-CSRF-Token": other},
    )
    assert (await client.get(f"/web/api/attachments/{mine['id']}")).status_code == 404
    deleted = await client.delete(
        f"/web/api/attachments/{mine['id']}", headers={"X-CSRF-Token": other}
    )
    assert deleted.status_code == 404
    calls = len(openai_upstream.requests)
    question = {"role": "user", "content": "read it", "attachment_ids": [mine["id"]]}
    stolen = await send(client, other, [question])
    assert stolen.status_code == 404
    assert stolen.json()["error"]["code"] == "attachment_not_found"
    assert len(openai_upstream.requests) == calls  # nothing went upstream
    async with database.sessions() as session:  # and no empty conversation was left
        assert await session.scalar(select(func.count()).select_from(Conversation)) == 0
    bad = await send(client, other, [{"role": "user", "content": "x", "attachment_ids": "1"}])
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "attachment_ids"


async def test_an_unsent_attachment_can_be_removed(client: httpx.AsyncClient, csrf: str) -> None:
    draft = await uploaded(client, csrf, "draft.txt", b"not yet")
    removed = await client.delete(
        f"/web/api/attachments/{draft['id']}", headers={"X-CSRF-Token": csrf}
    )
    assert removed.status_code == 204
    assert (await client.get(f"/web/api/attachments/{draft['id']}")).status_code == 404
    no_csrf = await upload(client, "wrong", "a.txt", b"x")
    assert no_csrf.status_code == 403


async def test_an_image_is_refused_for_a_model_that_takes_none(
    client: httpx.AsyncClient, csrf: str, database: Database, openai_upstream: SlowChatOpenAI
) -> None:
    """A model without vision gets no image: a 400 in the API's error shape naming the
    model and what to do, before anything goes upstream or is stored; the same image goes
    to a model that takes images, and text files to any model."""
    openai_upstream.models.append("gpt-3.5-turbo")  # a catalog model without vision
    image = await uploaded(client, csrf, "chart.png", png(2, 2))
    notes = await uploaded(client, csrf, "notes.md", b"# Plan\n")
    question = {"role": "user", "content": "What is this?", "attachment_ids": [image["id"]]}
    calls = len(openai_upstream.requests)

    refused = await send(client, csrf, [question], model="gpt-3.5-turbo")
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "model_takes_no_images"
    assert error["param"] == "attachment_ids"
    assert error["type"] == "invalid_request_error"
    assert "gpt-3.5-turbo does not take images" in error["message"]
    assert "so chart.png cannot be sent" in error["message"]
    assert "Choose a model that takes images" in error["message"]
    assert len(openai_upstream.requests) == calls  # nothing went upstream
    async with database.sessions() as session:  # no conversation, the image still unsent
        assert await session.scalar(select(func.count()).select_from(Conversation)) == 0
        row = await session.get(MessageAttachment, image["id"])
        assert row is not None and row.message_id is None

    text_only = {"role": "user", "content": "Read it", "attachment_ids": [notes["id"]]}
    answered = await send(client, csrf, [text_only], model="gpt-3.5-turbo")
    assert answered.status_code == 200, answered.text
    conversation_id = int(answered.headers[HEADER])
    history = [text_only, {"role": "assistant", "content": "Done."}, question]
    later = await send(
        client, csrf, history, model="gpt-3.5-turbo", conversation_id=conversation_id
    )
    assert later.status_code == 400 and later.json()["error"]["code"] == "model_takes_no_images"
    listed = await client.get(f"/web/api/conversations/{conversation_id}/messages")
    assert len(listed.json()["items"]) == 2  # the refused turn stored nothing

    accepted = await send(
        client, csrf, history, model="gpt-4o-mini", conversation_id=conversation_id
    )
    assert accepted.status_code == 200, accepted.text
    assert sent_messages(openai_upstream)[-1]["content"][1]["type"] == "image_url"
    listed = await client.get(f"/web/api/conversations/{conversation_id}/messages")
    assert [file["filename"] for file in listed.json()["items"][2]["attachments"]] == ["chart.png"]
