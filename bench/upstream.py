"""A fast fake OpenAI upstream for benchmarks (aiohttp, one process, no checks).

``python -m bench.upstream PORT [STATUS]`` serves ``POST /v1/chat/completions`` (JSON, or SSE with
16 content chunks when ``stream`` is true) and ``GET /v1/models``; with a STATUS (e.g.
429) every chat request gets that error instead, with ``Retry-After: 3600``.
"""

from __future__ import annotations

import json
import sys

from aiohttp import web

STREAM_CHUNKS = 16

COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1732500000,
        "model": "bench-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "The quick brown fox jumps."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18},
    }
).encode()


def _chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1732500000,
        "model": "bench-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


STREAM = (
    _chunk({"role": "assistant", "content": ""})
    + b"".join(_chunk({"content": f"word{i} "}) for i in range(STREAM_CHUNKS))
    + _chunk({}, "stop")
    + b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1732500000,'
    b'"model":"bench-model","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":16,'
    b'"total_tokens":28}}\n\n' + b"data: [DONE]\n\n"
)


async def chat(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    status = request.app["status"]
    if status != 200:
        return web.json_response(
            {"error": {"message": "rate limited", "type": "requests"}},
            status=status,
            headers={"retry-after": "3600"},
        )
    if b'"stream": true' in body or b'"stream":true' in body:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        await response.write(STREAM)
        await response.write_eof()
        return response
    return web.Response(body=COMPLETION, content_type="application/json")


async def models(_request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [{"id": "bench-model", "object": "model"}]})


def main() -> None:
    app = web.Application()
    app["status"] = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
