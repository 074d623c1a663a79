"""The model manager: each local model loaded once, kept while it fits, run off the loop.

:meth:`ModelManager.get` locates a :class:`~modelyard.local.sources.LocalRef` (what
:func:`~modelyard.local.access.resolve_local` allowed the caller) and loads it in a worker
thread; concurrent first requests for one model share that one load. A Hub model is kept
per credential: one loaded with A's token is never handed to a caller with another. Past
the memory budget (parameter and buffer bytes), the least recently used models are
dropped (a model still answering a request is freed once that request ends).
:meth:`ModelManager.loaded` reports what is in memory.

A :class:`LoadedModel` runs one job at a time (its lock): batches of non-streaming
generations (see :mod:`~modelyard.local.batching`), one stream, or one embedding or
classification call, in a thread of its own. All torch work happens in those threads, so
the event loop keeps answering other requests while a model computes. torch and transformers are
imported with the first model, not with this module.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from modelyard.errors import BadRequestError
from modelyard.local.batching import Batcher
from modelyard.local.sources import LocalRef, ModelSource, locate, trusted_ref
from modelyard.local.types import (
    Classification,
    Completion,
    Embeddings,
    GenerationParams,
    GenerationRequest,
    Message,
    Prompt,
)
from modelyard.security.tokens import digest

if TYPE_CHECKING:
    from modelyard.config import Settings
    from modelyard.local.generation import TextGenerator
    from modelyard.local.runtime import Classifier, Embedder, Runtime

__all__ = ["LoadFailedError", "LoadedInfo", "LoadedModel", "ModelManager"]

logger = logging.getLogger("modelyard.local")

T = TypeVar("T")

#: Threads that load models (each loaded model then has one thread of its own: torch's
#: thread pool is per calling thread, and one steady thread per model keeps it warm).
LOADER_THREADS = 2


def _prompt(messages: Sequence[Message] | str) -> Prompt:
    """Raw text as it is, chat messages as a tuple (requests are hashable values)."""
    return messages if isinstance(messages, str) else tuple(messages)


class LoadFailedError(RuntimeError):
    """The model was found, but its weights or tokenizer could not be loaded."""


@dataclass(frozen=True)
class LoadedInfo:
    """One model in memory, as :meth:`ModelManager.loaded` reports it."""

    name: str
    task: str
    bytes: int
    #: Wall-clock time (seconds since the epoch) of the last request.
    last_used: float
    load_seconds: float
    device: str
    path: Path


class LoadedModel:
    """A model in memory with its runtime; every call runs in a worker thread."""

    def __init__(
        self,
        source: ModelSource,
        runtime: Runtime,
        *,
        device: str,
        max_batch: int,
        batch_window: float,
        load_seconds: float,
    ) -> None:
        from modelyard.local.generation import TextGenerator
        from modelyard.local.runtime import model_bytes

        self.source = source
        self.runtime = runtime
        self.device = device
        self.bytes = model_bytes(runtime.module)
        self.load_seconds = load_seconds
        self.last_used = time.time()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"modelyard-{source.task}")
        self._lock = asyncio.Lock()
        self._batcher: Batcher[GenerationRequest, Completion] | None = None
        if isinstance(runtime, TextGenerator):
            self._batcher = Batcher(
                runtime.complete,
                lock=self._lock,
                executor=self._executor,
                max_batch=max_batch,
                window=batch_window,
                max_wait=batch_window * 4,
            )

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def task(self) -> str:
        return self.source.task

    @property
    def batch_sizes(self) -> list[int]:
        """Sizes of the generation batches run so far."""
        return self._batcher.batch_sizes if self._batcher is not None else []

    def info(self) -> LoadedInfo:
        return LoadedInfo(
            self.name,
            self.task,
            self.bytes,
            self.last_used,
            self.load_seconds,
            self.device,
            self.source.path,
        )

    def _wrong_task(self, wanted: str) -> BadRequestError:
        uses = {
            "causal": "chat completions",
            "seq2seq": "chat completions",
            "embedding": "embeddings (/v1/embeddings)",
            "classification": "text classification",
        }
        return BadRequestError(
            f"{self.name} is a {self.task} model: it serves {uses[self.task]}, not {wanted}.",
            param="model",
            code="wrong_model_task",
        )

    def generator(self) -> TextGenerator:
        from modelyard.local.generation import TextGenerator

        if not isinstance(self.runtime, TextGenerator):
            raise self._wrong_task("chat completions")
        return self.runtime

    def embedder(self) -> Embedder:
        from modelyard.local.runtime import Embedder

        if not isinstance(self.runtime, Embedder):
            raise self._wrong_task("embeddings")
        return self.runtime

    async def _call(self, work: Callable[[], T]) -> T:
        self.last_used = time.time()
        async with self._lock:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    async def complete(
        self, messages: Sequence[Message] | str, params: GenerationParams
    ) -> Completion:
        """Generate one answer; requests arriving together are batched."""
        generator = self.generator()
        assert self._batcher is not None
        self.last_used = time.time()
        request = GenerationRequest(_prompt(messages), params)
        return await self._batcher.submit(request, generator.batch_key(params))

    async def stream(
        self, messages: Sequence[Message] | str, params: GenerationParams
    ) -> AsyncGenerator[str | Completion, None]:
        """Text pieces as they are generated, then the :class:`Completion` (whole text,
        finish reason, usage). Streams of one model run one at a time.

        Closing the iterator early stops the generation after the current token.
        """
        generator = self.generator()
        self.last_used = time.time()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | Completion | BaseException] = asyncio.Queue()
        halt = threading.Event()

        def emit(item: str | Completion | BaseException) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone: nobody is listening
                halt.set()

        def work() -> None:
            try:
                emit(generator.stream(GenerationRequest(_prompt(messages), params), emit, halt))
            except BaseException as error:  # handed to the consumer, raised there
                emit(error)

        async with self._lock:
            running = loop.run_in_executor(self._executor, work)
            try:
                while True:
                    item = await queue.get()
                    if isinstance(item, BaseException):
                        raise item
                    yield item
                    if isinstance(item, Completion):
                        return
            finally:
                halt.set()
                await asyncio.shield(running)

    def classifier(self) -> Classifier:
        from modelyard.local.runtime import Classifier

        if not isinstance(self.runtime, Classifier):
            raise self._wrong_task("text classification")
        return self.runtime

    async def embed(self, texts: list[str]) -> Embeddings:
        runtime = self.embedder()
        return await self._call(lambda: runtime.embed(texts))

    async def classify(self, texts: list[str]) -> list[Classification]:
        """The best label, its score and every label's score, per text."""
        runtime = self.classifier()
        return await self._call(lambda: runtime.classify(texts))

    async def aclose(self) -> None:
        """Cancel waiting requests and stop the model's thread (after its current job)."""
        if self._batcher is not None:
            await self._batcher.aclose()
        self._executor.shutdown(wait=False, cancel_futures=True)


