"""Loading a located model onto a device, and the runtimes that are not text generation.

:func:`load_runtime` turns a :class:`~modelyard.local.sources.ModelSource` into a runtime
for its task: a :class:`~modelyard.local.generation.TextGenerator` (causal LMs and
seq2seq models), an :class:`Embedder` (sentence-transformers) or a :class:`Classifier`
(sequence classification, e.g. a model trained by this service). Everything here is
synchronous torch work: callers run it in a worker thread, one job per model at a time.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from modelyard.local.generation import TextGenerator
from modelyard.local.types import Classification, Embeddings

if TYPE_CHECKING:
    from modelyard.local.sources import ModelSource

__all__ = [
    "Classifier",
    "Embedder",
    "Runtime",
    "load_runtime",
    "model_bytes",
    "resolve_device",
]

logger = logging.getLogger("modelyard.local")


def resolve_device(requested: str) -> str:
    """``cuda`` (or ``cuda:N``) when asked for and available, ``auto`` → the best one, else
    ``cpu`` (with a warning when a GPU was asked for but is missing)."""
    requested = requested.strip().lower()
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if torch.cuda.is_available():
            return requested
        logger.warning("local_device=%s but no CUDA device is available; using the CPU", requested)
    return "cpu"


def model_bytes(module: torch.nn.Module) -> int:
    """Memory held by the module's parameters and buffers (the eviction estimate)."""
    tensors = [*module.parameters(), *module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


class Embedder:
    """A sentence-transformers model: texts → vectors."""

    task = "embedding"

    def __init__(self, model: Any, *, batch_size: int = 32) -> None:
        self.model = model
        self.batch_size = batch_size
        self.module: torch.nn.Module = model

    @property
    def dimensions(self) -> int:
        return int(self.model.get_embedding_dimension())

    def count_tokens(self, texts: list[str]) -> int:
        """Tokens per input as the model sees them (special tokens, truncation included)."""
        tokenizer = self.model.tokenizer
        encoded = tokenizer(
            texts, truncation=True, max_length=self.model.max_seq_length, add_special_tokens=True
        )
        return sum(len(ids) for ids in encoded["input_ids"])

    def embed(self, texts: list[str]) -> Embeddings:
        vectors = self.model.encode(
            texts, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
        )
        return Embeddings(np.asarray(vectors, dtype=np.float32), self.count_tokens(texts))


class Classifier:
    """A sequence-classification model: texts → labels with scores."""

    task = "classification"

    def __init__(self, model: Any, tokenizer: Any, device: str) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.module: torch.nn.Module = model

    def classify(self, texts: list[str]) -> list[Classification]:
        encoded = self.tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        encoded = {name: value.to(self.device) for name, value in encoded.items()}
        with torch.inference_mode():
            logits = self.model(**encoded).logits.float()
        if getattr(self.model.config, "problem_type", None) == "multi_label_classification":
            probabilities = torch.sigmoid(logits)
        else:
            probabilities = torch.softmax(logits, dim=-1)
        id2label = self.model.config.id2label
        results = []
        for row in probabilities.cpu().tolist():
            scores = {str(id2label.get(i, f"LABEL_{i}")): float(p) for i, p in enumerate(row)}
            best = max(scores, key=scores.__getitem__)
            results.append(Classification(best, scores[best], scores))
        return results


Runtime = TextGenerator | Embedder | Classifier


def _dtype(device: str) -> Any:
    # Full precision on the CPU; the checkpoint's own dtype (bf16, fp16) on a GPU.
    return torch.float32 if device == "cpu" else "auto"


def load_runtime(source: ModelSource, device: str) -> Runtime:
    """Load ``source``'s weights and tokenizer on ``device`` (blocking: call in a thread)."""
    path = str(source.path)
    if source.task == "embedding":
        from sentence_transformers import SentenceTransformer

        return Embedder(SentenceTransformer(path, device=device, local_files_only=True))
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSeq2SeqLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    tokenizer = AutoTokenizer.from_pretrained(path)
    loader: Any = {
        "causal": AutoModelForCausalLM,
        "seq2seq": AutoModelForSeq2SeqLM,
        "classification": AutoModelForSequenceClassification,
    }[source.task]
    model = loader.from_pretrained(path, dtype=_dtype(device)).to(device).eval()
    if source.task == "classification":
        if tokenizer.pad_token is None and tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token  # batches of texts need padding
        return Classifier(model, tokenizer, device)
    return TextGenerator(model, tokenizer, source.task, device)
