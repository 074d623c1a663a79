"""The "test connection" check: one real, cheap call that tells whether a provider key works.

:func:`check_connection` makes the call the kind's spec declares (its
:class:`~modelyard.providers.kinds.ConnectionCheck`: list the models, or the custom
provider's ``/test``) with the kind's auth headers, over the upstream session
(:func:`~modelyard.gateway.adapters.wire.send`), and turns every outcome — success, a
rejected key, a rate limit, an upstream error, a timeout, a refused connection — into a
:class:`ConnectionResult` with a one-line, actionable message. Network problems never
raise, and no message ever contains the API key: the key is registered with the secret
registry and every message passes through :func:`~modelyard.security.redaction.redact`.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from yarl import URL

from modelyard.gateway.adapters.wire import UpstreamAnswer, send
from modelyard.gateway.http import UpstreamHttp
from modelyard.gateway.upstream_errors import UpstreamError
from modelyard.providers.kinds import ConnectionCheck, ProviderKind, ProviderKindSpec, kind_info
from modelyard.security.redaction import MASK, redact, secret_registry

__all__ = ["MAX_MODELS", "ConnectionResult", "check_connection"]

#: At most this many model ids are kept in a result.
MAX_MODELS = 20
#: At most this many characters of an upstream body are quoted in a message.
_SNIPPET_LENGTH = 200
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class ConnectionResult:
    """The outcome of a connection check."""

    ok: bool
    #: One human-readable line; never contains the key.
    message: str
    #: The upstream HTTP status, ``None`` when no response came back.
    status_code: int | None
    latency_ms: float
    #: Model ids the provider reported (at most the first :data:`MAX_MODELS`).
    models: tuple[str, ...] = ()


class _BadBody(Exception):
    """A 2xx response whose body is not what the provider's wire format promises."""


async def check_connection(
    *,
    kind: ProviderKind | str,
    base_url: str | None,
    api_key: str | None,
    organization: str | None = None,
    http: UpstreamHttp,
    timeout: float = 10.0,
) -> ConnectionResult:
    """Make the kind's cheap authenticated call (its spec's :class:`ConnectionCheck`) over
    the upstream session and report whether it worked."""
    try:
        info = kind_info(kind)
    except ValueError:
        return _failure(f"Unknown provider kind {str(kind)!r}.", api_key)
    key = api_key.strip() if api_key else None
    key = key or None
    secret_registry.add(key)

    if info.check is None:
        return ConnectionResult(
            True, f"{info.label} run in-process; nothing to connect to.", None, 0
        )

    base = (base_url or "").strip().rstrip("/") or (info.default_base_url or "").rstrip("/")
    if not base:
        return _failure(
            f"{info.label} needs a base URL: set the provider's base URL (for example "
            "http://host:8000/v1) and test again.",
            key,
        )
    if key is None and not info.key_optional:
        return _failure(_missing_key_message(info), key)

    url = f"{base}{info.check.path}"
    invalid = _invalid_url(url)
    if invalid:
        return _failure(f"Invalid base URL {base!r}: {invalid}", key)
    target = _host(url)
    headers = {"accept": "application/json", **info.auth(key, organization)}
    started = time.perf_counter()
    try:
        answer = await send(http, "GET", url, headers=headers, timeout=timeout)
    except UpstreamError as error:
        if error.category == "timeout":
            message = (
                f"Timed out after {timeout:g} s waiting for {target}; the provider is slow or "
                "unreachable, try again or check the base URL."
            )
        else:
            message = (
                f"Could not connect to {target}: {error.message}; check the base URL and that "
                "the server is running."
            )
        return _failure(message, key, latency_ms=_elapsed(started))
    return _interpret(info, info.check, answer, target, key, _elapsed(started))


def _invalid_url(url: str) -> str | None:
    """Why ``url`` cannot be called, or ``None``."""
    try:
        parsed = URL(url)
    except ValueError as exc:
        return _reason(exc)
    if parsed.scheme not in ("http", "https"):
        return f"the URL must start with http:// or https:// (got {parsed.scheme or 'none'!r})"
    if not parsed.host:
        return "the URL names no host"
    return None


def _interpret(
    info: ProviderKindSpec,
    check: ConnectionCheck,
    answer: UpstreamAnswer,
    target: str,
    key: str | None,
    latency: float,
) -> ConnectionResult:
    """Turn the provider's answer into a result."""
    status = answer.status

    def fail(message: str) -> ConnectionResult:
        return _failure(message, key, status_code=status, latency_ms=latency)

    if 200 <= status < 300:
        try:
            message, models = _success(check, answer)
        except _BadBody as exc:
            return fail(f"Unexpected response from {target} (HTTP {status}): {exc}")
        return ConnectionResult(True, _clean(message, key), status, latency, models)

    detail = _error_detail(answer, key)
    suffix = f" Provider said: {detail}" if detail else ""
    if status in (401, 403) or _bad_key(check, answer):
        label = "Forbidden" if status == 403 else "Unauthorized"
        if key is None:
            return fail(
                f"{label} (HTTP {status}): {info.label} requires an API key; add one and test "
                f"again.{suffix}"
            )
        return fail(
            f"{label} (HTTP {status}): the provider rejected the API key; check or replace it."
            f"{suffix}"
        )
    if status == 429:
        retry = answer.headers.get("retry-after")
        wait = f" (retry after {retry} s)" if retry and retry.isdigit() else ""
        return fail(
            f"Rate limited (HTTP 429): the key is probably valid but the provider is throttling "
            f"requests or the quota is used up; try again later{wait}.{suffix}"
        )
    snippet = _snippet(_text(answer), key) or "(empty body)"
    hint = "; check the base URL" if status in (404, 405) else ""
    return fail(f"HTTP {status} from {target}: {snippet}{hint}")


