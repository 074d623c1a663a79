"""The model manager (one load per name, LRU eviction, classification), the batcher, and
the Hugging Face token that local credentials carry."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from fastapi import FastAPI

from modelyard.db.engine import Database
from modelyard.db.models import UserProviderKey
from modelyard.local import manager as manager_module
from modelyard.local.batching import Batcher
from modelyard.local.manager import ModelManager
from modelyard.local.runtime import Runtime
from modelyard.local.sources import ModelSource
from modelyard.local.types import GenerationParams
from modelyard.providers.kinds import ProviderKind
from tests.helpers import make_user
from tests.local.builders import build_causal, build_classifier


@pytest.fixture
async def manager() -> ModelManager:
    return ModelManager()


async def test_concurrent_first_requests_share_one_load(
    manager: ModelManager,
    causal_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from modelyard.local import runtime

    calls: list[str] = []
    real = runtime.load_runtime

    def slow_load(source: ModelSource, device: str) -> Runtime:
        calls.append(threading.current_thread().name)
        time.sleep(0.2)
        return real(source, device)

    monkeypatch.setattr(runtime, "load_runtime", slow_load)
    caplog.set_level(logging.INFO, logger="modelyard.local")
    try:
        models = await asyncio.gather(*(manager.get(str(causal_dir)) for _ in range(5)))
    finally:
        await manager.aclose()
    assert len(calls) == 1 and manager.loads == 1
    assert all(model is models[0] for model in models)
    messages = [record.getMessage() for record in caplog.records]
    assert f"Loading model: {causal_dir}…" in messages
    assert any(m.startswith("Model loaded successfully in ") for m in messages)


async def test_least_recently_used_models_are_evicted(tmp_path: Path) -> None:
    dirs = [build_causal(tmp_path / name, seed=i) for i, name in enumerate("abc")]
    probe = ModelManager()
    size = (await probe.get(str(dirs[0]))).bytes
    await probe.aclose()
    manager = ModelManager(memory_budget_bytes=int(size * 2.5))
    a, b, c = (str(d) for d in dirs)
    try:
        await manager.get(a)
        await manager.get(b)
        await manager.get(a)  # a is now the most recently used
        await manager.get(c)
        loaded = manager.loaded()
        assert [info.name for info in loaded] == [a, c]  # b was the least recently used
        assert all(info.task == "causal" and info.bytes == size for info in loaded)
        assert loaded[0].last_used <= loaded[1].last_used
        assert manager.loads == 3
        await manager.get(b)  # loaded again, evicting a
        assert [info.name for info in manager.loaded()] == [c, b] and manager.loads == 4
    finally:
        await manager.aclose()


async def test_classification_returns_labels_and_scores(tmp_path: Path) -> None:
    directory = build_classifier(tmp_path / "sentiment")
    manager = ModelManager()
    try:
        results = await manager.classify(str(directory), ["what a lovely day", "awful"])
        assert manager.loaded()[0].task == "classification"
        with pytest.raises(Exception, match="classification model"):
            await (await manager.get(str(directory))).complete([("user", "x")], GenerationParams())
    finally:
        await manager.aclose()
    assert len(results) == 2
    for result in results:
        assert set(result.scores) == {"negative", "positive"}
        assert abs(sum(result.scores.values()) - 1) < 1e-5
        assert result.label == max(result.scores, key=result.scores.__getitem__)
        assert result.score == result.scores[result.label]


async def test_batcher_groups_by_key_and_isolates_errors() -> None:
    calls: list[list[str]] = []

    def run(requests: Sequence[str]) -> list[str | Exception]:
        calls.append(list(requests))
        return [ValueError(r) if r == "bad" else r.upper() for r in requests]

    batcher: Batcher[str, str] = Batcher(run, lock=asyncio.Lock(), max_batch=3, window=0.01)
    jobs = [("a", "greedy"), ("b", "greedy"), ("bad", "greedy"), ("c", "hot"), ("d", None)]
    jobs += [("e", "greedy")]
    results = await asyncio.gather(
        *(batcher.submit(request, key) for request, key in jobs), return_exceptions=True
    )
    assert results[:2] == ["A", "B"] and isinstance(results[2], ValueError)
    assert results[3:] == ["C", "D", "E"]
    assert calls[0] == ["a", "b", "bad"]  # at most max_batch, same key, arrival order
    assert sorted(calls[1:]) == [["c"], ["d"], ["e"]]
    await batcher.aclose()


async def test_batcher_runs_off_the_event_loop() -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []

    def run(requests: Sequence[int]) -> list[int | Exception]:
        seen.append(threading.get_ident())
        return list(requests)

    batcher: Batcher[int, int] = Batcher(run, lock=asyncio.Lock())
    assert await batcher.submit(1, "k") == 1
    assert seen and loop_thread not in seen


async def test_local_credentials_carry_a_hugging_face_token(
    app: FastAPI, database: Database
) -> None:
    gateway = app.state.modelyard.gateway
    user = await make_user(database, "hf@example.com")
    (keyless,) = await gateway._credentials(user, ProviderKind.LOCAL)
    assert keyless.api_key is None
    gateway.system_keys[ProviderKind.HUGGINGFACE] = ["hf_systemcanary0123456789abcdef"]
    gateway.invalidate()
    (system,) = await gateway._credentials(user, ProviderKind.LOCAL)
    assert system.api_key == "hf_systemcanary0123456789abcdef"
    async with database.sessions() as session:
        session.add(
            UserProviderKey(
                user_id=user.id, provider="huggingface", api_key="hf_usercanary0123456789abcdef"
            )
        )
        await session.commit()
    gateway.invalidate()
    (own,) = await gateway._credentials(user, ProviderKind.LOCAL)
    assert own.api_key == "hf_usercanary0123456789abcdef"
    assert "canary" not in repr(own)


def test_the_manager_module_does_not_import_torch_at_import_time() -> None:
    import subprocess
    import sys

    code = (
        "import sys, modelyard.api.app, modelyard.local.manager;"
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    assert manager_module.LOADER_THREADS >= 1
