"""Training: the modelyard job path against a plain Transformers ``Trainer``.

MiniLM (the offline ``all-MiniLM-L6-v2``) text classification on short examples (5,000;
500 with ``--quick``), one epoch, batch 32, 2 CPU threads, a checkpoint every 100 steps
in both runs. Targets: samples/s within 5% of the plain ``Trainer`` (the same
tokenization, collator and arguments, no callbacks, in its own process); the whole
job — queued, worker started, trained, evaluated, saved — in under 3 minutes.

Run alone with ``python -m bench.training [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from modelyard.config import Settings
from modelyard.db.engine import create_database
from modelyard.db.migrate import upgrade
from modelyard.training import jobs
from modelyard.training.config import TrainingConfig
from modelyard.training.runner import TrainingRunner
from modelyard.training.uploads import stage_path, store_dataset

__all__ = ["report", "run"]

THREADS = 2
BATCH = 32
MAX_LENGTH = 64
CHECKPOINT_STEPS = 100
SEED = 42
WORDS = {
    "positive": ["great", "lovely", "brilliant", "fun", "moving", "sharp", "warm"],
    "negative": ["dull", "awful", "boring", "flat", "clumsy", "tedious", "cold"],
}
NOUNS = ["film", "plot", "cast", "script", "ending", "score", "pacing"]

BASELINE = """
import json, sys, torch
from transformers import (AutoModelForSequenceClassification, AutoTokenizer,
    DataCollatorWithPadding, Trainer, TrainingArguments)
from modelyard.local.sources import BUILT_IN_MODELS
from modelyard.training.datasets import load_examples
from modelyard.training.tasks import split_examples
from modelyard.training.tasks.classification import encode
torch.set_num_threads(int(sys.argv[3]))
_kind, examples = load_examples(__import__("pathlib").Path(sys.argv[1]), "csv")
labels = sorted({e["label"] for e in examples})
label2id = {l: i for i, l in enumerate(labels)}
path = BUILT_IN_MODELS["all-MiniLM-L6-v2"]()
tokenizer = AutoTokenizer.from_pretrained(path)
model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(labels))
train, _held = split_examples(examples, 0.1, 42)
args = TrainingArguments(output_dir=sys.argv[2], num_train_epochs=1,
    per_device_train_batch_size=32, learning_rate=5e-5, save_strategy="steps",
    save_steps=100, save_total_limit=2, logging_steps=10, report_to="none",
    disable_tqdm=True, seed=42, use_cpu=True, dataloader_num_workers=0, warmup_steps=0.0)
trainer = Trainer(model=model, args=args, train_dataset=encode(tokenizer, train, label2id, 64),
    data_collator=DataCollatorWithPadding(tokenizer))
out = trainer.train()
print(json.dumps({"samples_per_second": out.metrics["train_samples_per_second"],
    "runtime": out.metrics["train_runtime"]}))
"""


def _write_data(path: Path, count: int) -> None:
    rng = random.Random(SEED)
    lines = ["text,label"]
    for _ in range(count):
        label = rng.choice(sorted(WORDS))
        words = [rng.choice(WORDS[label]), rng.choice(NOUNS), "and", rng.choice(NOUNS)]
        rng.shuffle(words)
        lines.append(f"the {' '.join(words)},{label}")
    path.write_text("\n".join(lines) + "\n")


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(THREADS), "TOKENIZERS_PARALLELISM": "false"}


def _baseline(data: Path, directory: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", BASELINE, str(data), str(directory), str(THREADS)],
        capture_output=True,
        text=True,
        env=_env(),
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def _modelyard(data: Path, directory: Path) -> dict[str, Any]:
    settings = Settings(
        env="test",
        data_dir=directory,
        encryption_keys=Fernet.generate_key().decode(),
        _env_file=None,
    )
    await asyncio.to_thread(upgrade, settings)
    database = create_database(settings)
    config = TrainingConfig(
        task="classification",
        batch_size=BATCH,
        max_length=MAX_LENGTH,
        checkpoint_steps=CHECKPOINT_STEPS,
        num_threads=THREADS,
        output_name="bench-minilm",
    )
    os.environ.update(_env())
    try:
        started = time.perf_counter()
        staged = stage_path(directory, data.name)
        await asyncio.to_thread(shutil.copyfile, data, staged)
        async with database.sessions() as session:
            dataset = await store_dataset(
                session, staged=staged, filename=data.name, data_dir=directory, user=None
            )
            job = await jobs.create_job(
                session, user=None, dataset=dataset, config=config, data_dir=directory
            )
        runner = TrainingRunner(settings, database, poll_interval=0.2, only_job=job.id)
        await runner.run_until_done(job.id)
        await runner.aclose()
        wall = time.perf_counter() - started
        async with database.sessions() as session:
            finished = await jobs.get_job(session, job.id, None)
        if finished.state != "succeeded":
            raise RuntimeError(f"bench job {finished.state}: {finished.error}")
        metrics = finished.metrics or {}
        return {
            "samples_per_second": metrics["train_samples_per_second"],
            "wall_seconds": wall,
            "accuracy": metrics.get("eval_accuracy"),
            "f1_macro": metrics.get("eval_f1_macro"),
        }
    finally:
        await database.dispose()


def run(*, quick: bool = False) -> dict[str, Any]:
    count = 500 if quick else 5000
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-training-") as tmp:
        root = Path(tmp)
        data = root / "reviews.csv"
        _write_data(data, count)
        baseline = _baseline(data, root / "baseline")
        ours = asyncio.run(_modelyard(data, (root / "modelyard").resolve()))
    ratio = ours["samples_per_second"] / baseline["samples_per_second"]
    return {"examples": count, "baseline": baseline, "modelyard": ours, "ratio": ratio}


def report(figures: dict[str, Any]) -> str:
    """The Markdown section for the figures."""
    ours, baseline = figures["modelyard"], figures["baseline"]
    return "\n".join(
        [
            f"## Training (MiniLM classification, {figures['examples']:,} examples, 1 epoch, "
            f"batch {BATCH}, {THREADS} CPU threads)",
            "",
            "| measure | modelyard job | plain `Trainer` | target |",
            "| --- | ---: | ---: | --- |",
            f"| train samples/s | {ours['samples_per_second']:.1f} "
            f"| {baseline['samples_per_second']:.1f} | within 5% "
            f"(ratio {figures['ratio']:.3f}) |",
            f"| whole job (queued → model saved), s | {ours['wall_seconds']:.1f} "
            f"| {baseline['runtime']:.1f} (training only) | < 180 s |",
            f"| held-out accuracy / macro F1 | {ours['accuracy']:.3f} / {ours['f1_macro']:.3f} "
            "| - | - |",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(report(run(quick=args.quick)))


if __name__ == "__main__":
    main()
