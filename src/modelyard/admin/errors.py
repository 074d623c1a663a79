"""Error pages of the admin for what SQLAdmin itself leaves to a 500.

SQLAdmin renders its ``HTTPException`` as a page; anything else raised outside its own
``try`` blocks would be a bare 500. Here a :class:`~modelyard.errors.ModelyardError`
becomes a page with its status and message, and a ``ValueError`` (SQLAdmin's answer to
a malformed request, such as a delete without ``pks``) a 400 page that echoes nothing.
"""

from __future__ import annotations

import logging

from sqladmin import Admin
from starlette import status
from starlette.requests import Request
from starlette.responses import Response

from modelyard.errors import ModelyardError

__all__ = ["install_error_pages"]

logger = logging.getLogger("modelyard.admin")

_ERROR_TEMPLATE = "sqladmin/error.html"
MALFORMED = "The request is malformed: a parameter is missing or has the wrong form."


def install_error_pages(admin: Admin) -> None:
    """Render the errors above as SQLAdmin error pages in ``admin``."""

    async def page(request: Request, status_code: int, message: str) -> Response:
        context = {"status_code": status_code, "message": message}
        return await admin.templates.TemplateResponse(
            request, _ERROR_TEMPLATE, context, status_code=status_code
        )

    async def modelyard_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ModelyardError)
        return await page(request, exc.status_code, exc.message)

    async def malformed(request: Request, exc: Exception) -> Response:
        logger.info("Malformed admin request %s %s: %r", request.method, request.url.path, exc)
        return await page(request, status.HTTP_400_BAD_REQUEST, MALFORMED)

    admin.admin.add_exception_handler(ModelyardError, modelyard_error)
    admin.admin.add_exception_handler(ValueError, malformed)
