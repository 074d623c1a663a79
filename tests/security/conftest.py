"""The fuzzers' target: the app served by uvicorn on 127.0.0.1, on SQLite and (when
configured) on a PostgreSQL database of its own, with a staff user, a plain user, a
default provider answering from a fake OpenAI and a fake Hugging Face Hub; and the check
that no error tells a client anything about the server (paths, tracebacks, SQL)."""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import uvicorn
from cryptography.fernet import Fernet

from modelyard.api.app import create_app
from modelyard.config import Settings
from modelyard.db.engine import create_database
from modelyard.db.migrate import upgrade
from modelyard.providers import records
from tests.conftest import BACKENDS, POSTGRES_URL
from tests.fakes.fixtures import OPENAI_KEY
from tests.fakes.hub import FakeHub
from tests.fakes.openai_chat import ChatOpenAI
from tests.helpers import PASSWORD, bearer, make_token, make_user

STAFF_EMAIL = "fuzz@example.com"
USER_EMAIL = "plain@example.com"
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class FuzzServer:
    base: str
    #: The staff user's API token (reaches every route, the admin ones included).
    headers: dict[str, str]
    backend: str
    data_dir: Path
    upstream: ChatOpenAI
    staff_id: int
    user_id: int

    def sign_in(self, email: str = STAFF_EMAIL) -> httpx.Client:
        """A browser-like client signed in through the ``/login`` form (cookies kept)."""
        client = httpx.Client(base_url=self.base, timeout=30, headers={"Origin": self.base})
        response = client.post("/login", data={"email": email, "password": PASSWORD})
        assert response.status_code == 303, response.text
        return client


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _admin_sql(statement: str) -> None:
    assert POSTGRES_URL is not None
    connection = await asyncpg.connect(
        POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")
    )
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz_database(request: pytest.FixtureRequest) -> Iterator[tuple[str, str | None]]:
    """``(backend, database_url)``: SQLite in the data directory, or a fresh PostgreSQL
    database for this module alone (the fuzzers leave rows behind)."""
    if request.param == "sqlite":
        yield "sqlite", None
        return
    assert POSTGRES_URL is not None
    name = f"modelyard_fuzz_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin_sql(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://").rsplit("/", 1)[0]
    yield "postgres", f"{url}/{name}"
    asyncio.run(_admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def fuzz_server(
    fuzz_database: tuple[str, str | None], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzServer]:
    backend, database_url = fuzz_database
    data_dir = tmp_path_factory.mktemp(f"fuzz-{backend}")
    # The Hub is a fake too: a model name the fuzzer makes up is a quick 404 from it.
    with ChatOpenAI(keys={OPENAI_KEY}) as upstream, FakeHub(keys=set()) as hub:
        settings = Settings(
            env="test",
            data_dir=data_dir,
            database_url=database_url,
            encryption_keys=Fernet.generate_key().decode(),
            hf_endpoint=hub.url,
            _env_file=None,  # type: ignore[call-arg]
        )
        upgrade(settings)

        async def prepare() -> tuple[str, int, int]:
            database = create_database(settings)
            try:
                staff = await make_user(database, STAFF_EMAIL, staff=True)
                plain = await make_user(database, USER_EMAIL)
                async with database.sessions() as session:
                    await records.create_provider(
                        session,
                        actor=None,
                        values={
                            "name": "fake openai",
                            "kind": "openai",
                            "api_key": OPENAI_KEY,
                            "base_url": upstream.base_url,
                            "is_default": True,
                        },
                    )
                return await make_token(database, staff), staff.id, plain.id
            finally:
                await database.dispose()

        token, staff_id, user_id = asyncio.run(prepare())
        port = _free_port()
        app = create_app(settings, system_keys={})
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
            time.sleep(0.05)
        yield FuzzServer(
            base=f"http://127.0.0.1:{port}",
            headers=bearer(token),
            backend=backend,
            data_dir=data_dir,
            upstream=upstream,
            staff_id=staff_id,
            user_id=user_id,
        )
        server.should_exit = True
        thread.join(timeout=10)


def server_details(data_dir: Path) -> list[str]:
    """What no response may contain: where the server's files are, and its internals."""
    return [
        str(REPO),
        str(data_dir),
        sys.prefix,
        "site-packages",
        f"{Path.home()}/",
        "Traceback (most recent call last)",
        'File "/',
        "sqlalchemy.",
        "asyncpg.",
        "[SQL:",
    ]


def assert_reveals_nothing(text: str, data_dir: Path) -> None:
    for detail in server_details(data_dir):
        assert detail not in text, f"a response reveals {detail!r}: {text[:300]}"
