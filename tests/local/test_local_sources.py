"""Checking a local model before loading it: directories, the Hub (a fake on 127.0.0.1),
tokens, offline mode — and the three distinct refusals."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.local.errors import ModelNotFoundError, UnauthorizedModelError, UnsupportedModelError
from modelyard.local.sources import locate
from tests.fakes.hub import FakeHub, HubRepo

TOKEN = "hf_canaryhubtoken0123456789abcdef"
LLAMA = {"model_type": "llama", "architectures": ["LlamaForCausalLM"]}


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with FakeHub(keys={TOKEN}) as fake:
        fake.repos["acme/tiny-llama"] = HubRepo(
            files={
                "config.json": json.dumps(LLAMA).encode(),
                "tokenizer.json": b"{}",
                "model.safetensors": b"weights",
                "pytorch_model.bin": b"not fetched",
            }
        )
        fake.repos["acme/private"] = HubRepo.with_config(LLAMA, private=True)
        fake.repos["acme/gated"] = HubRepo.with_config(LLAMA, gated=True)
        fake.repos["acme/qwen9"] = HubRepo.with_config({"model_type": "qwen9"})
        yield fake


async def test_public_hub_model_is_checked_then_fetched(hub: FakeHub, tmp_path: Path) -> None:
    source = await locate("acme/tiny-llama", endpoint=hub.url, cache_dir=tmp_path)
    assert (source.task, source.model_type) == ("causal", "llama")
    assert (source.path / "model.safetensors").read_bytes() == b"weights"
    assert not (source.path / "pytorch_model.bin").exists()
    assert hub.requests[0].path.endswith("/resolve/main/config.json")


async def test_private_model_needs_a_token(
    hub: FakeHub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(UnauthorizedModelError) as refused:
        await locate("acme/private", endpoint=hub.url, cache_dir=tmp_path)
    assert refused.value.status_code == 401
    assert "is private or gated; set HF_TOKEN" in refused.value.message
    with caplog.at_level(logging.INFO, logger="modelyard.local"):
        source = await locate("acme/private", token=TOKEN, endpoint=hub.url, cache_dir=tmp_path)
    assert source.task == "causal"
    assert hub.last_request.header("authorization") == f"Bearer {TOKEN}"
    assert "Using Hugging Face authentication" in caplog.text
    assert TOKEN not in caplog.text


async def test_gated_model_is_403_even_with_a_token_lacking_access(
    hub: FakeHub, tmp_path: Path
) -> None:
    with pytest.raises(UnauthorizedModelError) as refused:
        await locate(
            "acme/gated", token="hf_otheruser0123456789abcd", endpoint=hub.url, cache_dir=tmp_path
        )
    assert refused.value.status_code == 403
    assert "token in use has no access" in refused.value.message


async def test_unsupported_type_is_400_and_says_a_token_will_not_help(
    hub: FakeHub, tmp_path: Path
) -> None:
    with pytest.raises(UnsupportedModelError) as refused:
        await locate("acme/qwen9", endpoint=hub.url, cache_dir=tmp_path)
    message = refused.value.message
    assert refused.value.status_code == 400
    assert message.startswith("Unsupported model type: qwen9")
    assert "this runtime supports: causal LMs (" in message and "llama" in message
    assert "authentication will not fix this" in message
    assert not any(r.path.endswith("model.safetensors") for r in hub.requests)


async def test_missing_model_is_404(hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError) as missing:
        await locate("acme/nothing-here", endpoint=hub.url, cache_dir=tmp_path)
    assert missing.value.status_code == 404
    assert missing.value.message.startswith("Model not found: acme/nothing-here")


async def test_offline_mode_uses_the_cache_only(
    hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    await locate("acme/tiny-llama", endpoint=hub.url, cache_dir=tmp_path)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    seen = len(hub.requests)
    cached = await locate("acme/tiny-llama", endpoint=hub.url, cache_dir=tmp_path)
    assert cached.task == "causal" and len(hub.requests) == seen
    with pytest.raises(ModelNotFoundError, match="offline mode"):
        await locate("acme/private", endpoint=hub.url, cache_dir=tmp_path)


async def test_directories_and_the_built_in_minilm(tmp_path: Path) -> None:
    minilm = await locate("all-MiniLM-L6-v2")
    assert minilm.task == "embedding" and minilm.model_type == "bert"
    (tmp_path / "t5").mkdir()
    (tmp_path / "t5" / "config.json").write_text(
        json.dumps({"model_type": "t5", "architectures": ["T5ForConditionalGeneration"]})
    )
    assert (await locate(str(tmp_path / "t5"))).task == "seq2seq"
    (tmp_path / "clf").mkdir()
    (tmp_path / "clf" / "config.json").write_text(
        json.dumps({"model_type": "bert", "architectures": ["BertForSequenceClassification"]})
    )
    assert (await locate("clf", trained_dir=tmp_path)).task == "classification"
    with pytest.raises(ModelNotFoundError, match=r"no config\.json"):
        (tmp_path / "empty").mkdir()
        await locate(str(tmp_path / "empty"))
    with pytest.raises(ModelNotFoundError, match="no such directory"):
        await locate(str(tmp_path / "absent"))
    (tmp_path / "weird").mkdir()
    (tmp_path / "weird" / "config.json").write_text(json.dumps({"model_type": "qwen9"}))
    with pytest.raises(UnsupportedModelError):
        await locate(str(tmp_path / "weird"))
