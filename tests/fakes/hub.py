"""A fake Hugging Face Hub on 127.0.0.1: the ``resolve`` file routes and the model-info
API that ``huggingface_hub`` calls, with public, private and gated repositories.

As on the real Hub: an unknown repository is a 404 ``RepoNotFound``; a private one without
a valid token a 401 (also ``RepoNotFound``, so existence does not leak); a gated one
without access a 403 ``GatedRepo``; a missing file a 404 ``EntryNotFound``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tests.fakes.providers import FakeProvider

__all__ = ["FakeHub", "HubRepo"]

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HubRepo:
    files: dict[str, bytes] = field(default_factory=dict)
    private: bool = False
    gated: bool = False

    @classmethod
    def with_config(cls, config: dict[str, Any], **kwargs: Any) -> HubRepo:
        return cls(files={"config.json": json.dumps(config).encode()}, **kwargs)


class FakeHub(FakeProvider):
    """``repos`` maps ``org/name`` to a :class:`HubRepo`; ``keys`` are tokens with access."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.repos: dict[str, HubRepo] = {}

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/models/{org}/{name}/revision/{revision}", self.model_info, methods=["GET"]),
            Route("/api/models/{org}/{name}/tree/{revision}", self.tree, methods=["GET"]),
            Route(
                "/{org}/{name}/resolve/{revision}/{filename:path}",
                self.resolve,
                methods=["GET", "HEAD"],
            ),
        ]

    def _denied(self, request: Request, repo_id: str) -> Response | None:
        repo = self.repos.get(repo_id)
        if repo is None:
            return _error(404, "RepoNotFound", "Repository not found")
        token = (request.headers.get("authorization") or "").removeprefix("Bearer ").strip()
        if (repo.private or repo.gated) and token not in self.keys:
            if repo.gated:
                return _error(403, "GatedRepo", "Access to this model is restricted")
            return _error(401, "RepoNotFound", "Invalid credentials in Authorization header")
        return None

    async def resolve(self, request: Request) -> Response:
        repo_id = f"{request.path_params['org']}/{request.path_params['name']}"
        denied = self._denied(request, repo_id)
        if denied is not None:
            return denied
        content = self.repos[repo_id].files.get(request.path_params["filename"])
        if content is None:
            return _error(404, "EntryNotFound", "Entry not found")
        headers = {
            "X-Repo-Commit": COMMIT,
            "ETag": f'"{hashlib.sha256(content).hexdigest()}"',
            "Content-Length": str(len(content)),
        }
        body = b"" if request.method == "HEAD" else content
        return Response(body, headers=headers, media_type="application/octet-stream")

    async def model_info(self, request: Request) -> Response:
        repo_id = f"{request.path_params['org']}/{request.path_params['name']}"
        denied = self._denied(request, repo_id)
        if denied is not None:
            return denied
        siblings = [{"rfilename": name} for name in self.repos[repo_id].files]
        return JSONResponse(
            {
                "id": repo_id,
                "modelId": repo_id,
                "sha": COMMIT,
                "private": False,
                "siblings": siblings,
            }
        )

    async def tree(self, request: Request) -> Response:
        repo_id = f"{request.path_params['org']}/{request.path_params['name']}"
        denied = self._denied(request, repo_id)
        if denied is not None:
            return denied
        entries = [
            {
                "type": "file",
                "path": name,
                "size": len(content),
                "oid": hashlib.sha1(content, usedforsecurity=False).hexdigest(),
            }
            for name, content in self.repos[repo_id].files.items()
        ]
        return JSONResponse(entries)


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers={"X-Error-Code": code})