def _text(answer: UpstreamAnswer) -> str:
    return answer.body.decode(errors="replace")


def _success(check: ConnectionCheck, answer: UpstreamAnswer) -> tuple[str, tuple[str, ...]]:
    """The message and model ids of a 2xx answer; raises :class:`_BadBody`."""
    if check.listing == "message":
        body = _json(answer, required=False)
        said = body.get("message") if isinstance(body, dict) else None
        if isinstance(said, str) and said.strip():
            return f"Connected (HTTP {answer.status}): {said}", ()
        return f"Connected (HTTP {answer.status}).", ()

    body = _json(answer, required=True)
    more = False
    if check.listing == "models":
        if not isinstance(body, dict) or not isinstance(body.get("models"), list):
            raise _BadBody('expected a JSON object with a "models" list')
        entries: list[Any] = body["models"]
        ids = [_model_id(entry, "name") for entry in entries]
        ids = [name.removeprefix("models/") if name else name for name in ids]
        more = bool(body.get("nextPageToken"))
    else:
        if isinstance(body, list) and check.bare_list:
            entries = body
        elif isinstance(body, dict) and isinstance(body.get("data"), list):
            entries = body["data"]
            more = body.get("has_more") is True
        else:
            raise _BadBody('expected a JSON object with a "data" list of models')
        ids = [_model_id(entry, "id") for entry in entries]
    models = tuple(model for model in ids if model)[:MAX_MODELS]
    count = len(entries)
    if count == 0:
        return "Connected, but the provider lists no models.", models
    noun = "model" if count == 1 and not more else "models"
    plus = "+" if more else ""
    return f"Connected: {count}{plus} {noun} available", models


def _json(answer: UpstreamAnswer, *, required: bool) -> Any:
    """The answer's JSON body (``None`` when it is empty and not ``required``)."""
    if not answer.body.strip():
        if required:
            raise _BadBody("the body is empty, expected JSON")
        return None
    try:
        return json.loads(answer.body)
    except ValueError:
        if not required:
            return None
        kind = answer.headers.get("content-type", "unknown content type").split(";")[0]
        raise _BadBody(f"the body is not valid JSON ({kind}); check the base URL") from None


def _model_id(entry: Any, field: str) -> str | None:
    if isinstance(entry, dict):
        value = entry.get(field)
        return value if isinstance(value, str) else None
    return entry if isinstance(entry, str) else None


def _bad_key(check: ConnectionCheck, answer: UpstreamAnswer) -> bool:
    """An HTTP 400 that means a rejected key (Google's ``API_KEY_INVALID``)."""
    if not check.bad_key_markers or answer.status != 400:
        return False
    text = _text(answer)
    return any(marker in text for marker in check.bad_key_markers)


def _error_detail(answer: UpstreamAnswer, key: str | None) -> str:
    """The provider's own error message, from the OpenAI, Anthropic or Google error shape."""
    try:
        body = json.loads(answer.body)
    except ValueError:
        return ""
    message: Any = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = error.get("message")
        elif isinstance(error, str):
            message = error
        if message is None:
            message = body.get("message") or body.get("detail")
    return _snippet(message, key) if isinstance(message, str) else ""


def _missing_key_message(info: ProviderKindSpec) -> str:
    where = "add one in the provider settings"
    if info.env_vars:
        where += f" or set {info.env_vars[0]} in the server environment"
    create = f" (create a key at {info.key_url})" if info.key_url else ""
    return f"No API key for {info.label}: {where}{create}, then test again."


def _host(url: str) -> str:
    parsed = URL(url)
    if not parsed.host:
        return url
    return f"{parsed.host}:{parsed.explicit_port}" if parsed.explicit_port else parsed.host


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


def _elapsed(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _snippet(text: str, key: str | None) -> str:
    """The first characters of ``text`` on one line, with secrets masked."""
    masked = _clean(text, key)
    if len(masked) > _SNIPPET_LENGTH:
        return masked[:_SNIPPET_LENGTH].rstrip() + "…"
    return masked


def _clean(text: str, key: str | None) -> str:
    """``text`` on one line, with the key and every key-shaped string masked."""
    if key and len(key) >= 4:
        text = text.replace(key, MASK)
    return _WHITESPACE.sub(" ", redact(text)).strip()


def _failure(
    message: str,
    key: str | None,
    *,
    status_code: int | None = None,
    latency_ms: float = 0.0,
) -> ConnectionResult:
    return ConnectionResult(False, _clean(message, key), status_code, latency_ms)
