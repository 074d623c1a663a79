"""Is a request from this site? The one same-origin check of the login forms and the admin.

A browser names the page a request comes from: ``Origin`` on form posts and fetches,
``Referer`` when a link is followed, ``Sec-Fetch-Site`` in current browsers. The request is
from this site when the first of ``Origin``/``Referer`` it carries is an ``http(s)`` URL
whose host is the request's ``Host``. ``Origin: null`` (a sandboxed frame, a ``data:`` page,
a cross-site redirect) is never this site, nor is a ``Sec-Fetch-Site`` of ``cross-site`` or
``same-site``. Programs other than browsers often send none of these headers; whether
such a request passes is the caller's choice (``require``).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

__all__ = ["is_same_origin"]

_FOREIGN_FETCH_SITES = frozenset({"cross-site", "same-site"})


def _names_host(url: str, host: str) -> bool:
    parts = urlsplit(url.strip())
    return parts.scheme in ("http", "https") and bool(parts.netloc) and parts.netloc == host


def is_same_origin(headers: Mapping[str, str], *, require: bool) -> bool:
    """Whether the request comes from a page of this site.

    With ``require``, a request naming no page at all (no ``Origin``, no ``Referer``) is
    refused too; without, it passes (an API client, ``curl``).
    """
    if headers.get("sec-fetch-site", "").strip().lower() in _FOREIGN_FETCH_SITES:
        return False
    host = headers.get("host", "")
    origin = headers.get("origin")
    if origin is not None and origin.strip():
        return _names_host(origin, host)
    referer = headers.get("referer")
    if referer is not None and referer.strip():
        return _names_host(referer, host)
    return not require