class ModelManager:
    """Loads local models on demand, once each, and evicts the least recently used."""

    def __init__(
        self,
        *,
        memory_budget_bytes: int = 4096 * 2**20,
        device: str = "cpu",
        max_batch: int = 8,
        batch_window: float = 0.005,
        endpoint: str | None = None,
        trained_dir: Path | None = None,
    ) -> None:
        self.memory_budget_bytes = memory_budget_bytes
        self.requested_device = device
        self.max_batch = max_batch
        self.batch_window = batch_window
        self.endpoint = endpoint
        self.trained_dir = trained_dir
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()
        self._loading: dict[str, asyncio.Future[LoadedModel]] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._device: str | None = None
        #: Loads started so far (a load shared by concurrent requests counts once).
        self.loads = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelManager:
        return cls(
            memory_budget_bytes=settings.local_memory_budget_mb * 2**20,
            device=settings.local_device,
            max_batch=settings.local_max_batch,
            endpoint=settings.hf_endpoint,
            trained_dir=settings.data_dir / "models",
        )

    @property
    def executor(self) -> ThreadPoolExecutor:
        """The threads that load models."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(LOADER_THREADS, thread_name_prefix="modelyard-load")
        return self._executor

    @property
    def device(self) -> str:
        if self._device is None:
            from modelyard.local.runtime import resolve_device

            self._device = resolve_device(self.requested_device)
        return self._device

    def loaded(self) -> list[LoadedInfo]:
        """The models in memory, least recently used first."""
        return [model.info() for model in self._models.values()]

    def _key(self, ref: LocalRef, token: str | None) -> str:
        if ref.kind != "hub":
            return ref.key
        return f"{ref.key}@{digest(token)[:16] if token else 'anonymous'}"

    async def get(self, ref: LocalRef | str, *, token: str | None = None) -> LoadedModel:
        """The loaded model ``ref`` (loading it first when needed); a plain name is the
        service's own (:func:`~modelyard.local.sources.trusted_ref`).

        Raises the errors of :func:`~modelyard.local.sources.locate` (400, 401/403, 404)
        and :class:`LoadFailedError` when the files are there but do not load.
        """
        if isinstance(ref, str):
            ref = trusted_ref(ref, self.trained_dir)
        key = self._key(ref, token)
        model = self._models.get(key)
        if model is None:
            loading = self._loading.get(key)
            if loading is None:
                loading = asyncio.ensure_future(self._load(key, ref, token))
                self._loading[key] = loading
                loading.add_done_callback(lambda _: self._loading.pop(key, None))
            model = await asyncio.shield(loading)
        if key in self._models:
            self._models.move_to_end(key)
        model.last_used = time.time()
        return model

    async def _load(self, key: str, ref: LocalRef, token: str | None) -> LoadedModel:
        name = ref.name
        source = await locate(ref, token=token, endpoint=self.endpoint)
        self.loads += 1
        from modelyard.local.runtime import load_runtime

        logger.info("Loading model: %s…", name)
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            runtime = await loop.run_in_executor(self.executor, load_runtime, source, self.device)
        except Exception as error:
            logger.warning("Could not load model %s: %s", name, error)
            raise LoadFailedError(f"could not load {name}: {error}") from error
        seconds = time.perf_counter() - started
        logger.info("Model loaded successfully in %.2f s", seconds)
        model = LoadedModel(
            source,
            runtime,
            device=self.device,
            max_batch=self.max_batch,
            batch_window=self.batch_window,
            load_seconds=seconds,
        )
        self._models[key] = model
        self._evict(keep=key)
        return model

    def _evict(self, keep: str) -> None:
        """Drop least recently used models (never ``keep``) until the rest fit the budget."""
        total = sum(model.bytes for model in self._models.values())
        evicted = False
        for name in list(self._models):
            if total <= self.memory_budget_bytes:
                break
            if name == keep:
                continue
            model = self._models.pop(name)
            total -= model.bytes
            evicted = True
            logger.info("Unloaded model %s (least recently used, over the memory budget)", name)
        if total > self.memory_budget_bytes:
            logger.warning(
                "Model %s alone exceeds the local memory budget (%d MiB)",
                keep,
                self.memory_budget_bytes // 2**20,
            )
        if evicted:
            gc.collect()
            if self.device.startswith("cuda"):
                import torch

                torch.cuda.empty_cache()

    async def unload(self, name: str) -> bool:
        """Drop every model loaded as ``name`` from memory; whether there was one."""
        keys = [key for key, model in self._models.items() if model.name == name]
        for key in keys:
            await self._models.pop(key).aclose()
        return bool(keys)

    async def classify(
        self, ref: LocalRef | str, texts: list[str], *, token: str | None = None
    ) -> list[Classification]:
        """Labels and scores of ``texts`` by the classification model ``ref``."""
        return await (await self.get(ref, token=token)).classify(texts)

    async def aclose(self) -> None:
        """Drop every model and stop the worker threads."""
        for model in list(self._models.values()):
            await model.aclose()
        self._models.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
