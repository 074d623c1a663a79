"""The GPU paths of training on a CUDA machine: number formats, gradient checkpointing,
QLoRA (4-bit) for SFT and DPO, and classification with the data-derived defaults.

Each job runs as the server runs it: a ``spec.json`` in a working directory, then
``python -m modelyard.training.worker`` in its own process (no database, no server). What
is reported per job: its state, wall time (the worker's whole process: imports, loading,
training, evaluation, saving), the GPU memory it held at its peak (``nvidia-smi``, above
what was in use before it started) and its metrics.

* **causal jobs** (``--data``): a random Llama (``--llama-size``: hidden size, layers)
  with a byte-level BPE trained on the data's texts; SFT on ``prompt: review → completion:
  label`` rows and DPO/ORPO on ``prompt, chosen (the right label), rejected (the wrong
  one)``, ``--steps`` optimizer steps each;
* **classification jobs** (``--minilm DIR``): the CSV itself with MiniLM, no
  hyperparameters given (the recommendation), then with an ``auto`` budget.

``--cpu`` runs what a CPU can (no 4-bit, no bf16/fp16) with a tiny model: a smoke test of
this script. On a GPU: ``python -m bench.gpu_training --data rt4000.csv --minilm DIR``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from modelyard.local.sources import LocalRef, trusted_ref
from modelyard.training.datasets import load_examples
from modelyard.training.worker import RESULT_FILE, SPEC_FILE

__all__ = ["causal_jobs", "classification_jobs", "report", "run_job"]

MINILM = "all-MiniLM-L6-v2"


def _rows(data: Path) -> list[dict[str, Any]]:
    """The CSV's ``text,label`` examples, read and checked as an upload is."""
    return load_examples(data, "csv")[1]


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def causal_data(data: Path, directory: Path) -> tuple[Path, Path]:
    """An instruction file (review → its label) and a preference file (the right label
    chosen, the other rejected) made from a ``text,label`` CSV."""
    rows = _rows(data)
    labels = sorted({row["label"] for row in rows})
    prompts = [f"Review: {row['text']}\nVerdict:" for row in rows]
    instruction = _jsonl(
        directory / "verdicts.jsonl",
        [{"prompt": p, "completion": f" {r['label']}"} for p, r in zip(prompts, rows, strict=True)],
    )
    preference = _jsonl(
        directory / "preferences.jsonl",
        [
            {
                "prompt": p,
                "chosen": f" {r['label']}",
                "rejected": f" {next(label for label in labels if label != r['label'])}",
            }
            for p, r in zip(prompts, rows, strict=True)
        ],
    )
    return instruction, preference


