"""``modelyard serve`` as a real process on a free port, for the reliability tests and the
load benchmark: started on the test's database, stopped cleanly or killed with SIGKILL.

::

    with ServerProcess(server_env(settings, MODELYARD_REDIS_URL=…), workdir, workers=2) as server:
        httpx.get(f"{server.url}/healthz")
        server.worker_pids()     # the processes that accept connections
        server.kill()            # kill -9 the server process
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from modelyard.config import Settings
from modelyard.providers.kinds import KIND_INFO
from modelyard.providers.system_keys import MAX_NUMBERED
from tests.reliability.procfs import children, connections, socket_inodes

__all__ = ["ServerProcess", "free_port", "server_env"]

#: Seconds a server may take to answer ``/healthz`` (imports are slow on a busy machine).
START_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0
#: ``st`` of a listening socket in ``/proc/net/tcp``.
LISTENING = "0A"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _provider_variables() -> set[str]:
    """Every environment variable that would give the server a system provider key."""
    names = set()
    for info in KIND_INFO.values():
        for base in info.env_vars:
            names.add(base)
            names.update(f"{base}_{n}" for n in range(2, MAX_NUMBERED + 1))
    return names


def server_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a server on ``settings``'s database and data directory: none of
    this process's ``MODELYARD_*`` settings or provider keys, plus ``extra``."""
    dropped = _provider_variables() | {"DATABASE_URL", "HF_ENDPOINT"}
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("MODELYARD_") and key not in dropped
    }
    env.update(
        MODELYARD_ENV="test",
        MODELYARD_DATA_DIR=str(settings.data_dir),
        MODELYARD_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    if settings.encryption_keys:
        env["MODELYARD_ENCRYPTION_KEYS"] = settings.encryption_keys
    if settings.database_url:
        env["DATABASE_URL"] = settings.database_url
    env.update(extra)
    return env


class ServerProcess:
    """One ``python -m modelyard serve`` process (and its workers), logging to a file."""

    def __init__(
        self, env: dict[str, str], workdir: Path, *, workers: int = 1, port: int | None = None
    ) -> None:
        self.env = env
        self.workdir = workdir
        self.workers = workers
        self.port = port or free_port()
        self.log_path = workdir / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the server is not running")
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> Self:
        """Start serving and wait until ``/healthz`` answers."""
        command = [sys.executable, "-m", "modelyard", "serve", "--port", str(self.port)]
        command += ["--workers", str(self.workers)]
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=self.env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the server did not start:\n{self.log()[-4000:]}")
            time.sleep(0.1)
        if self.workers > 1:
            self._wait_for_workers(deadline)
        return self

    def _listening_inode(self) -> int:
        inode = next(
            (
                sock.inode
                for sock in connections()
                if sock.local_port == self.port and sock.state == LISTENING
            ),
            None,
        )
        assert inode is not None, f"nothing listens on port {self.port}:\n{self.log()[-4000:]}"
        return inode

    def worker_pids(self) -> list[int]:
        """The processes that accept connections: the server itself with one worker, else
        its children that hold the listening socket."""
        if self.workers == 1:
            return [self.pid]
        listening = self._listening_inode()
        workers = []
        for child in children(self.pid):
            try:
                if listening in socket_inodes(child):
                    workers.append(child)
            except OSError:
                continue
        return workers

    def _wait_for_workers(self, deadline: float) -> None:
        while len(self.worker_pids()) < self.workers:
            if time.monotonic() > deadline:
                raise AssertionError(f"workers missing: {self.worker_pids()}\n{self.log()[-4000:]}")
            time.sleep(0.1)

    def kill(self, *, workers_too: bool = False) -> None:
        """``kill -9`` the server process. Its job processes must die with it on their own;
        ``workers_too`` also kills a multi-worker server's workers (for clean-up)."""
        if self.process is None:
            return
        doomed = children(self.pid) if workers_too else []
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(STOP_TIMEOUT)
        self.process = None
        for child in doomed:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> int | None:
        """Stop cleanly (SIGTERM, as a supervisor would); the exit status."""
        if self.process is None:
            return None
        process, self.process = self.process, None
        process.terminate()
        try:
            return process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)
            message = f"the server did not stop on SIGTERM:\n{self.log()[-4000:]}"
            raise AssertionError(message) from None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.kill(workers_too=True)
        else:
            self.stop()
