"""Fake LLM providers speaking the real wire formats, served over HTTP on 127.0.0.1.

Each fake is a state object plus a Starlette app built from it; tests change the state
while the server runs (it is read on every request)::

    with FakeOpenAI(keys={"sk-test-0123456789"}) as fake:
        fake.base_url          # http://127.0.0.1:PORT/v1
        fake.delay = 2         # every request now waits 2 s first (to trigger timeouts)
        fake.gate.clear()      # every request now waits until fake.gate.set()
        fake.status = 500      # every request now fails, in the provider's error shape
        fake.requests[-1]      # RecordedRequest(method, path, query, headers, body, raw_path)

Extend a fake by subclassing it and adding routes (chat completions, messages, streaming)::

    class ChattyOpenAI(FakeOpenAI):
        def routes(self) -> list[BaseRoute]:
            return [*super().routes(), Route("/chat/completions", self.chat, methods=["POST"])]

Routes are relative to ``prefix`` (``/v1`` for OpenAI, ``/openai/v1`` for Groq), and a
route calls :meth:`FakeProvider.authenticate` to check the key the provider's way.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.fakes.server import FakeServer

__all__ = [
    "FakeAnthropic",
    "FakeCustom",
    "FakeGemini",
    "FakeGroq",
    "FakeHuggingFace",
    "FakeOpenAI",
    "FakeProvider",
    "RecordedRequest",
]

_CREATED = 1_715_367_049


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received, before any check."""

    method: str
    #: The full path, prefix included (``/v1/models``).
    path: str
    #: The raw query string (``pageSize=10``).
    query: str
    #: Header names lowercased; repeated headers joined with ``", "``.
    headers: dict[str, str]
    body: bytes
    #: The path exactly as it came on the request line (percent-escapes kept, dot
    #: segments not removed): what a hostile model id would have changed.
    raw_path: str = ""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))

    def json(self) -> Any:
        return json.loads(self.body)


