"""Pushing a trained model to a fake Hugging Face Hub on 127.0.0.1 with ``huggingface_hub``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.training.hub import HubPushError, push_model
from tests.fakes.hub import FakeHub, HubRepo

TOKEN = "hf_canarypushtoken0123456789abcdef"
OTHER = "hf_anotherusertoken0123456789abcd"


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with FakeHub(keys={TOKEN, OTHER}) as fake:
        yield fake


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "bert"}')
    (model / "model.safetensors").write_bytes(bytes(range(256)) * 64)
    (model / "README.md").write_text("# my-model\n")
    return model


def _owner(hub: FakeHub, token: str) -> str:
    return f"user-{sorted(hub.keys).index(token)}"


def test_push_creates_a_private_repo_under_the_token_owner(hub: FakeHub, folder: Path) -> None:
    pushed = push_model(folder, token=TOKEN, output_name="my-model", endpoint=hub.url)
    repo_id = f"{_owner(hub, TOKEN)}/my-model"
    assert pushed.repo_id == repo_id
    assert pushed.private is True
    assert pushed.url.endswith(repo_id)
    repo = hub.repos[repo_id]
    assert repo.private is True
    assert repo.files["model.safetensors"] == (folder / "model.safetensors").read_bytes()
    assert set(repo.files) == {"config.json", "model.safetensors", "README.md"}


def test_push_to_a_named_public_repo_reuses_an_existing_one(hub: FakeHub, folder: Path) -> None:
    repo_id = f"{_owner(hub, TOKEN)}/shared"
    hub.repos[repo_id] = HubRepo(files={"old.txt": b"kept"})
    pushed = push_model(
        folder,
        token=TOKEN,
        output_name="my-model",
        repo_id=repo_id,
        private=False,
        endpoint=hub.url,
    )
    assert pushed.repo_id == repo_id and pushed.private is False
    assert hub.repos[repo_id].private is False
    assert hub.repos[repo_id].files["old.txt"] == b"kept"
    assert "config.json" in hub.repos[repo_id].files


def test_refused_token_says_what_to_do_without_the_token(hub: FakeHub, folder: Path) -> None:
    bad = "hf_canaryrefusedtoken0123456789abc"
    with pytest.raises(HubPushError) as caught:
        push_model(folder, token=bad, output_name="my-model", endpoint=hub.url)
    message = str(caught.value)
    assert "401" in message and "write access" in message
    assert bad not in message and bad not in repr(caught.value)
    assert caught.value.__cause__ is None


def test_repo_of_another_user_is_refused(hub: FakeHub, folder: Path) -> None:
    with pytest.raises(HubPushError, match="403"):
        push_model(
            folder,
            token=TOKEN,
            output_name="m",
            repo_id=f"{_owner(hub, OTHER)}/m",
            endpoint=hub.url,
        )


def test_failed_commit_keeps_the_local_folder(hub: FakeHub, folder: Path) -> None:
    hub.commit_status = 507
    with pytest.raises(HubPushError, match="507"):
        push_model(folder, token=TOKEN, output_name="my-model", endpoint=hub.url)
    assert (folder / "model.safetensors").exists()
