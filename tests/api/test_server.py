"""The real thing: `modelyard setup` and `modelyard serve` as processes, used over HTTP."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelyard.accounts.login_throttle import MAX_FAILURES_PER_ADDRESS
from tests.cli_helpers import invoke, isolate_cli

CANARY = "AIzaSyCANARYserverlog0123456789abcdefg"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("MODELYARD_") and key != "DATABASE_URL"
    }
    env.update(MODELYARD_DATA_DIR=str(tmp_path / "data"), MODELYARD_PORT=str(port))
    command = [sys.executable, "-m", "modelyard"]
    setup = subprocess.run(
        [*command, "setup"], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    password = re.search(r"Generated password .*: (\S+)", setup.stdout)
    assert password is not None, setup.stdout
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*command, "serve"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError(log_path.read_text()) from None
                time.sleep(0.1)
        yield base, password.group(1), log_path
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_admin_signs_in_through_the_web_form(server: tuple[str, str, Path]) -> None:
    base, password, _log = server
    with httpx.Client(base_url=base) as client:
        assert client.get("/").headers["location"] == "/login"
        page = client.get("/login")
        assert page.status_code == 200 and "Sign in" in page.text

        wrong = client.post("/login", data={"email": "admin@modelyard.local", "password": "x"})
        assert wrong.status_code == 401 and "Incorrect e-mail or password" in wrong.text

        signed_in = client.post(
            "/login", data={"email": "admin@modelyard.local", "password": password}
        )
        assert signed_in.status_code == 303
        home = client.get("/")
        assert "admin@modelyard.local" in home.text and "(staff)" in home.text
        assert client.get("/v2/users").status_code == 200
        assert client.get("/readyz").json()["status"] == "ready"


def test_secrets_in_requests_do_not_reach_the_server_log(server: tuple[str, str, Path]) -> None:
    base, _password, log_path = server
    response = httpx.get(f"{base}/v2/auth/me?key={CANARY}", headers={"Authorization": CANARY})
    assert response.status_code == 401
    assert CANARY not in response.text
    time.sleep(0.3)
    log = log_path.read_text()
    assert "/v2/auth/me?key=AIza****" in log  # the access log line is there, masked
    assert CANARY not in log


def test_sign_in_returns_to_the_admin_and_refuses_open_redirects(
    server: tuple[str, str, Path],
) -> None:
    base, password, _log = server
    with httpx.Client(base_url=base) as client:
        to_admin = client.get("/admin/")
        assert to_admin.status_code in (302, 303) and "/login?next=" in to_admin.headers["location"]
        page = client.get("/login", params={"next": "/admin/"})
        assert 'name="next" value="/admin/"' in page.text
        signed_in = client.post(
            "/login",
            data={"email": "admin@modelyard.local", "password": password, "next": "/admin/"},
        )
        assert signed_in.headers["location"] == "/admin/"
        assert client.get("/admin/").status_code == 200
    with httpx.Client(base_url=base) as client:
        evil = client.post(
            "/login",
            data={"email": "admin@modelyard.local", "password": password, "next": "//evil.example"},
        )
        assert evil.headers["location"] == "/"


def test_forwarded_for_is_not_believed_from_a_local_peer_by_default(
    server: tuple[str, str, Path],
) -> None:
    """uvicorn alone would trust 127.0.0.1's X-Forwarded-For: every guess a new "client"."""
    base, password, _log = server
    with httpx.Client(base_url=base) as client:
        for number in range(MAX_FAILURES_PER_ADDRESS):
            wrong = client.post(
                "/v2/auth/login",
                json={"email": f"guess{number}@example.com", "password": "wrong password"},
                headers={"X-Forwarded-For": f"198.51.100.{number + 1}"},
            )
            assert wrong.status_code == 401, wrong.text
        right = client.post(
            "/v2/auth/login",
            json={"email": "admin@modelyard.local", "password": password},
            headers={"X-Forwarded-For": "198.51.100.200"},
        )
        assert right.status_code == 429
        assert right.json()["error"]["code"] == "login_throttled"


def test_serve_on_an_unmigrated_database_says_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_cli(tmp_path, monkeypatch)
    code, output = invoke("serve")
    assert code == 1
    assert "never migrated" in output and "modelyard setup" in output
    assert "Traceback" not in output

    assert invoke("db", "upgrade", "0007")[0] == 0
    code, output = invoke("serve")
    assert code == 1
    assert "is at revision 0007" in output and "modelyard db upgrade" in output
    assert "Traceback" not in output
