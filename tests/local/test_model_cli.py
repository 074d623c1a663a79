"""``modelyard quick-test`` and ``modelyard models pull | list | rm``, offline."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub.constants
import pytest
from typer.testing import CliRunner

from modelyard.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODELYARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MODELYARD_LOG_LEVEL", "WARNING")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at import
    for name in ("HF_TOKEN", "HUGGINGFACE_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def fake_cache(root: Path, repo_id: str) -> Path:
    """A Hugging Face cache holding one model revision, laid out as the Hub client does."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    blob = repo / "blobs" / "b1"
    blob.parent.mkdir(parents=True)
    blob.write_text('{"model_type": "llama"}' + " " * 2000)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").symlink_to(blob)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return repo


def test_quick_test_loads_and_generates(causal_dir: Path) -> None:
    result = runner.invoke(app, ["quick-test", str(causal_dir), "--max-tokens", "7"])
    assert result.exit_code == 0, result.output
    assert f"Loaded {causal_dir} (causal" in result.output
    assert "7 tokens in" in result.output and "tokens/s" in result.output


def test_quick_test_explains_a_missing_model(tmp_path: Path) -> None:
    result = runner.invoke(app, ["quick-test", str(tmp_path / "nothing-here")])
    assert result.exit_code == 1
    assert "Model not found" in result.output


def test_models_list_and_rm(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    repo = fake_cache(cache, "someone/tiny-model")
    listed = runner.invoke(app, ["models", "list", "--cache-dir", str(cache)])
    assert listed.exit_code == 0, listed.output
    assert "all-MiniLM-L6-v2" in listed.output and "someone/tiny-model" in listed.output
    removed = runner.invoke(app, ["models", "rm", "someone/tiny-model", "--cache-dir", str(cache)])
    assert removed.exit_code == 0, removed.output
    assert "Removed someone/tiny-model" in removed.output
    assert not repo.exists()
    again = runner.invoke(app, ["models", "rm", "someone/tiny-model", "--cache-dir", str(cache)])
    assert again.exit_code == 1 and "not in the Hugging Face cache" in again.output


def test_models_pull_checks_the_model(causal_dir: Path) -> None:
    result = runner.invoke(app, ["models", "pull", str(causal_dir)])
    assert result.exit_code == 0, result.output
    assert "causal model (llama)" in result.output
    offline = runner.invoke(app, ["models", "pull", "someone/not-cached"])
    assert offline.exit_code == 1 and "not in the Hugging Face cache" in offline.output
