"""The fake Hugging Face direct inference API: ``POST /models/{model}``, text generation.

It behaves like a base model behind the text-generation server: it writes
``"Echo: <last User: line>"`` and then goes on with the dialogue (``continuation``) unless
a stop sequence ends it — the stop sequence is kept in the text, as the server does.
``max_new_tokens`` cuts the text to that many words (``finish_reason: length``). The
server's validation errors are reproduced (422: ``temperature`` must be strictly
positive, ``top_p`` below 1, at most 4 stop sequences). ``loading`` answers every request
with the 503 of a model that is still loading. With ``"stream": true`` the answer comes as
SSE token events, the last with ``generated_text`` and ``details``.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from tests.fakes.providers import FakeProvider

__all__ = ["FakeHfInference"]


class FakeHfInference(FakeProvider):
    """Hugging Face's serverless inference API under ``/models``."""

    default_prefix = ""
    default_models = ("HuggingFaceH4/zephyr-7b-beta", "mistralai/Mistral-7B-Instruct-v0.3")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.loading = False
        self.continuation = "\nUser: and what else?"

    def routes(self) -> list[BaseRoute]:
        return [Route("/models/{model:path}", self.generate, methods=["POST"])]

    def error(self, status: int, message: str, *, code: str | None = None) -> Response:
        body: dict[str, Any] = {"error": message}
        if code is not None:
            body["error_type"] = code
        return JSONResponse(body, status_code=status)

    def invalid_key(self, request: Request, key: str) -> Response:
        return self.error(401, "Invalid credentials in Authorization header")

    def validate(self, parameters: dict[str, Any]) -> str | None:
        temperature = parameters.get("temperature")
        if temperature is not None and temperature <= 0:
            return "`temperature` must be strictly positive"
        top_p = parameters.get("top_p")
        if top_p is not None and not 0 < top_p < 1:
            return "`top_p` must be > 0.0 and < 1.0"
        if len(parameters.get("stop", [])) > 4:
            return "`stop` supports up to 4 stop sequences"
        return None

    def generated(self, prompt: str, parameters: dict[str, Any]) -> tuple[str, str]:
        """(generated text, finish reason) for ``prompt``."""
        users = [line[len("User: ") :] for line in prompt.split("\n") if line.startswith("User: ")]
        text = f" Echo: {users[-1] if users else ''}{self.continuation}"
        reason = "eos_token"
        stops = [(text.find(stop), stop) for stop in parameters.get("stop", []) if stop in text]
        if stops:
            at, stop = min(stops)
            text, reason = text[: at + len(stop)], "stop_sequence"
        limit = parameters.get("max_new_tokens")
        if limit is not None and len(text.split()) > limit:
            text, reason = " " + " ".join(text.split()[:limit]), "length"
        return text, reason

    async def generate(self, request: Request) -> Response:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        model = request.path_params["model"]
        if model not in self.models:
            return self.error(404, f"Model {model} does not exist")
        if self.loading:
            return JSONResponse(
                {"error": f"Model {model} is currently loading", "estimated_time": 20.0},
                status_code=503,
            )
        body = await request.json()
        parameters = body.get("parameters", {})
        problem = self.validate(parameters)
        if problem is not None:
            return self.error(422, f"Input validation error: {problem}", code="validation")
        text, reason = self.generated(body["inputs"], parameters)
        if body.get("stream"):
            return StreamingResponse(self._stream(text, reason), media_type="text/event-stream")
        return JSONResponse([{"generated_text": text}])

    async def _stream(self, text: str, reason: str) -> AsyncIterator[bytes]:
        tokens = [{"text": piece, "special": False} for piece in re.findall(r"\s*\S+", text)]
        if reason == "eos_token":
            tokens.append({"text": "</s>", "special": True})
        for position, token in enumerate(tokens):
            last = position == len(tokens) - 1
            event = {
                "index": position + 1,
                "token": {"id": position, "logprob": -0.5, **token},
                "generated_text": text if last else None,
                "details": (
                    {"finish_reason": reason, "generated_tokens": len(tokens), "seed": None}
                    if last
                    else None
                ),
            }
            yield f"data:{json.dumps(event)}\n\n".encode()
