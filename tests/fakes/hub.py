"""A fake Hugging Face Hub on 127.0.0.1: the ``resolve`` file routes and the model-info
API that ``huggingface_hub`` calls, with public, private and gated repositories; and the
upload side (``whoami-v2``, ``repos/create``, ``validate-yaml``, ``preupload`` and
``commit``), which stores
what a client pushes in :attr:`FakeHub.repos`. Dataset repositories (:attr:`FakeHub.datasets`)
answer the routes the ``datasets`` library reads through: the dataset info, the file tree,
``paths-info`` and ``resolve``.

As on the real Hub: an unknown repository is a 404 ``RepoNotFound``; a private one without
a valid token a 401 (also ``RepoNotFound``, so existence does not leak); a gated one
without access a 403 ``GatedRepo``; a missing file a 404 ``EntryNotFound``.
"""

from __future__ import annotations

import base64
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
        #: Dataset repositories, ``org/name`` → files (``data/train-00000-of-00001.parquet``).
        self.datasets: dict[str, HubRepo] = {}
        #: Set to make every commit fail with this status (e.g. 507 out of storage).
        self.commit_status: int | None = None

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/whoami-v2", self.whoami, methods=["GET"]),
            Route("/api/repos/create", self.create_repo, methods=["POST"]),
            Route("/api/validate-yaml", self.validate_yaml, methods=["POST"]),
            Route(
                "/api/models/{org}/{name}/preupload/{revision}", self.preupload, methods=["POST"]
            ),
            Route("/api/models/{org}/{name}/commit/{revision}", self.commit, methods=["POST"]),
            Route("/api/models/{org}/{name}/revision/{revision}", self.model_info, methods=["GET"]),
            Route("/api/models/{org}/{name}", self.model_info, methods=["GET"]),
            Route("/api/models/{org}/{name}/tree/{revision}", self.tree, methods=["GET"]),
            Route(
                "/{org}/{name}/resolve/{revision}/{filename:path}",
                self.resolve,
                methods=["GET", "HEAD"],
            ),
            *self.dataset_routes(),
        ]

    def dataset_routes(self) -> list[BaseRoute]:
        base = "/api/datasets/{org}/{name}"
        return [
            Route(base, self.dataset_info, methods=["GET"]),
            Route(f"{base}/revision/{{revision}}", self.dataset_info, methods=["GET"]),
            Route(f"{base}/tree/{{revision}}", self.dataset_tree, methods=["GET"]),
            Route(f"{base}/tree/{{revision}}/{{path:path}}", self.dataset_tree, methods=["GET"]),
            Route(f"{base}/paths-info/{{revision}}", self.dataset_paths, methods=["POST"]),
            Route(
                "/datasets/{org}/{name}/resolve/{revision}/{filename:path}",
                self.dataset_resolve,
                methods=["GET", "HEAD"],
            ),
        ]

    def _denied(
        self, request: Request, repo_id: str, store: dict[str, HubRepo] | None = None
    ) -> Response | None:
        repo = (self.repos if store is None else store).get(repo_id)
        if repo is None:
            return _error(404, "RepoNotFound", "Repository not found")
        token = (request.headers.get("authorization") or "").removeprefix("Bearer ").strip()
        if (repo.private or repo.gated) and token not in self.keys:
            if repo.gated:
                return _error(403, "GatedRepo", "Access to this model is restricted")
            return _error(401, "RepoNotFound", "Invalid credentials in Authorization header")
        return None

    async def resolve(self, request: Request) -> Response:
        return self._resolve(request, self.repos)

    async def dataset_resolve(self, request: Request) -> Response:
        return self._resolve(request, self.datasets)

    def _resolve(self, request: Request, store: dict[str, HubRepo]) -> Response:
        repo_id = f"{request.path_params['org']}/{request.path_params['name']}"
        denied = self._denied(request, repo_id, store)
        if denied is not None:
            return denied
        content = store[repo_id].files.get(request.path_params["filename"])
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
        files = self.repos[repo_id].files
        siblings: list[dict[str, Any]] = [{"rfilename": name} for name in files]
        if request.query_params.get("blobs", "").lower() == "true":  # files_metadata=True
            siblings = [{"rfilename": name, "size": len(data)} for name, data in files.items()]
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

    # Datasets ---------------------------------------------------------------------------

    async def dataset_info(self, request: Request) -> Response:
        repo_id = f"{request.path_params['org']}/{request.path_params['name']}"
        denied = self._denied(request, repo_id, self.datasets)
        if denied is not None:
            return denied
        repo = self.datasets[repo_id]
        siblings = [{"rfilename": name, "size": len(data)} for name, data in repo.files.items()]
        return JSONResponse(
            {"id": repo_id, "sha": COMMIT, "private": repo.private, "siblings": siblings}
        )

    @staticmethod
    def _entry(path: str, content: bytes) -> dict[str, Any]:
        return {
            "type": "file",
            "path": path,
            "size": len(content),
            "oid": hashlib.sha1(content, usedforsecurity=False).hexdigest(),
        }

    async def dataset_tree(self, request: Request) -> Response:
        repo_id = f"{request.path_params['org']}/{request.path_params['name']}"
        denied = self._denied(request, repo_id, self.datasets)
        if denied is not None:
            return denied
        prefix = request.path_params.get("path", "").strip("/")
        recursive = request.query_params.get("recursive", "").lower() == "true"
        entries: dict[str, dict[str, Any]] = {}
        for name, content in self.datasets[repo_id].files.items():
            if prefix and not name.startswith(f"{prefix}/"):
                continue
            rest = name[len(prefix) + 1 :] if prefix else name
            if recursive or "/" not in rest:
                entries[name] = self._entry(name, content)
            folder = rest.split("/")[0] if "/" in rest else None
            if folder is not None:
                path = f"{prefix}/{folder}" if prefix else folder
                entries.setdefault(path, {"type": "directory", "path": path, "oid": COMMIT})
            if recursive:
                parts = rest.split("/")[:-1]
                for depth in range(1, len(parts) + 1):
                    path = "/".join(([prefix] if prefix else []) + parts[:depth])
                    entries.setdefault(path, {"type": "directory", "path": path, "oid": COMMIT})
        if prefix and not entries:
            return _error(404, "EntryNotFound", "Entry not found")
        return JSONResponse(list(entries.values()))

    async def dataset_paths(self, request: Request) -> Response:
        repo_id = f"{request.path_params['org']}/{request.path_params['name']}"
        denied = self._denied(request, repo_id, self.datasets)
        if denied is not None:
            return denied
        form = await request.form()
        files = self.datasets[repo_id].files
        found: list[dict[str, Any]] = []
        for raw in form.getlist("paths"):
            path = str(raw).strip("/")
            if path in files:
                found.append(self._entry(path, files[path]))
            elif any(name.startswith(f"{path}/") for name in files):
                found.append({"type": "directory", "path": path, "oid": COMMIT})
        return JSONResponse(found)

    # Uploads ---------------------------------------------------------------------------

    def _user(self, request: Request) -> str | None:
        token = (request.headers.get("authorization") or "").removeprefix("Bearer ").strip()
        return f"user-{sorted(self.keys).index(token)}" if token in self.keys else None

    async def whoami(self, request: Request) -> Response:
        name = self._user(request)
        if name is None:
            return _error(401, "Unauthorized", "Invalid credentials in Authorization header")
        return JSONResponse({"type": "user", "name": name, "auth": {"type": "access_token"}})

    async def create_repo(self, request: Request) -> Response:
        user = self._user(request)
        if user is None:
            return _error(401, "Unauthorized", "Invalid credentials in Authorization header")
        body = await request.json()
        repo_id = f"{body.get('organization') or user}/{body['name']}"
        if repo_id.split("/")[0] != user:
            return _error(403, "Forbidden", f"You don't have the rights to create {repo_id}")
        if repo_id in self.repos:
            conflict = {
                "error": "You already created this model repo",
                "url": self._repo_url(repo_id),
            }
            return JSONResponse(conflict, status_code=409)
        private = body.get("visibility", "private" if body.get("private") else "public")
        self.repos[repo_id] = HubRepo(private=private == "private")
        return JSONResponse({"url": self._repo_url(repo_id), "name": repo_id, "id": repo_id})

    def _repo_url(self, repo_id: str) -> str:
        return f"{self.url}/{repo_id}"

    async def validate_yaml(self, request: Request) -> Response:
        content = str((await request.json()).get("content", ""))
        if content.startswith("---") and content.count("---") < 2:
            return JSONResponse({"errors": [{"message": "unclosed metadata"}]}, status_code=400)
        return JSONResponse({"errors": [], "warnings": []})

    def _writable(self, request: Request) -> tuple[str, Response | None]:
        repo_id = f"{request.path_params['org']}/{request.path_params['name']}"
        user = self._user(request)
        if user is None or repo_id not in self.repos:
            return repo_id, _error(404, "RepoNotFound", "Repository not found")
        if repo_id.split("/")[0] != user:
            return repo_id, _error(403, "Forbidden", "You don't have the rights to write here")
        return repo_id, None

    async def preupload(self, request: Request) -> Response:
        _repo_id, denied = self._writable(request)
        if denied is not None:
            return denied
        files = (await request.json()).get("files", [])
        modes = [
            {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None}
            for f in files
        ]
        return JSONResponse({"files": modes, "commitOid": COMMIT})

    async def commit(self, request: Request) -> Response:
        repo_id, denied = self._writable(request)
        if denied is not None:
            return denied
        if self.commit_status is not None:
            return _error(self.commit_status, "CommitFailed", "Storage quota exceeded")
        added: dict[str, bytes] = {}
        for line in (await request.body()).splitlines():
            entry = json.loads(line)
            if entry.get("key") == "file":
                value = entry["value"]
                added[value["path"]] = base64.b64decode(value["content"])
            elif entry.get("key") in ("lfsFile", "deletedFile", "deletedFolder"):
                return _error(400, "BadRequest", f"the fake Hub takes regular files only: {entry}")
        self.repos[repo_id].files.update(added)
        return JSONResponse(
            {
                "success": True,
                "commitOid": COMMIT,
                "commitUrl": f"{self.url}/{repo_id}/commit/{COMMIT}",
                "pullRequestUrl": None,
            }
        )


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers={"X-Error-Code": code})
