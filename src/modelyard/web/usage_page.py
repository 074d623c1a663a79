"""The usage page: tokens and cost by day and by model as charts, a table and the CSV
export (``static/usage.js`` reads ``GET /v2/usage`` and draws the charts as SVG)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from modelyard.api.deps import OptionalCaller
from modelyard.web.rendering import render, sign_in_redirect, signed_in

__all__ = ["PERIODS", "router"]

router = APIRouter(include_in_schema=False)

#: The periods offered, in days (today included).
PERIODS = (7, 30, 90, 365)


@router.get("/usage", response_model=None)
async def usage_page(request: Request, caller: OptionalCaller) -> Response:
    """The shell of the usage page; its script reads the numbers."""
    page = signed_in(caller)
    if page is None:
        return sign_in_redirect(request)
    return render(request, "usage.html", page=page, nav="usage", periods=PERIODS)
