"""Trained models: saved under ``<data dir>/models/<owner>/<name>`` with a model card.

Each owner has a folder of its own (``u<user id>``, or ``system`` for jobs without a
user), so names are unique per owner. The directory is written beside its final place
and renamed into it, so a model is either complete or absent; an existing model of
another job is never replaced. ``modelyard.json`` holds the card's facts for programs
(base, dataset hash, hyperparameters, metrics); ``README.md`` is the readable card.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CARD_FILE",
    "ModelCard",
    "ModelExistsError",
    "model_folder",
    "models_dir",
    "read_card",
    "save_model",
]

CARD_FILE = "modelyard.json"


def models_dir(data_dir: Path) -> Path:
    """Where trained models live."""
    return data_dir / "models"


def model_folder(owner_id: int | None, name: str) -> str:
    """A trained model's directory, relative to the data directory."""
    owner = f"u{owner_id}" if owner_id is not None else "system"
    return f"{models_dir(Path())}/{owner}/{name}"


class ModelExistsError(FileExistsError):
    """The destination holds the model of another job."""


@dataclass
class ModelCard:
    name: str
    task: str
    base_model: str
    dataset: dict[str, Any]
    hyperparameters: dict[str, Any]
    metrics: dict[str, Any]
    job_id: int
    extra: dict[str, Any] = field(default_factory=dict)

    def markdown(self) -> str:
        def table(values: dict[str, Any]) -> str:
            rows = "\n".join(f"| {k} | {v} |" for k, v in values.items())
            return f"| | |\n|---|---|\n{rows}"

        return (
            f"---\nbase_model: {self.base_model}\nlibrary_name: transformers\n"
            f"tags: [modelyard, {self.task}]\n---\n\n# {self.name}\n\n"
            f"Fine-tuned by modelyard (job {self.job_id}) from `{self.base_model}` for "
            f"{self.task}.\n\n## Dataset\n\n{table(self.dataset)}\n\n"
            f"## Hyperparameters\n\n{table(self.hyperparameters)}\n\n"
            f"## Metrics (held-out split)\n\n{table(self.metrics)}\n"
            + (f"\n## Details\n\n{table(self.extra)}\n" if self.extra else "")
        )


def _check_replaceable(destination: Path, card: ModelCard) -> None:
    if not destination.exists():
        return
    previous = read_card(destination)
    if previous is None or previous.get("job_id") != card.job_id:
        raise ModelExistsError(f"a model named {card.name} exists already; it is kept")


def save_model(model: Any, tokenizer: Any, destination: Path, card: ModelCard) -> Path:
    """Write the model, its tokenizer and card, then move them into ``destination`` (which
    may hold only an earlier save of the same job: :class:`ModelExistsError` otherwise)."""
    _check_replaceable(destination, card)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = destination.parent / f".{destination.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / CARD_FILE).write_text(json.dumps(asdict(card), indent=2, default=str))
    (staging / "README.md").write_text(card.markdown())
    if destination.exists():
        try:
            _check_replaceable(destination, card)
        except ModelExistsError:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        old = destination.parent / f".{destination.name}.old-{os.getpid()}"
        destination.rename(old)
        staging.rename(destination)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(destination)
    return destination


def read_card(directory: Path) -> dict[str, Any] | None:
    """The card of a trained model (``None`` when it has none)."""
    try:
        data = json.loads((directory / CARD_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
