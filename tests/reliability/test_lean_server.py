"""A server with no local model in use loads no ML library: after start-up, the models
list and a chat answered by a provider, no native library of torch, tokenizers,
safetensors or scikit-learn is mapped into the process (read from ``/proc``); after an
embedding from the local model, torch is."""

from __future__ import annotations

from pathlib import Path

import httpx

from modelyard.config import Settings
from tests.fakes.openai_chat import ChatOpenAI
from tests.reliability.scenario import UPSTREAM_KEY, make_accounts
from tests.reliability.server import ServerProcess, server_env

HEAVY = ("torch", "tokenizers", "safetensors", "sklearn", "scipy")


def _mapped_heavy(pid: int) -> set[str]:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {name for name in HEAVY if f"site-packages/{name}" in maps}


def test_no_ml_library_is_loaded_without_a_local_model(settings: Settings, tmp_path: Path) -> None:
    accounts = make_accounts(settings)
    with (
        ChatOpenAI(keys={UPSTREAM_KEY}) as upstream,
        ServerProcess(server_env(settings), tmp_path / "server") as server,
    ):
        assert _mapped_heavy(server.pid) == set()
        staff = {"authorization": f"Bearer {accounts.staff_token}"}
        user = {"authorization": f"Bearer {accounts.user_token}"}
        with httpx.Client(base_url=server.url, timeout=30) as http:
            provider = {
                "name": "openai",
                "kind": "openai",
                "api_key": UPSTREAM_KEY,
                "base_url": upstream.base_url,
                "is_default": True,
            }
            assert http.post("/v2/admin/providers", json=provider, headers=staff).status_code == 201
            assert http.get("/v1/models", headers=user).status_code == 200
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
            assert http.post("/v1/chat/completions", json=body, headers=user).status_code == 200
            assert http.get("/").status_code in (200, 303)
        assert _mapped_heavy(server.pid) == set()
        rss_kib = next(
            int(line.split()[1])
            for line in Path(f"/proc/{server.pid}/status").read_text().splitlines()
            if line.startswith("VmRSS:")
        )
        print(f"\nidle server: {rss_kib / 1024:.0f} MiB resident")
        # The check sees them once a local model is used.
        with httpx.Client(base_url=server.url, timeout=120) as http:
            body = {"model": "local/all-MiniLM-L6-v2", "input": "hello"}
            embedded = http.post("/v1/embeddings", json=body, headers=user)
            assert embedded.status_code == 200, embedded.text
        assert "torch" in _mapped_heavy(server.pid)