class FakeProvider:
    """The state every fake shares, the recording/delay/forced-status layer, and serving.

    ``keys``: the keys the fake accepts. ``models``: the model ids it lists.
    ``delay``: seconds every request waits before it is answered; ``gate``: an event that,
    while cleared, holds every request (recorded) until it is set. ``status``: when set,
    every request is answered with this status — ``body`` when given (a ``str``/``bytes``
    is sent raw, anything else as JSON), else the provider's own error body for it.
    ``headers``: extra headers on those forced responses. ``echo_key``: whether error
    messages quote the rejected key in full (stricter than real providers, which mask it,
    so tests prove the client masks it). ``prefix``: where the routes are mounted.
    """

    default_prefix: ClassVar[str] = ""
    default_models: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        *,
        keys: Iterable[str] = (),
        models: Iterable[str] | None = None,
        delay: float = 0.0,
        status: int | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        echo_key: bool = True,
        prefix: str | None = None,
    ) -> None:
        self.keys: set[str] = set(keys)
        self.models: list[str] = list(self.default_models if models is None else models)
        self.delay = delay
        self.gate = threading.Event()
        self.gate.set()
        self.status = status
        self.body = body
        self.headers: dict[str, str] = dict(headers or {})
        self.echo_key = echo_key
        self.prefix = (self.default_prefix if prefix is None else prefix).rstrip("/")
        self.requests: list[RecordedRequest] = []
        self.server: FakeServer | None = None
        #: When set, :attr:`status` is forced on this many more requests only.
        self.fail_times: int | None = None
        self._lock = threading.Lock()

    # -- what a provider defines --------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        """The provider's routes, relative to :attr:`prefix`."""
        return []

    def error(self, status: int, message: str, *, code: str | None = None) -> Response:
        """An error response in the provider's shape."""
        return JSONResponse({"error": {"message": message, "code": code}}, status_code=status)

    def presented_key(self, request: Request) -> str | None:
        """The key the request carries, where this provider expects it."""
        return _bearer(request)

    def missing_key(self, request: Request) -> Response:
        return self.error(401, "No API key provided.")

    def invalid_key(self, request: Request, key: str) -> Response:
        shown = key if self.echo_key else "****"
        return self.error(401, f"Invalid API key: {shown}")

    def authenticate(self, request: Request) -> Response | None:
        """``None`` when the request carries a valid key, else the provider's error."""
        key = self.presented_key(request)
        if not key:
            return self.missing_key(request)
        if key not in self.keys:
            return self.invalid_key(request, key)
        return None

    def default_error_message(self, status: int) -> str:
        return {
            400: "Bad request.",
            401: "Unauthorized.",
            403: "Forbidden.",
            404: "Not found.",
            429: "Rate limit exceeded, slow down.",
            500: "The server had an error while processing your request.",
            502: "Bad gateway.",
            503: "The service is temporarily unavailable.",
        }.get(status, f"Error {status}.")

    # -- the app ------------------------------------------------------------------------

    def app(self) -> ASGIApp:
        """The Starlette app: the routes under :attr:`prefix`, behind the recorder."""
        routes = self.routes()
        if self.prefix:
            routes = [Mount(self.prefix, routes=routes)]
        app = Starlette(routes=routes, exception_handlers={HTTPException: self._http_error})
        return _Recorder(self, app)

    def forced_response(self) -> Response | None:
        """The response every request gets while :attr:`status` is set (only the next
        :attr:`fail_times` requests, when that is set)."""
        with self._lock:
            status = self.status
            if status is None:
                return None
            if self.fail_times is not None:
                self.fail_times -= 1
                if self.fail_times <= 0:
                    self.status, self.fail_times = None, None
        body = self.body
        headers = dict(self.headers)
        if status == 429:
            headers.setdefault("retry-after", "1")
        if body is None:
            response = self.error(status, self.default_error_message(status))
            response.headers.update(headers)
            return response
        if isinstance(body, str | bytes):
            headers.setdefault("content-type", "text/plain; charset=utf-8")
            return Response(body, status_code=status, headers=headers)
        return JSONResponse(body, status_code=status, headers=headers)

    def fail_with(
        self,
        status: int | None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        times: int | None = None,
    ) -> None:
        """Answer every request with ``status`` from now on (``None`` to stop), or only the
        next ``times`` requests."""
        with self._lock:
            self.status, self.body, self.headers = status, body, dict(headers or {})
            self.fail_times = times

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return self.error(404, f"Unknown path: {request.method} {request.url.path}")
        if exc.status_code == 405:
            return self.error(405, f"Method not allowed: {request.method} {request.url.path}")
        return self.error(exc.status_code, str(exc.detail))

    # -- recording ----------------------------------------------------------------------

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self.requests:
                raise AssertionError("the fake provider received no request")
            return self.requests[-1]

    def reset(self) -> None:
        """Forget the received requests and stop forcing a status or a delay."""
        with self._lock:
            self.requests.clear()
        self.delay = 0.0
        self.gate.set()
        self.fail_with(None)

    # -- serving ------------------------------------------------------------------------

    def start(self) -> Self:
        if self.server is not None and self.server.running:
            raise RuntimeError("the fake provider is already served")
        self.server = FakeServer(self.app()).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    @property
    def url(self) -> str:
        """The server's root URL (``http://127.0.0.1:PORT``)."""
        if self.server is None:
            raise RuntimeError("the fake provider is not served")
        return self.server.url

    @property
    def base_url(self) -> str:
        """The URL a client is configured with: the root URL plus :attr:`prefix`."""
        return self.url + self.prefix

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class _Recorder:
    """ASGI layer: records each request, waits :attr:`delay`, applies a forced status."""

    def __init__(self, provider: FakeProvider, app: ASGIApp) -> None:
        self.provider = provider
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        self.provider.record(
            RecordedRequest(
                method=scope["method"],
                path=scope["path"],
                query=scope.get("query_string", b"").decode("latin-1"),
                headers=headers,
                body=body,
                raw_path=(scope.get("raw_path") or scope["path"].encode()).decode("latin-1"),
            )
        )
        if self.provider.delay > 0 and not await _wait_unless_gone(receive, self.provider.delay):
            return  # the client gave up (timed out) during the delay: nobody to answer
        while not self.provider.gate.is_set():
            if not await _wait_unless_gone(receive, 0.01):
                return
        forced = self.provider.forced_response()
        if forced is not None:
            await forced(scope, receive, send)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _wait_unless_gone(receive: Receive, seconds: float) -> bool:
    """Wait ``seconds``; ``False`` as soon as the client disconnects instead."""
    disconnect = asyncio.ensure_future(receive())
    done, _ = await asyncio.wait({disconnect}, timeout=seconds)
    if done:
        message: Message = disconnect.result()
        return str(message["type"]) != "http.disconnect"
    disconnect.cancel()
    return True


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


# -- OpenAI and OpenAI-compatible -------------------------------------------------------


