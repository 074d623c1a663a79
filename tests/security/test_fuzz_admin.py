"""Fuzzing the admin panel (SQLAdmin at ``/admin``) signed in as staff through ``/login``:
every view's details, edit and delete of a row that does not exist (or an id that cannot
be one) is a 404 page, and its create and edit forms with hostile values (huge, negative
and malformed numbers, NUL, unpaired surrogates, long text, invalid choices) are a 4xx or
the form again with its error, never a 5xx, never revealing the server. On SQLite and
PostgreSQL (``conftest.py``)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from html import unescape
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard.admin import VIEWS
from modelyard.admin.base import StaffView
from tests.security.conftest import FuzzServer, assert_reveals_nothing
from tests.security.hostile import HOSTILE_NUMBERS, form_bytes, fuzz_settings, hostile_text

#: Examples per form.
EXAMPLES = 15
FORM = {"content-type": "application/x-www-form-urlencoded"}
#: Ids that no row has, or that cannot be an id at all.
MISSING_IDS = ["999999", "0", "abc", "-1", "9223372036854775808", "9" * 5000]
_FIELD = re.compile(
    r"<(input|select|textarea)\b([^>]*)>(.*?)(?=<(?:input|select|textarea)\b|$)", re.S
)
_ATTRIBUTE = re.compile(r'(\w+)(?:="([^"]*)")?')


@pytest.fixture(scope="module")
def staff(fuzz_server: FuzzServer) -> Iterator[httpx.Client]:
    client = fuzz_server.sign_in()
    yield client
    client.close()


@pytest.fixture(scope="module")
def rows(fuzz_server: FuzzServer, staff: httpx.Client) -> dict[str, str]:
    """An existing row to edit for every view that has edit forms (made through the API)."""
    with httpx.Client(base_url=fuzz_server.base, headers=fuzz_server.headers) as api:
        route = api.post(
            "/v2/admin/routes",
            json={"name": "fuzz-route", "targets": [{"provider": "openai", "model": "gpt-4o"}]},
        )
        assert route.status_code == 201, route.text
        limit = api.put(
            f"/v2/admin/limits/users/{fuzz_server.user_id}", json={"requests_per_minute": 100}
        )
        assert limit.status_code in (200, 201), limit.text
        listed = staff.get("/admin/usage-limit/list").text
        (limit_id,) = set(re.findall(r"/admin/usage-limit/details/(\d+)", listed))
        providers = api.get("/v2/admin/providers").json()
    return {
        "provider": str(providers[0]["id"]),
        "gateway-route": str(route.json()["id"]),
        "user": str(fuzz_server.user_id),
        "llm-model": "1",
        "usage-limit": str(limit_id),
    }


def view_id(view: type[StaffView]) -> str:
    return str(view.identity)


def same_site(server: FuzzServer, identity: str) -> dict[str, str]:
    return {"Origin": server.base, "Referer": f"{server.base}/admin/{identity}/list"}


def check(response: httpx.Response, server: FuzzServer) -> None:
    request = f"{response.request.method} {response.request.url.raw_path[:120]!r}"
    assert response.status_code < 500, f"{request} → {response.status_code}: {response.text[:300]}"
    if response.status_code >= 400:
        assert_reveals_nothing(response.text, server.data_dir)


def assert_404_page(response: httpx.Response, server: FuzzServer) -> None:
    assert response.status_code == 404, response.text[:300]
    assert response.headers["content-type"].startswith("text/html")
    assert "modelyard admin" in response.text
    assert_reveals_nothing(response.text, server.data_dir)


@pytest.mark.parametrize("view", VIEWS, ids=view_id)
def test_a_missing_row_is_a_404_page(
    fuzz_server: FuzzServer, staff: httpx.Client, view: type[StaffView]
) -> None:
    identity = view_id(view)
    headers = same_site(fuzz_server, identity)
    for pk in MISSING_IDS:
        part = httpx.URL(f"/admin/{identity}/details/{pk}").raw_path.decode()
        assert_404_page(staff.get(part), fuzz_server)
        edit = staff.get(part.replace("/details/", "/edit/"))
        post = staff.post(
            part.replace("/details/", "/edit/"), data={"save": "Save"}, headers=headers
        )
        delete = staff.delete(f"/admin/{identity}/delete", params={"pks": pk}, headers=headers)
        for response, allowed in ((edit, view.can_edit), (post, view.can_edit)):
            if allowed:
                assert_404_page(response, fuzz_server)
            else:
                assert response.status_code == 403, response.text[:300]
        if view.can_delete:
            assert_404_page(delete, fuzz_server)
        else:
            assert delete.status_code == 403, delete.text[:300]


@pytest.mark.parametrize("view", [v for v in VIEWS if v.can_delete], ids=view_id)
def test_a_malformed_delete_is_a_4xx_page(
    fuzz_server: FuzzServer, staff: httpx.Client, view: type[StaffView]
) -> None:
    identity = view_id(view)
    headers = same_site(fuzz_server, identity)
    no_pks = staff.delete(f"/admin/{identity}/delete", headers=headers)
    assert no_pks.status_code == 400, no_pks.text[:300]
    assert "malformed" in no_pks.text
    assert_reveals_nothing(no_pks.text, fuzz_server.data_dir)
    for pks in ("", ",", "1,abc", "999999,999998"):
        response = staff.delete(f"/admin/{identity}/delete", params={"pks": pks}, headers=headers)
        assert response.status_code in (403, 404), response.text[:300]
        assert_reveals_nothing(response.text, fuzz_server.data_dir)


def test_nul_in_an_admin_url_is_a_400(fuzz_server: FuzzServer, staff: httpx.Client) -> None:
    for url in ("/admin/provider/details/1%00", "/admin/provider/list?search=%00"):
        response = staff.get(url)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "invalid_text"


# -- forms with hostile values -----------------------------------------------------------


def form_fields(html: str) -> dict[str, dict[str, Any]]:
    """The form's fields: name → tag, type, default value and (for selects) choices."""
    fields: dict[str, dict[str, Any]] = {}
    for tag, attributes, rest in _FIELD.findall(html):
        values = {k: unescape(v) for k, v in _ATTRIBUTE.findall(attributes)}
        name, kind = values.get("name"), values.get("type", tag)
        if not name or kind in ("submit", "hidden"):
            continue
        choices = re.findall(r'<option[^>]*value="([^"]*)"', rest) if tag == "select" else []
        fields[name] = {"kind": kind, "value": values.get("value", ""), "choices": choices}
    return fields


