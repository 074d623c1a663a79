"""The "test connection" check: one real, cheap call that tells whether a provider key works.

:func:`check_connection` lists the provider's models (or calls the custom provider's
``/test`` endpoint) and turns every outcome — success, a rejected key, a rate limit, an
upstream error, a timeout, a refused connection — into a :class:`ConnectionResult` with a
one-line, actionable message. Network problems never raise, and no message ever contains
the API key: the key is registered with the secret registry and every message passes
through :func:`~modelyard.security.redaction.redact`.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx

from modelyard.providers.kinds import KindInfo, ProviderKind, kind_info
from modelyard.security.redaction import MASK, redact, secret_registry

__all__ = ["MAX_MODELS", "ConnectionResult", "check_connection"]

#: At most this many model ids are kept in a result.
MAX_MODELS = 20
#: At most this many characters of an upstream body are quoted in a message.
_SNIPPET_LENGTH = 200

_OPENAI_STYLE = frozenset(
    {
        ProviderKind.OPENAI,
        ProviderKind.GROQ,
        ProviderKind.HUGGINGFACE,
        ProviderKind.OPENAI_COMPATIBLE,
    }
)
_ANTHROPIC_VERSION = "2023-06-01"
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
    client: httpx.AsyncClient,
    timeout: float = 10.0,
) -> ConnectionResult:
    """Make one cheap authenticated call to the provider and report whether it worked."""
    try:
        provider = ProviderKind(kind)
    except ValueError:
        return _failure(f"Unknown provider kind {str(kind)!r}.", api_key)
    info = kind_info(provider)
    key = api_key.strip() if api_key else None
    key = key or None
    secret_registry.add(key)

    if provider is ProviderKind.LOCAL:
        return ConnectionResult(
            True, "Local models run in-process; nothing to connect to.", None, 0
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

    url, headers = _request(provider, base, key, organization)
    target = _host(url)
    started = time.perf_counter()
    try:
        response = await client.get(url, headers=headers, timeout=timeout)
    except httpx.TimeoutException:
        return _failure(
            f"Timed out after {timeout:g} s waiting for {target}; the provider is slow or "
            "unreachable, try again or check the base URL.",
            key,
            latency_ms=_elapsed(started),
        )
    except httpx.ConnectError as exc:
        return _failure(
            f"Could not connect to {target}: {_reason(exc)}; check the base URL and that the "
            "server is running.",
            key,
            latency_ms=_elapsed(started),
        )
    except httpx.UnsupportedProtocol as exc:
        return _failure(f"Invalid base URL {base!r}: {_reason(exc)}", key)
    except httpx.HTTPError as exc:
        return _failure(
            f"Request to {target} failed: {_reason(exc)}", key, latency_ms=_elapsed(started)
        )
    except httpx.InvalidURL as exc:
        return _failure(f"Invalid base URL {base!r}: {_reason(exc)}", key)
    latency = _elapsed(started)
    return _interpret(provider, info, response, target, key, latency)


def _request(
    kind: ProviderKind, base: str, key: str | None, organization: str | None
) -> tuple[str, dict[str, str]]:
    """The URL and headers of the check's request for ``kind``."""
    headers = {"Accept": "application/json"}
    if kind is ProviderKind.ANTHROPIC:
        headers["x-api-key"] = key or ""
        headers["anthropic-version"] = _ANTHROPIC_VERSION
        return f"{base}/v1/models", headers
    if kind is ProviderKind.GOOGLE:
        headers["x-goog-api-key"] = key or ""
        return f"{base}/v1beta/models", headers
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if kind is ProviderKind.CUSTOM:
        return f"{base}/test", headers
    if organization:
        headers["OpenAI-Organization"] = organization
    return f"{base}/models", headers


