"""The admin panel's usage view: staff only, read-only, newest first, searchable."""

from __future__ import annotations

import httpx

from modelyard.db.engine import Database
from modelyard.usage.events import UsageEvent
from modelyard.usage.recorder import UsageRecorder
from tests.helpers import login, make_user
from tests.usage.conftest import usage_rows

LIST = "/admin/usage-record/list"
SAME_SITE = {"Origin": "http://testserver"}


async def test_usage_records_are_read_only_newest_first_and_searchable(
    client: httpx.AsyncClient, database: Database, recorder: UsageRecorder
) -> None:
    recorder.record(UsageEvent(endpoint="chat", model="older-model-x", status=200,
                               provider="openai"))  # fmt: skip
    recorder.record(UsageEvent(endpoint="chat", model="newer-model-y", status=200,
                               provider="anthropic"))  # fmt: skip
    await recorder.flush()
    await make_user(database, "member@example.com")
    await login(client, "member@example.com")
    assert (await client.get(LIST)).status_code == 403
    await make_user(database, "boss@example.com", staff=True)
    await login(client, "boss@example.com")
    listing = await client.get(LIST)
    assert listing.status_code == 200, listing.text
    assert listing.text.index("newer-model-y") < listing.text.index("older-model-x")
    by_provider = (await client.get(LIST, params={"search": "anthropic"})).text
    assert "newer-model-y" in by_provider and "older-model-x" not in by_provider
    by_model = (await client.get(LIST, params={"search": "older-model"})).text
    assert "older-model-x" in by_model and "newer-model-y" not in by_model
    row = (await usage_rows(database))[0]
    assert (await client.get("/admin/usage-record/create")).status_code == 403
    assert (await client.get(f"/admin/usage-record/edit/{row.id}")).status_code == 403
    deleted = await client.delete(f"/admin/usage-record/delete?pks={row.id}", headers=SAME_SITE)
    assert deleted.status_code == 403
    assert len(await usage_rows(database)) == 2