class FakeOpenAI(FakeProvider):
    """OpenAI's API: ``GET {prefix}/models`` and ``GET {prefix}/models/{id}``, Bearer keys.

    ``organizations``: when given, an ``OpenAI-Organization`` header outside it is refused.
    """

    default_prefix = "/v1"
    default_models: ClassVar[tuple[str, ...]] = (
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "o3-mini",
        "text-embedding-3-small",
    )
    owned_by: ClassVar[str] = "openai"

    def __init__(self, *, organizations: Iterable[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.organizations = None if organizations is None else set(organizations)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/models", self.list_models, methods=["GET"]),
            Route("/models/{model:path}", self.get_model, methods=["GET"]),
        ]

    def error(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        error_type: str | None = None,
    ) -> Response:
        if error_type is None:
            error_type = {429: "requests", 500: "server_error", 503: "server_error"}.get(
                status, "invalid_request_error"
            )
        if code is None and status == 429:
            code = "rate_limit_exceeded"
        body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
        return JSONResponse(body, status_code=status)

    def missing_key(self, request: Request) -> Response:
        return self.error(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
            "or as the password field (with blank username) if you're accessing the API "
            "from your browser and are prompted for a username and password. You can obtain "
            "an API key from https://platform.openai.com/account/api-keys.",
        )

    def invalid_key(self, request: Request, key: str) -> Response:
        shown = key if self.echo_key else f"{key[:3]}****{key[-4:]}"
        return self.error(
            401,
            f"Incorrect API key provided: {shown}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )

    def default_error_message(self, status: int) -> str:
        if status == 500:
            return "The server had an error while processing your request. Sorry about that!"
        if status == 429:
            return "Rate limit reached for requests. Please try again in 1s."
        return super().default_error_message(status)

    def authenticate(self, request: Request) -> Response | None:
        denied = super().authenticate(request)
        if denied is not None:
            return denied
        organization = request.headers.get("openai-organization")
        if organization and self.organizations is not None:
            if organization not in self.organizations:
                return self.error(
                    401, f"No such organization: {organization}.", code="no_such_organization"
                )
        return None

    def model_object(self, model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": _CREATED, "owned_by": self.owned_by}

    async def list_models(self, request: Request) -> Response:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        data = [self.model_object(model) for model in self.models]
        return JSONResponse({"object": "list", "data": data})

    async def get_model(self, request: Request) -> Response:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        model = request.path_params["model"]
        if model not in self.models:
            return self.error(
                404,
                f"The model '{model}' does not exist or you do not have access to it.",
                code="model_not_found",
            )
        return JSONResponse(self.model_object(model))


class FakeGroq(FakeOpenAI):
    """Groq: OpenAI's wire format under ``/openai/v1``."""

    default_prefix = "/openai/v1"
    default_models = ("llama-3.3-70b-versatile", "llama-3.1-8b-instant", "openai/gpt-oss-120b")
    owned_by = "Meta"


class FakeHuggingFace(FakeOpenAI):
    """The Hugging Face router: OpenAI's wire format under ``/v1``."""

    default_prefix = "/v1"
    default_models = ("meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen2.5-72B-Instruct")
    owned_by = "huggingface"


# -- Anthropic --------------------------------------------------------------------------

_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


class FakeAnthropic(FakeProvider):
    """Anthropic's API: ``GET /v1/models`` with ``x-api-key`` and ``anthropic-version``."""

    default_prefix = ""
    default_models = (
        "claude-opus-4-1-20250805",
        "claude-sonnet-4-20250514",
        "claude-3-5-haiku-20241022",
    )

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/models", self.list_models, methods=["GET"]),
            Route("/v1/models/{model:path}", self.get_model, methods=["GET"]),
        ]

    def error(self, status: int, message: str, *, code: str | None = None) -> Response:
        kind = code or _ANTHROPIC_TYPES.get(status, "api_error")
        body = {"type": "error", "error": {"type": kind, "message": message}}
        return JSONResponse(body, status_code=status, headers={"request-id": "req_fake"})

    def presented_key(self, request: Request) -> str | None:
        return request.headers.get("x-api-key") or None

    def missing_key(self, request: Request) -> Response:
        return self.error(401, "x-api-key header is required")

    def invalid_key(self, request: Request, key: str) -> Response:
        return self.error(401, "invalid x-api-key")

    def default_error_message(self, status: int) -> str:
        return {529: "Overloaded", 500: "Internal server error"}.get(
            status, super().default_error_message(status)
        )

    def authenticate(self, request: Request) -> Response | None:
        denied = super().authenticate(request)
        if denied is not None:
            return denied
        if not request.headers.get("anthropic-version"):
            return self.error(400, "anthropic-version: header is required")
        return None

    def model_object(self, model: str) -> dict[str, Any]:
        name = model.removesuffix(model[-9:]) if model[-8:].isdigit() else model
        display = " ".join(part.capitalize() for part in name.split("-"))
        return {
            "type": "model",
            "id": model,
            "display_name": display,
            "created_at": "2025-05-22T00:00:00Z",
        }

    async def list_models(self, request: Request) -> Response:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        try:
            limit = int(request.query_params.get("limit", "20"))
        except ValueError:
            return self.error(400, "limit: Input should be a valid integer")
        models = list(self.models)
        after = request.query_params.get("after_id")
        if after in models:
            models = models[models.index(after) + 1 :]
        page = models[:limit]
        return JSONResponse(
            {
                "data": [self.model_object(model) for model in page],
                "has_more": len(models) > limit,
                "first_id": page[0] if page else None,
                "last_id": page[-1] if page else None,
            }
        )

    async def get_model(self, request: Request) -> Response:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        model = request.path_params["model"]
        if model not in self.models:
            return self.error(404, f"model: {model}")
        return JSONResponse(self.model_object(model))


# -- Google Gemini ----------------------------------------------------------------------

_GOOGLE_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class FakeGemini(FakeProvider):
    """The Gemini API: ``GET /v1beta/models`` with ``x-goog-api-key`` (or ``?key=``)."""

    default_prefix = ""
    default_models = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash")

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1beta/models", self.list_models, methods=["GET"]),
            Route("/v1beta/models/{model:path}", self.get_model, methods=["GET"]),
        ]

    def error(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> Response:
        error: dict[str, Any] = {
            "code": status,
            "message": message,
            "status": code or _GOOGLE_STATUSES.get(status, "UNKNOWN"),
        }
        if details is not None:
            error["details"] = details
        return JSONResponse({"error": error}, status_code=status)

    def presented_key(self, request: Request) -> str | None:
        return request.headers.get("x-goog-api-key") or request.query_params.get("key") or None

    def missing_key(self, request: Request) -> Response:
        return self.error(
            403,
            "Method doesn't allow unregistered callers (callers without established "
            "identity). Please use API Key or other form of API consumer identity to call "
            "this API.",
        )

    def invalid_key(self, request: Request, key: str) -> Response:
        return self.error(
            400,
            "API key not valid. Please pass a valid API key.",
            details=[
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            ],
        )

    def default_error_message(self, status: int) -> str:
        if status == 429:
            return "Resource has been exhausted (e.g. check quota)."
        if status == 500:
            return "An internal error has occurred. Please retry or report in the forum."
        return super().default_error_message(status)

    def model_object(self, model: str) -> dict[str, Any]:
        return {
            "name": f"models/{model}",
            "version": "001",
            "displayName": " ".join(part.capitalize() for part in model.split("-")),
            "description": f"Fake {model}",
            "inputTokenLimit": 1_048_576,
            "outputTokenLimit": 65_536,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
        }

    async def list_models(self, request: Request) -> Response:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        try:
            size = int(request.query_params.get("pageSize", "50"))
            start = int(request.query_params.get("pageToken") or "0")
        except ValueError:
            return self.error(400, "Invalid pageSize or pageToken.")
        page = self.models[start : start + size]
        body: dict[str, Any] = {"models": [self.model_object(model) for model in page]}
        if start + size < len(self.models):
            body["nextPageToken"] = str(start + size)
        return JSONResponse(body)

    async def get_model(self, request: Request) -> Response:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        model = request.path_params["model"]
        if model not in self.models:
            return self.error(404, f"models/{model} is not found for API version v1beta.")
        return JSONResponse(self.model_object(model))


# -- a custom REST provider -------------------------------------------------------------


class FakeCustom(FakeProvider):
    """A custom REST provider: ``GET /test`` with a Bearer key answers ``{"status": "ok"}``."""

    default_prefix = ""

    def __init__(self, *, message: str = "pong", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.message = message

    def routes(self) -> list[BaseRoute]:
        return [Route("/test", self.test, methods=["GET"])]

    def error(self, status: int, message: str, *, code: str | None = None) -> Response:
        return JSONResponse({"status": "error", "message": message}, status_code=status)

    def missing_key(self, request: Request) -> Response:
        return self.error(401, "missing bearer token")

    def invalid_key(self, request: Request, key: str) -> Response:
        shown = key if self.echo_key else "****"
        return self.error(401, f"invalid token {shown}")

    async def test(self, request: Request) -> Response:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        return JSONResponse({"status": "ok", "message": self.message, "time": time.time()})
