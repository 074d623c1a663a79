"""Model ids on their way upstream: the one place that proves a model id harmless.

A model id comes from the client (``google/<anything>`` names any Gemini model), so it
must never steer a request. Two checks, both refusing with a 400 (``param="model"``,
``code="invalid_model"``) before any upstream call:

- :func:`check_model_id`, for every id (even one that only goes into a JSON body, where it
  is also logged): no control characters or whitespace, none of ``? # % \\``, no ``.`` or
  ``..`` path segment, at most :data:`MAX_LENGTH` characters;
- :func:`model_path`, for an id that becomes part of a URL path (Gemini's
  ``models/{model}:generateContent``, Hugging Face direct inference's ``/{org}/{name}``):
  one to ``segments`` segments split on ``/``, each starting with a letter or digit and
  made of letters, digits, ``.``, ``_`` and ``-`` only — nothing a URL parser, a proxy or a
  server could read as another segment, a query, a fragment, an escape or a host.

The returned path is percent-quoted as well, which, after the check, changes nothing: the
check is what keeps the path, the quoting only states it.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from modelyard.errors import BadRequestError

__all__ = ["MAX_LENGTH", "check_model_id", "invalid_model", "model_path"]

#: The longest model id accepted (Hugging Face allows 96 characters per name).
MAX_LENGTH = 256

#: One URL path segment of a model id.
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
#: Characters no model id may contain: controls, whitespace and URL delimiters/escapes.
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f-\x9f?#%\\\s]")


def invalid_model(model: str, why: str) -> BadRequestError:
    """The 400 for a model id that cannot be sent upstream (the id shown escaped)."""
    shown = repr(model[:80] + ("…" if len(model) > 80 else ""))
    return BadRequestError(f"Invalid model id {shown}: {why}.", param="model", code="invalid_model")


def check_model_id(model: str) -> None:
    """Raise a 400 unless ``model`` is safe to send upstream in a body (and to log)."""
    if not model:
        raise invalid_model(model, "it is empty")
    if len(model) > MAX_LENGTH:
        raise invalid_model(model, f"it is longer than {MAX_LENGTH} characters")
    if _FORBIDDEN.search(model):
        raise invalid_model(
            model,
            "model ids cannot contain whitespace, control characters or any of ? # % \\",
        )
    if any(segment in (".", "..") for segment in model.split("/")):
        raise invalid_model(model, "model ids cannot contain '.' or '..' path segments")


def model_path(model: str, *, segments: int = 1, api: str) -> str:
    """``model`` as the URL path segments it names (1 to ``segments`` of them), or a 400
    that says what ``api`` accepts."""
    check_model_id(model)
    parts = model.split("/")
    shape = "name" if segments == 1 else "name or owner/name"
    if len(parts) > segments or not all(_SEGMENT.fullmatch(part) for part in parts):
        raise invalid_model(
            model,
            f"the {api} API takes a {shape} made of letters, digits, '.', '_' and '-', "
            "each part starting with a letter or digit",
        )
    return "/".join(quote(part, safe="") for part in parts)