def field_values(fields: dict[str, dict[str, Any]]) -> st.SearchStrategy[dict[str, str]]:
    strategies: dict[str, st.SearchStrategy[str]] = {}
    for name, field in fields.items():
        sane = st.just(field["value"] or "fuzz")
        if field["kind"] == "number":
            hostile = st.one_of(st.sampled_from(HOSTILE_NUMBERS), st.integers().map(str))
        elif field["kind"] == "select":
            hostile = st.one_of(st.sampled_from(field["choices"] or ["x"]), hostile_text)
        elif field["kind"] == "checkbox":
            hostile = st.sampled_from(["y", "", "on", "\ud800"])
        else:
            hostile = hostile_text
        strategies[name] = st.one_of(sane, hostile, hostile)
    return st.fixed_dictionaries(strategies)


def fuzz_form(server: FuzzServer, staff: httpx.Client, identity: str, url: str) -> None:
    page = staff.get(url)
    assert page.status_code == 200, page.text[:300]
    fields = form_fields(page.text)
    assert fields, f"no form fields found on {url}"
    headers = {**FORM, **same_site(server, identity)}

    @given(values=field_values(fields))
    @fuzz_settings(EXAMPLES)
    def post(values: dict[str, str]) -> None:
        body = form_bytes({**values, "save": "Save"})
        response = staff.post(url, content=body, headers=headers)
        check(response, server)
        if response.status_code == 400 and "text/html" in response.headers["content-type"]:
            assert "<form" in response.text, "a 400 that is not the form with its error"

    post()


@pytest.mark.parametrize("view", [v for v in VIEWS if v.can_create], ids=view_id)
def test_create_forms_with_hostile_values(
    fuzz_server: FuzzServer, staff: httpx.Client, view: type[StaffView]
) -> None:
    identity = view_id(view)
    fuzz_form(fuzz_server, staff, identity, f"/admin/{identity}/create")


@pytest.mark.parametrize("view", [v for v in VIEWS if v.can_edit], ids=view_id)
def test_edit_forms_with_hostile_values(
    fuzz_server: FuzzServer, staff: httpx.Client, rows: dict[str, str], view: type[StaffView]
) -> None:
    identity = view_id(view)
    fuzz_form(fuzz_server, staff, identity, f"/admin/{identity}/edit/{rows[identity]}")


#: Query strings a list page must survive: searches, pages, page sizes, sorting.
LIST_QUERIES = [
    {"search": "' OR 1=1 --"},
    {"search": "x" * 5000},
    {"search": "\ud800"},
    {"search": "%_\\"},
    {"page": "-1"},
    {"page": "9" * 400},
    {"page": "abc"},
    {"pageSize": "0"},
    {"pageSize": "9" * 30},
    {"sortBy": "no_such_column"},
    {"sortBy": "id", "sort": "sideways"},
]


@pytest.mark.parametrize("view", VIEWS, ids=view_id)
def test_list_pages_with_hostile_queries(
    fuzz_server: FuzzServer, staff: httpx.Client, view: type[StaffView]
) -> None:
    for query in LIST_QUERIES:
        url = f"/admin/{view_id(view)}/list?" + form_bytes(query).decode()
        check(staff.get(url), fuzz_server)


@pytest.mark.parametrize("view", [v for v in VIEWS if v.can_export], ids=view_id)
def test_csv_exports_never_start_a_formula(
    fuzz_server: FuzzServer, staff: httpx.Client, view: type[StaffView]
) -> None:
    response = staff.get(f"/admin/{view_id(view)}/export/csv")
    assert response.status_code == 200, response.text[:300]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows, "the export has no header"
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("\t", "\r")), row
            assert not cell.lstrip().startswith(("=", "+", "-", "@")), row


@pytest.mark.parametrize("name", [" =1+1", '\n=HYPERLINK("http://x")', "\t@SUM(A1)", "\r-2", "+x"])
def test_a_formula_in_the_catalog_is_exported_as_text(
    fuzz_server: FuzzServer, staff: httpx.Client, name: str
) -> None:
    fields = {
        "provider_kind": "openai",
        "model_id": f"formula-{len(name)}-{ord(name[0])}",
        "display_name": name,
        "description": name,
        "task": "chat",
        "input_price_per_million": "1",
        "output_price_per_million": "2",
        "is_active": "y",
        "save": "Save",
    }
    created = staff.post(
        "/admin/llm-model/create", data=fields, headers=same_site(fuzz_server, "llm-model")
    )
    assert created.status_code == 302, created.text[:500]
    export = staff.get("/admin/llm-model/export/csv")
    assert export.status_code == 200
    rows = list(csv.DictReader(io.StringIO(export.text)))
    (row,) = [r for r in rows if r["model_id"] == fields["model_id"]]
    assert row["display_name"] == "'" + name.strip()  # the form strips the name