def _interpret(
    kind: ProviderKind,
    info: KindInfo,
    response: httpx.Response,
    target: str,
    key: str | None,
    latency: float,
) -> ConnectionResult:
    """Turn the provider's response into a result."""
    status = response.status_code

    def fail(message: str) -> ConnectionResult:
        return _failure(message, key, status_code=status, latency_ms=latency)

    if 200 <= status < 300:
        try:
            message, models = _success(kind, response)
        except _BadBody as exc:
            return fail(f"Unexpected response from {target} (HTTP {status}): {exc}")
        return ConnectionResult(True, _clean(message, key), status, latency, models)

    detail = _error_detail(response, key)
    suffix = f" Provider said: {detail}" if detail else ""
    if status in (401, 403) or _google_bad_key(kind, response):
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
        retry = response.headers.get("retry-after")
        wait = f" (retry after {retry} s)" if retry and retry.isdigit() else ""
        return fail(
            f"Rate limited (HTTP 429): the key is probably valid but the provider is throttling "
            f"requests or the quota is used up; try again later{wait}.{suffix}"
        )
    snippet = _snippet(response.text, key) or "(empty body)"
    hint = "; check the base URL" if status in (404, 405) else ""
    return fail(f"HTTP {status} from {target}: {snippet}{hint}")


def _success(kind: ProviderKind, response: httpx.Response) -> tuple[str, tuple[str, ...]]:
    """The message and model ids of a 2xx response; raises :class:`_BadBody`."""
    if kind is ProviderKind.CUSTOM:
        body = _json(response, required=False)
        said = body.get("message") if isinstance(body, dict) else None
        if isinstance(said, str) and said.strip():
            return f"Connected (HTTP {response.status_code}): {said}", ()
        return f"Connected (HTTP {response.status_code}).", ()

    body = _json(response, required=True)
    more = False
    if kind is ProviderKind.GOOGLE:
        if not isinstance(body, dict) or not isinstance(body.get("models"), list):
            raise _BadBody('expected a JSON object with a "models" list')
        entries: list[Any] = body["models"]
        ids = [_model_id(entry, "name") for entry in entries]
        ids = [name.removeprefix("models/") if name else name for name in ids]
        more = bool(body.get("nextPageToken"))
    else:
        if isinstance(body, list) and kind is ProviderKind.OPENAI_COMPATIBLE:
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


def _json(response: httpx.Response, *, required: bool) -> Any:
    """The response's JSON body (``None`` when it is empty and not ``required``)."""
    if not response.content.strip():
        if required:
            raise _BadBody("the body is empty, expected JSON")
        return None
    try:
        return json.loads(response.content)
    except ValueError:
        if not required:
            return None
        kind = response.headers.get("content-type", "unknown content type").split(";")[0]
        raise _BadBody(f"the body is not valid JSON ({kind}); check the base URL") from None


def _model_id(entry: Any, field: str) -> str | None:
    if isinstance(entry, dict):
        value = entry.get(field)
        return value if isinstance(value, str) else None
    return entry if isinstance(entry, str) else None


def _google_bad_key(kind: ProviderKind, response: httpx.Response) -> bool:
    """Gemini answers an invalid key with HTTP 400 and reason ``API_KEY_INVALID``."""
    if kind is not ProviderKind.GOOGLE or response.status_code != 400:
        return False
    text = response.text
    return "API_KEY_INVALID" in text or "API key not valid" in text


def _error_detail(response: httpx.Response, key: str | None) -> str:
    """The provider's own error message, from the OpenAI, Anthropic or Google error shape."""
    try:
        body = json.loads(response.content)
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


def _missing_key_message(info: KindInfo) -> str:
    where = "add one in the provider settings"
    if info.env_vars:
        where += f" or set {info.env_vars[0]} in the server environment"
    create = f" (create a key at {info.key_url})" if info.key_url else ""
    return f"No API key for {info.label}: {where}{create}, then test again."


def _host(url: str) -> str:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return url
    if not parsed.host:
        return url
    return f"{parsed.host}:{parsed.port}" if parsed.port else parsed.host


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