def build_llama(data: Path, directory: Path, hidden: int, layers: int) -> Path:
    """A random Llama whose tokenizer is trained on the data's texts."""
    from tests.local.builders import build_causal

    corpus = [row["text"] for row in _rows(data)]
    heads = max(2, hidden // 64)
    return build_causal(
        directory, hidden=hidden, layers=layers, heads=heads, corpus=corpus, vocab_size=4000,
        initializer_range=0.02, eos=True,
    )  # fmt: skip


class GpuMemory:
    """The GPU memory in use at its peak while a job runs, polled with ``nvidia-smi``
    (``None`` where there is none)."""

    def __init__(self) -> None:
        self.available = shutil.which("nvidia-smi") is not None
        self.peak_mib: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def used_mib() -> float:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        return float(out.split()[0])

    def __enter__(self) -> GpuMemory:
        if self.available:
            baseline = self.used_mib()

            def poll() -> None:
                peak = 0.0
                while not self._stop.wait(0.2):
                    peak = max(peak, self.used_mib() - baseline)
                    self.peak_mib = peak

            self._thread = threading.Thread(target=poll, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def run_job(
    root: Path, name: str, config: dict[str, Any], dataset: Path, base: LocalRef, *,
    hide_gpu: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Train one job in a worker process, as the runner does; its result and figures."""
    work_dir = root / name
    work_dir.mkdir(parents=True)
    spec = {
        "job_id": 1,
        "config": config,
        "output_name": name,
        "output_dir": str(root / "models" / name),
        "base": asdict(base),
        "dataset": {
            "path": str(dataset),
            "format": dataset.suffix.lstrip("."),
            "sha256": hashlib.sha256(dataset.read_bytes()).hexdigest(),
            "name": dataset.name,
        },
        "resume_from": None,
        "advice": None,
        "hub": None,
    }
    (work_dir / SPEC_FILE).write_text(json.dumps(spec))
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
    if hide_gpu:
        env["CUDA_VISIBLE_DEVICES"] = ""
    started = time.perf_counter()
    with GpuMemory() as memory, (work_dir / "worker.log").open("wb") as log:
        subprocess.run(
            [sys.executable, "-m", "modelyard.training.worker", str(work_dir)],
            input=b"{}\n", stdout=log, stderr=subprocess.STDOUT, env=env, check=False,
        )  # fmt: skip
    seconds = time.perf_counter() - started
    result_file = work_dir / RESULT_FILE
    result = json.loads(result_file.read_text()) if result_file.exists() else {"state": "died"}
    if result["state"] != "succeeded":
        result["log_tail"] = (work_dir / "worker.log").read_text(errors="replace")[-3000:]
    return {"name": name, "seconds": round(seconds, 1), "peak_mib": memory.peak_mib} | result


def causal_jobs(steps: int, cpu: bool) -> dict[str, tuple[str, dict[str, Any]]]:
    """Name → (dataset kind, config) of the SFT and preference jobs."""
    compute = "cpu" if cpu else "gpu"
    common = {"compute_type": compute, "max_steps": steps, "checkpoint_steps": max(steps, 10)}
    lora = common | {"method": "lora", "lora": {"r": 16, "alpha": 32}}
    jobs: dict[str, tuple[str, dict[str, Any]]] = {
        "sft-full": ("instruction", common | {"task": "sft", "method": "full"}),
        "sft-lora": ("instruction", lora | {"task": "sft"}),
        "sft-lora-checkpointing": (
            "instruction", lora | {"task": "sft", "gradient_checkpointing": True},
        ),
        "orpo-lora": ("preference", lora | {"task": "orpo"}),
    }  # fmt: skip
    if not cpu:
        jobs |= {
            "sft-lora-fp16": ("instruction", lora | {"task": "sft", "precision": "fp16"}),
            "sft-lora-fp32": ("instruction", lora | {"task": "sft", "precision": "fp32"}),
            "sft-qlora": (
                "instruction",
                lora | {"task": "sft", "load_in_4bit": True, "gradient_checkpointing": True},
            ),
            "dpo-qlora": ("preference", lora | {"task": "dpo", "load_in_4bit": True}),
        }
    return jobs


def classification_jobs(cpu: bool, budget: float) -> dict[str, dict[str, Any]]:
    """Name → config of the classification jobs (nothing set but where it runs)."""
    compute = "cpu" if cpu else "gpu"
    smoke = {"max_steps": 5} if cpu else {}
    jobs = {"classification-defaults": {"task": "classification", "compute_type": compute} | smoke}
    if not cpu:
        jobs["classification-auto"] = {
            "task": "classification",
            "compute_type": compute,
            "auto": {"time_budget_s": budget},
        }
    return jobs


def run(
    data: Path, root: Path, *, minilm: Path | None, steps: int, hidden: int, layers: int,
    cpu: bool, budget: float, only: str | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Every job of this bench (``only``: ``causal`` or ``classification``)."""
    results: list[dict[str, Any]] = []
    if only in (None, "causal"):
        instruction, preference = causal_data(data, root)
        llama = build_llama(data, root / "llama", hidden, layers)
        base = LocalRef("random-llama", "directory", str(llama))
        files = {"instruction": instruction, "preference": preference}
        for name, (kind, config) in causal_jobs(steps, cpu).items():
            results.append(run_job(root, name, config, files[kind], base))
            print(json.dumps(results[-1]), flush=True)
        if not cpu:  # a GPU job where no GPU is visible: the error a user gets
            config = {"task": "sft", "compute_type": "gpu", "max_steps": 1}
            results.append(run_job(root, "gpu-job-without-gpu", config, instruction, base,
                                   hide_gpu=True))  # fmt: skip
            print(json.dumps(results[-1]), flush=True)
    if only in (None, "classification"):
        base = (
            LocalRef(MINILM, "directory", str(minilm.resolve())) if minilm else trusted_ref(MINILM)
        )
        for name, config in classification_jobs(cpu, budget).items():
            results.append(run_job(root, name, config, data, base))
            print(json.dumps(results[-1]), flush=True)
    return results


def _metric(metrics: dict[str, Any], *names: str) -> str:
    for name in names:
        if name in metrics:
            return f"{name} {metrics[name]:.4g}"
    return ""


def report(results: list[dict[str, Any]]) -> str:
    """A markdown table of the jobs."""
    lines = [
        "| job | state | wall s | GPU MiB (peak) | train samples/s | result |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for job in results:
        metrics = job.get("metrics") or {}
        peak = "-" if job.get("peak_mib") is None else f"{job['peak_mib']:,.0f}"
        rate = metrics.get("train_samples_per_second")
        if job["state"] == "succeeded":
            outcome = ", ".join(
                part
                for part in (
                    _metric(metrics, "test_accuracy", "accuracy"),
                    _metric(metrics, "test_f1_macro", "f1_macro"),
                    _metric(metrics, "baseline_accuracy"),
                    _metric(metrics, "eval_loss"),
                    _metric(metrics, "trained_steps"),
                )
                if part
            )
        else:
            outcome = str(job.get("error", job["state"]))[:160]
        lines.append(
            f"| {job['name']} | {job['state']} | {job['seconds']:.1f} | {peak} | "
            f"{'-' if rate is None else f'{rate:,.0f}'} | {outcome} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a CSV of text,label rows")
    parser.add_argument("--minilm", type=Path, help="MiniLM's directory (default: built in)")
    parser.add_argument("--work", type=Path, default=Path("bench-results/gpu-training"))
    parser.add_argument("--only", choices=["causal", "classification"])
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps of causal jobs")
    parser.add_argument("--llama-size", type=int, nargs=2, default=(768, 12),
                        metavar=("HIDDEN", "LAYERS"))  # fmt: skip
    parser.add_argument("--budget", type=float, default=120.0, help="the auto job's seconds")
    parser.add_argument("--cpu", action="store_true", help="a CPU smoke run of this script")
    parser.add_argument("--output", type=Path, help="also write the results here (JSON)")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    results = run(
        args.data, args.work.resolve(), minilm=args.minilm, steps=args.steps,
        hidden=args.llama_size[0], layers=args.llama_size[1], cpu=args.cpu,
        budget=args.budget, only=args.only,
    )  # fmt: skip
    if args.output:
        args.output.write_text(json.dumps(results, indent=2))
    print(report(results))


if __name__ == "__main__":
    main()
