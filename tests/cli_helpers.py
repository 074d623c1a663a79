"""Running the CLI in tests as an operator would, in a data directory of the test's own."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.cli.common import console, err_console

__all__ = ["invoke", "isolate_cli", "runner"]

runner = CliRunner()


def isolate_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, migrate: bool = False) -> Path:
    """Work in ``tmp_path`` with a data directory there and no database or keys from the
    environment; the data directory (migrated when asked)."""
    monkeypatch.chdir(tmp_path)
    for name in ("DATABASE_URL", "MODELYARD_DATABASE_URL", "MODELYARD_ENCRYPTION_KEYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MODELYARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MODELYARD_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("COLUMNS", "250")
    for terminal in (console, err_console):  # built at import, maybe before COLUMNS was set
        monkeypatch.setattr(terminal, "width", 250)
    if migrate:
        assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    return tmp_path / "data"


def invoke(*args: str) -> tuple[int, str]:
    """Run ``modelyard *args``: the exit code and the output."""
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output
