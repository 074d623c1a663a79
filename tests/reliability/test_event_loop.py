"""``MODELYARD_EVENT_LOOP`` picks the worker's event loop: uvloop's native module is mapped
into the serving process by default and not with ``asyncio``, which serves all the same;
a value that is no loop is refused, naming the setting."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from modelyard.config import Settings
from tests.reliability.server import ServerProcess, server_env


def _uvloop_mapped(pid: int) -> bool:
    return "site-packages/uvloop/" in Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.parametrize(("loop", "uvloop"), [("auto", True), ("asyncio", False)])
def test_the_event_loop_setting_picks_the_loop(
    settings: Settings, tmp_path: Path, loop: str, uvloop: bool
) -> None:
    env = server_env(settings, MODELYARD_EVENT_LOOP=loop)
    with ServerProcess(env, tmp_path / "server") as server:
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
        assert _uvloop_mapped(server.pid) is uvloop


def test_an_unknown_event_loop_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_EVENT_LOOP", "trio")
    with pytest.raises(ValidationError, match="event_loop"):
        Settings(_env_file=None)
